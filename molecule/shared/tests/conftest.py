"""Helpers shared by every scenario's testinfra tests. Tests pick their hosts
by inventory group, so one suite proves every scenario's layout."""

import base64
import json
import os
import shlex
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import testinfra
import testinfra.utils.ansible_runner
import yaml

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY)
APP = "djangoapp"

HTTP = """
import json, os, sys, urllib.request, urllib.error
method, url, body = sys.argv[1:4]
headers = {"Content-Type": "application/json"}
if os.environ.get("AUTHORIZATION"):
    headers["Authorization"] = os.environ["AUTHORIZATION"]
request = urllib.request.Request(url, method=method, data=body.encode() if body else None, headers=headers)
try:
    response = urllib.request.urlopen(request, timeout=15)
except urllib.error.HTTPError as error:
    response = error
raw = response.read()
try:
    parsed = json.loads(raw or b"null")
except ValueError:
    parsed = raw.decode(errors="replace")
print(json.dumps({"status": response.status, "body": parsed}))
"""


# Run on a host with the secrets on stdin (base64 JSON, so that no secret is
# on a command line): which of them appear in `ps` and in the journal (as
# root), and in which files `nobody` can read (the file walk runs as nobody).
SEARCH = """
import base64, json, os, subprocess, sys
secrets = json.loads(base64.b64decode(sys.stdin.read()))
def hits(text):
    return sorted(name for name, value in secrets.items() if value in text)
if sys.argv[1] == "files":
    found = {}
    for top in ("/etc", "/opt", "/srv", "/var"):
        for directory, _, names in os.walk(top):
            for name in names:
                path = os.path.join(directory, name)
                try:
                    if os.path.islink(path) or not os.path.isfile(path) or os.path.getsize(path) > 20_000_000:
                        continue
                    with open(path, "rb") as handle:
                        named = hits(handle.read().decode("latin-1"))
                except OSError:
                    continue
                if named:
                    found[path] = named
    print(json.dumps({"files": found}))
else:
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    journal = subprocess.run(["journalctl", "--no-pager", "--output=cat"], capture_output=True, text=True,
                             errors="replace").stdout
    print(json.dumps({"ps": hits(ps), "journal": hits(journal)}))
"""


ROOT = Path(__file__).resolve().parents[3]


def role_default(role, name):
    """A role's default from its defaults/main.yml: the tests follow the roles."""
    return yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text())[name]


WEB = role_default("gunicorn", "gunicorn_bind")  # host:port
FLOWER = f"{role_default('flower', 'flower_address')}:{role_default('flower', 'flower_port')}"
REDIS_PORT = role_default("redis", "redis_port")
POOL_DEFAULTS = role_default("celery_worker", "celery_worker_pool_defaults")


