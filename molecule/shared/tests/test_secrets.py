"""No secret shows where it should not, on any host: in a process's command
line, in the journal, in a file an unrelated user can read under /etc, /opt,
/srv or /var, nor in the playbook's own output at -vv: the --check --diff
preview on the new hosts and, on an all-in-one host, the same on the
converged host, which must also report no change."""

import base64
import json
from pathlib import Path

import pytest
from conftest import INVENTORY, SUMMARY, backend, hosts, run_playbooks, variables

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
    print(json.dumps(found))
else:
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    journal = subprocess.run(["journalctl", "--no-pager", "--output=cat"], capture_output=True, text=True,
                             errors="replace").stdout
    print(json.dumps({"ps": hits(ps), "journal": hits(journal)}))
"""


def secrets(name):
    """The inventory's secrets, by variable name (a TLS key as its PEM text)."""
    found = {key: value.strip() for key, value in variables(name).items()
             if key.endswith(("_password", "_secret_key", "_api_token", "_tls_key")) and isinstance(value, str)
             and len(value) >= 8}
    for number, login in enumerate(variables(name).get("flower_basic_auth", [])):
        found[f"flower_basic_auth[{number}].password"] = login["password"]
    return found


def search(name, mode):
    encoded = base64.b64encode(json.dumps(secrets(name)).encode()).decode()
    runner = "runuser -u nobody -- " if mode == "files" else ""
    result = backend(name).run(f"echo {encoded} | {runner}python3 -c %s %s", SEARCH, mode)
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)


def secrets_in(output, names, title):
    """Which inventory secrets of the hosts `names` a playbook's `output`
    holds, reported under `title`."""
    found = {key for name in names for key, value in secrets(name).items() if value in output}
    SUMMARY.append((title, f"{len(output.splitlines())} lines, found: {sorted(found)}"))
    return found


def test_the_preview_on_the_new_hosts_printed_no_secret_at_verbosity_2():
    # prepare.yml's `site.yml --check --diff -vv` on the never-converged
    # hosts, where every new file's diff shows; it keeps the output next to
    # the scenario's inventory.
    output = (Path(INVENTORY).parents[1] / "preview.log").read_text()
    found = secrets_in(output, hosts("all"), "secrets in the preview (site.yml --check --diff -vv on new hosts)")
    assert found == set()


@pytest.mark.last
def test_check_mode_on_the_converged_host_changes_nothing_and_prints_no_secret_at_verbosity_2():
    # An operator's `--check --diff` after the suite must report no change:
    # a task that always reports one hides real changes in the preview.
    # (Molecule's idempotence step is the real second run.)
    if len(hosts("all")) > 1:
        pytest.skip("the all-in-one scenarios run this (one host: a quick run)")
    output = run_playbooks("site.yml", options=["--check", "--diff", "-vv"]).stdout
    recap = [line.split() for line in output.splitlines() if " ok=" in line and " changed=" in line]
    assert recap, output[-3000:]
    changed = [fields[0] for fields in recap if "changed=0" not in fields or "failed=0" not in fields]
    found = secrets_in(output, hosts("all"), "secrets in site.yml --check --diff -vv on the converged host")
    tasks = [block.split("]", 1)[0] for block in output.split("TASK [")[1:] if "\nchanged: [" in block]
    assert changed == [], f"tasks that report a change on the converged host: {tasks}"
    assert found == set()


@pytest.mark.last
@pytest.mark.parametrize("name", hosts("all"))
def test_no_secret_in_processes_journal_or_readable_files(name):
    found = dict(search(name, "root"), files=search(name, "files"))
    SUMMARY.append((f"secrets sweep on {name}", json.dumps(found)))
    assert found == {"ps": [], "journal": [], "files": {}}
