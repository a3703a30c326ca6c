"""A project shaped unlike the sample app, deployed with inventory variables
only: its packages are exactly its uv.lock (its own gevent too, for a gevent
pool), its compiled dependency is built,
its static files (STATIC_ROOT in its code tree) are served while the code
stays root's, its tasks round-trip through the pools its routes name, beat
fires, Flower sees the workers, and the deploy reads its own settings."""

import json
import re
import shlex
import time
import tomllib
from pathlib import Path

import pytest
from conftest import APP, FLOWER, WEB, backend, celery_json, hosts, http, redis_acl_refusals, variables

CODE = f"/opt/{APP}/src"
VENV = f"/opt/{APP}/venv"
UV = f"/opt/{APP}/tools/bin/uv"
PROJECT = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "catalog"


@pytest.fixture(scope="module")
def host():
    return backend(hosts("web")[0])


def shell(host, code):
    """Python run by the project's manage.py shell, as the app user."""
    result = host.run(f"{APP}-manage shell --command {shlex.quote(code)}")
    assert result.rc == 0, result.stdout + result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_virtualenv_is_exactly_the_lock(host):
    synced = host.run(f"cd {CODE} && UV_PROJECT_ENVIRONMENT={VENV} {UV} sync --locked --no-dev "
                      f"--no-install-project --check --python {VENV}/bin/python")
    assert synced.rc == 0, synced.stdout + synced.stderr
    frozen = host.run(f"{VENV}/bin/python -m pip list --format=json").stdout
    installed = {package["name"].lower() for package in json.loads(frozen)}
    assert "django" in installed and "celery" in installed, installed
    assert "pytest" not in installed, "the lock's dev group was installed"


def test_compiled_dependency_was_built_on_the_host(host):
    impl = host.run(f"{VENV}/bin/python -c 'import psycopg; print(psycopg.pq.__impl__)'")
    assert impl.stdout.strip() == "c", impl.stdout + impl.stderr


def test_static_files_in_the_code_tree_are_served(host):
    page = http(host, "GET", f"http://{WEB}/")
    assert page["status"] == 200, page
    stylesheet = re.search(r'href="(/static/books/site\.[0-9a-f]{12}\.css)"', page["body"])
    assert stylesheet, page["body"][:500]
    assert http(host, "GET", f"http://{WEB}{stylesheet.group(1)}")["status"] == 200
    assert host.file(f"{CODE}/staticfiles/staticfiles.json").user == "root"


def test_the_app_cannot_write_its_code_or_static_files(host):
    for path in (CODE, f"{CODE}/staticfiles", f"{CODE}/staticfiles/staticfiles.json"):
        assert host.run(f"runuser -u {APP} -- test -w {path}").rc != 0, f"{APP} may write {path}"


def test_tasks_round_trip_through_the_queues_the_project_names(host):
    replies = json.loads(shell(host, (
        "import json; from books.tasks import add, build_report; "
        "a = add.delay(2, 3); r = build_report.delay(7); "
        "print(json.dumps([a.get(timeout=60), a.queue, r.get(timeout=60), r.queue]))")))
    assert replies == [5, "celery", "report 7", "reports"]


def test_the_gevent_pool_runs_the_gevent_the_project_locks(host):
    """The role installs its own gevent only for a project that has none:
    over this project's, the next release's uv sync would take it out again,
    and the virtualenv would not be the lock (the first test here)."""
    locked = next(package["version"] for package in tomllib.loads((PROJECT / "uv.lock").read_text())["package"]
                  if package["name"] == "gevent")
    version = host.run(f"{VENV}/bin/python -c 'import gevent; print(gevent.__version__)'")
    assert version.stdout.strip() == locked, version.stdout + version.stderr
    stats = celery_json(host, "inspect", "stats", "--timeout=10")
    pools = {node.split("@")[0]: node_stats["pool"] for node, node_stats in stats.items()}
    assert "reports" in pools, stats
    assert pools["reports"]["implementation"] == "celery.concurrency.gevent:TaskPool", pools
    assert pools["reports"]["max-concurrency"] == 4, pools


def test_beat_fires_the_projects_schedule(host):
    count = "from books.models import Tick; print(Tick.objects.count())"
    before = int(shell(host, count))
    deadline = time.monotonic() + 30
    while int(shell(host, count)) <= before:
        assert time.monotonic() < deadline, "no tick within 30 s (the schedule says every 5 s)"
        time.sleep(2)


def test_flower_sees_both_pools(host):
    name = hosts("flower")[0]
    credentials = variables(name)["flower_basic_auth"][0]
    auth = f"{credentials['username']}:{credentials['password']}"
    deadline = time.monotonic() + 60
    while True:
        status = http(backend(name), "GET", f"http://{FLOWER}/api/workers?refresh=1&status=1", auth=auth)["body"]
        online = {node.split("@")[0] for node, up in status.items() if up}
        if online == {"default", "reports"}:
            break
        assert time.monotonic() < deadline, f"Flower shows {status}"
        time.sleep(3)


def check_config(host, expect):
    result = host.run(f"{APP}-celery check-config --expect {shlex.quote(json.dumps(expect))}")
    assert result.rc in (0, 3), result.stdout + result.stderr
    return result.rc, json.loads(result.stdout.strip().splitlines()[-1])


def test_deploy_reads_the_projects_own_settings(host):
    rc, report = check_config(host, {"pools": [{"name": "default", "queues": ["celery"], "time_limit": 0},
                                               {"name": "reports", "queues": ["reports"], "time_limit": 0}],
                                     "stop_time_limit": 360, "static_root": f"{CODE}/staticfiles"})
    assert (rc, report["errors"]) == (0, []), report
    config = report["config"]
    assert (config["default_queue"], config["time_limit"], config["visibility_timeout"]) == ("celery", 120, 3600)
    assert config["routes"] == [["books.tasks.build_report", "reports"]]


@pytest.mark.parametrize(("expect", "names"), [
    ({"pools": [{"name": "default", "queues": ["celery"], "time_limit": 0}]}, ["'reports'", "celery_worker_pools"]),
    ({"pools": [{"name": "d", "queues": ["default"], "time_limit": 0}, {"name": "r", "queues": ["reports"]}]},
     ["default queue 'celery'", "celery_worker_pools"]),
    ({"pools": [{"name": "default", "queues": ["celery", "reports"], "time_limit": 0}], "stop_time_limit": 60},
     ["app_task_time_limit: 120"]),
    ({"max_countdown": 4000}, ["app_max_countdown"]),
    ({"static_root": "/var/lib/djangoapp/static"}, [f"app_static_root: {CODE}/staticfiles"]),
])
def test_deploy_refuses_what_the_project_would_strand(host, expect, names):
    rc, report = check_config(host, expect)
    assert rc == 3, report
    for name in names:
        assert name in " ".join(report["errors"]), report["errors"]


@pytest.mark.last
def test_no_command_of_the_project_was_refused(host):
    # This project's Celery settings (default queue, a second queue, kombu's
    # visibility timeout) run under the `celery` user's command allow-list.
    assert redis_acl_refusals(host) == []