def run_playbooks(*playbooks, extra_vars=None, limit=None, options=(), succeed=True, inventory=None):
    """Run the bundle's playbooks (paths relative to the repository) against
    this scenario's hosts, as an operator would; fails with the output unless
    `succeed` is false (the caller then reads returncode and stdout).
    `inventory`: another inventory than the scenario's (an operator's edit)."""
    # Molecule forces colour on (ANSIBLE_FORCE_COLOR), and its ansible.cfg
    # sends failed results to stderr (display_failed_stderr): plain text, and
    # callers that read a failure read stdout + stderr.
    env = dict(os.environ, ANSIBLE_ROLES_PATH=str(ROOT / "roles"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    with tempfile.NamedTemporaryFile("w", suffix=".json") as extra:
        json.dump(extra_vars or {}, extra)
        extra.flush()
        command = ["ansible-playbook", *(str(ROOT / playbook) for playbook in playbooks),
                   "--inventory", str(inventory or INVENTORY), "--extra-vars", f"@{extra.name}", *options]
        result = subprocess.run(command + (["--limit", limit] if limit else []), env=env, capture_output=True,
                                text=True)
    assert result.returncode == 0 or not succeed, result.stdout[-6000:] + result.stderr[-2000:]
    return result


def hosts(group):
    return RUNNER.get_hosts(group)


def backend(name):
    return testinfra.get_host(f"ansible://{name}", ansible_inventory=INVENTORY)


def variables(name):
    return RUNNER.get_variables(name)


def secrets_seen_on(name, secrets):
    """Where host `name` shows any of `secrets` ({label: value}): the labels
    found in `ps` and the journal, and {path: labels} of the files `nobody`
    can read; {"ps": [], "journal": [], "files": {}} when none is seen."""
    encoded = base64.b64encode(json.dumps(secrets).encode()).decode()
    found = {}
    for mode, runner in (("root", ""), ("files", "runuser -u nobody -- ")):
        result = backend(name).run(f"echo {encoded} | {runner}python3 -c %s %s", SEARCH, mode)
        assert result.rc == 0, result.stderr
        found.update(json.loads(result.stdout))
    return found


def http(host, method, url, body=None, auth="", authorization=""):
    """An HTTP request made on `host` with its python3; returns {status, body}.
    `auth` is user:password for Basic auth, `authorization` a whole
    Authorization header. The header reaches python3 in its environment, not
    on its command line (exec replaces the shell at once)."""
    data = json.dumps(body) if body is not None else ""
    if auth:
        authorization = "Basic " + base64.b64encode(auth.encode()).decode()
    result = host.run("AUTHORIZATION=%s exec python3 -c %s %s %s %s", authorization, HTTP, method, url, data)
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)


def api(host, method, path, body=None, token=None):
    """The sample app's HTTP API on `host`, with the host's app_api_token
    unless `token` says otherwise ("" sends no Authorization header)."""
    if token is None:
        token = host.ansible.get_variables()["app_api_token"]
    return http(host, method, f"http://{WEB}{path}", body, authorization=f"Bearer {token}" if token else "")


def wait_for_task(host, task_id, states=("SUCCESS", "FAILURE"), timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        body = api(host, "GET", f"/api/tasks/{task_id}/")["body"]
        if body["status"] in states:
            return body
        assert time.monotonic() < deadline, f"task {task_id} still {body['status']} after {timeout} s"
        time.sleep(0.5)


def run_task(host, name, body=None, timeout=60):
    posted = api(host, "POST", f"/api/tasks/{name}/", body or {})
    assert posted["status"] == 202, posted
    return wait_for_task(host, posted["body"]["task_id"], timeout=timeout)


def database_url(host):
    """The DATABASE_URL line of the app's environment file on `host`."""
    return next(line for line in host.file(f"/etc/{APP}/app.env").content_string.splitlines()
                if line.startswith("DATABASE_URL="))


def manage(host, *args):
    result = host.run(f"{APP}-manage " + " ".join(shlex.quote(a) for a in args))
    assert result.rc == 0, result.stdout + result.stderr
    return result.stdout


def celery_json(host, *args):
    result = host.run(f"{APP}-celery " + " ".join(shlex.quote(a) for a in args) + " --json")
    assert result.rc == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def recorded_pools(worker):
    """The pools the scenario's side effect applied to a worker host, as the
    inventory gives them (recorded on the host, since Molecule rewrites its
    inventory on every action); None before the side effect."""
    recorded = backend(worker).file("/var/tmp/molecule-pools.json")  # noqa: S108 (on the test host)
    return json.loads(recorded.content_string) if recorded.exists else None


def expected_pools(worker):
    """A worker host's pools, with the role's defaults: those the scenario's
    side effect applied, else the inventory's."""
    pools = recorded_pools(worker)
    if pools is None:
        pools = variables(worker).get("celery_worker_pools", role_default("celery_worker", "celery_worker_pools"))
    return [dict(POOL_DEFAULTS, **pool) for pool in pools]


def nodename(name):
    return backend(name).check_output("uname -n")


@pytest.fixture(scope="module")
def web():
    names = hosts("web")
    if not names:
        pytest.skip("this scenario has no web host")
    return backend(names[0])


UNITS = ["redis-server", "postgresql", "gunicorn", "celery-worker@*", "celery-beat", "flower"]



def redis_cli_options(host):
    """redis-cli's options on a Redis host: TLS, verified with the role's CA,
    when the inventory turns it on."""
    tls = host.ansible.get_variables().get("redis_tls", False)
    return "--no-auth-warning" + (" --tls --cacert /etc/redis/tls/ca.crt" if tls else "")


# The client name of tests that make Redis refuse commands on purpose.
ACL_PROBE_CLIENT = "acl-probe"


def redis_acl_refusals(host):
    """The commands, keys or channels Redis refused since it started (its ACL
    LOG), but failed logins and the refusals tests provoke on purpose."""
    password = host.ansible.get_variables()["redis_password"]
    result = host.run(f"REDISCLI_AUTH=%s redis-cli {redis_cli_options(host)} --json ACL LOG 128", password)
    assert result.rc == 0, result.stderr
    return [{key: entry[key] for key in ("reason", "object", "username", "count")}
            for entry in json.loads(result.stdout or "[]")
            if entry["reason"] != "auth" and f" name={ACL_PROBE_CLIENT} " not in entry["client-info"]]

@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failure, attach the last journal lines of the stack's units on
    every host, so CI output shows why without a rerun."""
    report = yield
    if report.when == "call" and report.failed:
        units = " ".join(f"-u {shlex.quote(unit)}" for unit in UNITS)
        for name in hosts("all"):
            try:
                journal = backend(name).run(f"journalctl {units} -n 40 --no-pager -o short-iso").stdout
            except Exception as error:  # a broken host must not hide the test's own failure
                journal = f"(journal unavailable: {error})"
            report.sections.append((f"journal of {name}", journal))
    return report


# (title, text) pairs that tests leave for the end of the run (the drills' table).
SUMMARY = []


def pytest_terminal_summary(terminalreporter):
    for title, text in SUMMARY:
        terminalreporter.write_sep("-", title)
        terminalreporter.write_line(text)


def pytest_configure(config):
    config.addinivalue_line("markers", "last: runs after the other shared tests, before the drills")


def pytest_collection_modifyitems(items):
    """The reliability drills (molecule/drills, in the cluster scenario) kill,
    restart and re-key the stack: they run after every other test. Tests
    marked `last` look back over the shared suite: they run just before the
    drills (a Redis restart empties what they read, such as its ACL LOG)."""
    items.sort(key=lambda item: 2 if "drills" in item.path.parts else int(item.get_closest_marker("last") is not None))
