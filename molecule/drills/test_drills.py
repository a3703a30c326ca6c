"""Reliability drills: the stack's own operations, run while tasks flow.

Each drill posts COUNT tasks over the HTTP API (half idempotent, half
at-most-once; see producer.py), disturbs the deployment mid-run, then waits up
to BOUND seconds for every accepted task to reach a final state and counts
(report.py): accepted, succeeded, failed (dead-lettered), lost (no final state
by then) and duplicated side effects (a ledger booked twice). A drill fails on
any lost task, duplicated or missing side effect, failure without a dead
letter, or a worker unit that restarted when the drill did not kill it (its
journal is printed), never on time. The table goes to stdout and to docs/RELIABILITY.md.

    make drills                       # the cluster scenario with the drills
    DRILL_TASKS=10000 make drills     # a longer workload
"""

import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml
from conftest import (
    APP,
    FLOWER,
    INVENTORY,
    SUMMARY,
    api,
    backend,
    database_url,
    expected_pools,
    hosts,
    http,
    nodename,
    recorded_pools,
    role_default,
    run_playbooks,
    run_task,
    secrets_seen_on,
    variables,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
COUNT = int(os.environ.get("DRILL_TASKS", "1000"))
RATE = float(os.environ.get("DRILL_RATE", "100"))  # tasks posted per second
WORK = 0.2  # seconds each task works, so that disturbances catch tasks mid-run
REMOTE = "/var/tmp/drill"  # noqa: S108 (on the test host, root-owned)
ROWS = []

pytestmark = pytest.mark.skipif(len(hosts("celery_workers")) < 2, reason="the drills need two worker hosts")


def web_name():
    return hosts("web")[0]


def bound():
    """Seconds after a drill's disturbance by which every task must be final:
    a message held by a worker that died comes back after the visibility
    timeout, and the restore sweep runs every 10 s."""
    return variables(web_name())["app_visibility_timeout"] + 60


def automatic_restarts(since):
    """Restarts systemd made on its own (a pool that exited or crashed) since
    `since` (epoch seconds), per (host, unit). Read from the journal: NRestarts
    resets whenever the role restarts a pool."""
    counts = {}
    for worker in hosts("celery_workers"):
        for pool in expected_pools(worker):
            unit = f"celery-worker@{pool['name']}"
            journal = backend(worker).run(f"journalctl -u {unit} --since @{since:.0f} -o cat").stdout
            counts[(worker, unit)] = journal.count("Scheduled restart job")
    return counts


@contextmanager
def inventory_moving(*moves):
    """The scenario's inventory with each (host, source, destination) move
    made, as an operator edits it: the host leaves group `source` and joins
    group `destination` (None: it only joins, or only leaves). Its
    group_vars and host_vars are linked in: they sit next to the file."""
    inventory = yaml.safe_load(Path(INVENTORY).read_text())
    for host, source, destination in moves:
        if source:
            inventory[source]["hosts"].pop(host)
        if destination:
            inventory.setdefault(destination, {}).setdefault("hosts", {})[host] = inventory["all"]["hosts"][host]
    with tempfile.TemporaryDirectory() as directory:
        for name in ("group_vars", "host_vars"):
            if (Path(INVENTORY).parent / name).exists():
                (Path(directory) / name).symlink_to(Path(INVENTORY).parent / name)
        edited = Path(directory) / "hosts.yml"
        edited.write_text(yaml.safe_dump(inventory))
        yield edited


def wait_for_pools(worker, timeout=120):
    host, deadline = backend(worker), time.monotonic() + timeout
    for pool in expected_pools(worker):
        node = f"{pool['name']}@{nodename(worker)}"
        while host.run(f"{APP}-celery inspect ping --timeout=5 --destination={node}").rc != 0:
            assert time.monotonic() < deadline, f"{node} did not answer within {timeout} s"
            time.sleep(3)


def report(web, outfile):
    code = f"exec(open('{REMOTE}/report.py').read())"
    result = web.run(f"DRILL_FILE={outfile} {APP}-manage shell -c {shlex.quote(code)}")
    assert result.rc == 0, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith('{"accepted"')]
    assert lines, result.stdout
    return json.loads(lines[-1])


@pytest.fixture(scope="module", autouse=True)
def table():
    web = web_name()
    backend(web).run(f"mkdir -p {REMOTE}")
    for script in ("producer.py", "report.py"):
        subprocess.run(["docker", "cp", str(HERE / script), f"{web}:{REMOTE}/{script}"], check=True)
    backend(web).run(f"chmod -R a+rX {REMOTE}")
    yield
    columns = ["drill", "accepted", "succeeded", "failed", "dead_lettered", "lost", "duplicated",
               "missing_effect", "worker_restarts", "refused", "seconds"]
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(str(row.get(column, "")) for column in columns) + " |" for row in ROWS]
    table = "\n".join(lines)
    SUMMARY.append((f"reliability drills: {COUNT} tasks each, bound {bound()} s", table))
    doc = ROOT / "docs" / "RELIABILITY.md"
    if doc.exists() and ROWS:
        text = doc.read_text()
        begin, end = "<!-- drill-table -->", "<!-- /drill-table -->"
        head, rest = text.split(begin, 1)
        doc.write_text(f"{head}{begin}\n{table}\n{end}{rest.split(end, 1)[1]}")


def drill(name, disturb, expect_restarts=(), skip_hosts=()):
    web = backend(web_name())
    outfile = f"{REMOTE}/{name}.jsonl"
    since = time.time()
    web.run(f"rm -f {outfile}")
    # The producer reads the API token from the app's environment file, as
    # the app does: the token is on no command line and in no unit property.
    started = web.run(f"systemd-run --unit=drill-{name} --collect --property=EnvironmentFile=/etc/{APP}/app.env "
                      f"python3 {REMOTE}/producer.py {name} {COUNT} {RATE} {WORK} {outfile}")
    assert started.rc == 0, started.stderr
    # Disturb once a fifth of the workload is in.
    deadline = time.monotonic() + 60
    while int(web.run(f"cat {outfile} 2>/dev/null | wc -l").stdout.strip() or 0) < COUNT // 5:
        assert time.monotonic() < deadline, web.run(f"journalctl -u drill-{name} -o cat").stdout
        time.sleep(0.5)
    clock = time.monotonic()
    disturb()
    while web.run(f"systemctl is-active drill-{name}").stdout.strip() in ("active", "activating"):
        time.sleep(2)
    producer = web.run(f"journalctl -u drill-{name} -o cat").stdout
    summary = json.loads([line for line in producer.splitlines() if line.startswith('{"refused"')][-1])
    deadline = time.monotonic() + bound()
    while True:
        counts = report(web, outfile)
        if counts["lost"] == 0 or time.monotonic() > deadline:
            break
        time.sleep(10)
    restarted = {key: count for key, count in automatic_restarts(since).items() if count and key[0] not in skip_hosts}
    unexpected = {key: n for key, n in restarted.items() if key not in expect_restarts}
    row = dict(counts, drill=name, refused=summary["refused"], seconds=round(time.monotonic() - clock),
               worker_restarts=sum(restarted.values()))
    ROWS.append(row)
    for task in counts["lost_tasks"]:
        print(f"--- lost task {task}: what the hosts logged of it")
        for host in hosts("web") + hosts("celery_workers"):
            print(host, backend(host).run(f"journalctl --since @{since:.0f} -o cat | grep -F {task['id']}").stdout)
    for worker, unit in unexpected:
        print(f"--- journal of {unit} on {worker} (restarted during the drill)")
        print(backend(worker).run(f"journalctl -u {unit} -n 60 --no-pager -o cat").stdout)
    assert counts["lost"] == 0, f"{name}: tasks without a final state {bound()} s after the workload: {row}"
    assert counts["duplicated"] == 0, f"{name}: side effects that happened twice: {row}"
    assert counts["missing_effect"] == 0, f"{name}: successes without their side effect: {row}"
    assert counts["failed"] == counts["dead_lettered"], f"{name}: failures an operator cannot find: {row}"
    assert not unexpected, f"{name}: worker units that crashed: {unexpected}"
    assert counts["accepted"] + summary["refused"] == COUNT, row


def test_remote_shutdown_comes_back():
    worker = hosts("celery_workers")[1]
    node = f"default@{nodename(worker)}"

    def disturb():
        backend(web_name()).run(f"{APP}-celery control shutdown --destination={node}")
        time.sleep(5)
        wait_for_pools(worker)

    drill("remote-shutdown", disturb, expect_restarts={(worker, "celery-worker@default")})


def test_sigkill_of_a_worker_and_of_a_pool_child():
    first, second = hosts("celery_workers")[:2]
    main_pid = "$(systemctl show --property=MainPID --value celery-worker@default)"

    def disturb():
        assert backend(first).run(f"kill -KILL {main_pid}").rc == 0
        assert backend(second).run(f"kill -KILL $(pgrep -P {main_pid} | head -n 1)").rc == 0
        wait_for_pools(first)

    drill("sigkill", disturb, expect_restarts={(first, "celery-worker@default")})


def test_worker_host_reboot():
    worker = hosts("celery_workers")[0]

    def disturb():
        # An orderly reboot: systemd (PID 1 of the test host) halts on
        # SIGRTMIN+3, stopping every unit as a reboot does; then the host boots.
        for command in (["docker", "kill", "--signal=SIGRTMIN+3", worker], ["docker", "wait", worker],
                        ["docker", "start", worker]):
            subprocess.run(command, check=True, capture_output=True, timeout=300)
        wait_for_pools(worker, timeout=180)

    drill("host-reboot", disturb, skip_hosts={worker})


def test_redis_restart():
    # The supported way: the playbook pauses the workers' consuming around
    # the restart (a bare `systemctl restart` can lose a message in flight).
    def disturb():
        output = run_playbooks("playbooks/redis-restart.yml").stdout
        # The task runs in the redis role: "TASK [redis : Pause the workers' consuming]".
        head, found, rest = output.partition("Pause the workers' consuming]")
        assert found and "changed:" in rest.split("TASK [", 1)[0], f"the workers were not paused:\n{output[-4000:]}"

    drill("redis-restart", disturb)


def traces(host, files, process):
    """Which of `files` a host still has, and "a <process> process" if one runs."""
    found = [path for path in files if host.file(path).exists]
    running = host.run(f"pgrep -f '[{process[0]}]{process[1:]}'").stdout.strip()
    return found + ([f"a {process} process"] if running else [])


def flower_traces(host):
    """What of Flower a host that left the flower group still has: its unit,
    its credentials, a process."""
    return traces(host, ("/etc/systemd/system/flower.service", f"/etc/{APP}/flower.env"), "flower")


def gunicorn_traces(host):
    """What of gunicorn a host that left the web group still has."""
    return traces(host, ("/etc/systemd/system/gunicorn.service", f"/etc/{APP}/gunicorn.conf.py"), "gunicorn")


def app_units():
    """Every app unit of the stack, per host: {(host, unit): MainPID}."""
    units = {name: ["gunicorn"] for name in hosts("web")}
    for name in hosts("celery_workers"):
        units.setdefault(name, []).extend(f"celery-worker@{pool['name']}" for pool in expected_pools(name))
    for group, unit in (("celery_beat", "celery-beat"), ("flower", "flower")):
        for name in hosts(group):
            units.setdefault(name, []).append(unit)
    return {(name, unit): backend(name).check_output(f"systemctl show --property=MainPID --value {unit}")
            for name, names in units.items() for unit in names}


def test_retire_and_rotate_then_upgrade_and_roll_back():
    """docs/RUNBOOK.md's "Remove a worker host", "Rotate secrets", "Upgrade
    the app and roll back", "Add a pool with a new queue" and "Add a worker
    host", in two runs of site.yml while tasks flow (the second interrupted
    midway, then finished by a third).
    The first run uses an edited inventory: the last worker host moves from
    celery_workers to retired (its pools stop with a warm shutdown: running
    tasks finish, reserved ones go back to Redis; its units, settings and
    secrets go), Flower moves from its host to the first worker host, and
    that host becomes a web host too. The run also rotates the Redis and
    PostgreSQL passwords (new + previous: the app moves to PostgreSQL's
    second login role), Django's secret key and Flower's password, deploys
    new code (a copy of app/ with one more file) and adds a pool on a new
    queue: a rolling redeploy of every unit, one worker host at a time; a
    task routed to the new queue is then served by the new pool.
    The second run uses the scenario's inventory again: the retired host
    comes back, Flower returns to its host, and the first worker host leaves
    the web group (its gunicorn goes). It keeps the new passwords only (the
    app back on its own role, the second one dropped), puts the previous
    code back (the rollback: every unit restarts on it) and removes the pool
    again; it stops midway after the first worker host, and the next run
    restarts every unit the interrupted one left on the upgrade's release
    and starts the returning host's pools."""
    web = web_name()
    retired, flower_from, flower_to = hosts("celery_workers")[-1], hosts("flower")[0], hosts("celery_workers")[0]
    old = variables(web)["redis_celery_password"]
    new = "drill-rotated-celery-5b7e9d1c3a"
    flower_user = variables(flower_from)["flower_basic_auth"][0]
    flower_new = [{"username": flower_user["username"], "password": "drill-rotated-flower-9c2e4a7b"}]
    django = "drill-rotated-django-secret-key-3f8a1d6c9e2b7f4a0d5c"
    db_old, db_new = variables(web)["app_db_password"], "drill-rotated-db-password-8d4f1b6e"
    db_user = variables(hosts("postgresql")[0]).get("postgresql_app_user",
                                                     role_default("postgresql", "postgresql_app_user"))
    rotating = f"{db_user}_rotating"  # the postgresql role's second login role
    pools = recorded_pools(hosts("celery_workers")[0])
    queues = variables(web)["app_task_queues"]
    changes, seen, outputs = {}, {}, []  # what the runs set; what the drill saw between them; the runs' output

    def run(*playbooks, **options):
        outputs.append(run_playbooks(*playbooks, **options).stdout)

    def on_upgrade(names):
        """Which of the hosts `names` have the upgrade's extra file in their code."""
        return {name: backend(name).file(f"/opt/{APP}/src/DRILL-UPGRADE").exists for name in names}

    def disturb():
        moves = [(retired, "celery_workers", "retired"), (flower_from, "flower", None), (flower_to, None, "flower"),
                 (flower_to, None, "web")]
        with tempfile.TemporaryDirectory() as directory, inventory_moving(*moves) as edited:
            upgraded = Path(directory) / "app"
            shutil.copytree(ROOT / "app", upgraded, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            (upgraded / "DRILL-UPGRADE").write_text("the drill's upgrade\n")
            changes.update(
                redis_celery_password=new, redis_celery_password_previous=old, flower_basic_auth=flower_new,
                app_db_password=db_new, postgresql_app_password=db_new, postgresql_app_password_previous=db_old,
                app_secret_key=django, app_src_dir=str(upgraded), app_task_queues=[*queues, "reports"],
                celery_worker_pools=[*pools, {"name": "reports", "queues": ["reports"], "concurrency": 1}])
            run("site.yml", extra_vars=changes, inventory=edited)
        seen["upgraded"] = on_upgrade(set(hosts("web") + hosts("celery_workers")) - {retired})
        seen["retired"] = retirement_traces(backend(retired))
        seen["flower_from"] = flower_traces(backend(flower_from))
        seen["flower_to"] = backend(flower_to).service("flower").is_running
        seen["web_to"] = api(backend(flower_to), "GET", "/healthz")["status"]
        seen["db_login"] = database_login(backend(web))
        seen["reports"] = run_task(backend(web), "whoami", {"queue": "reports"})
        seen["pids"] = app_units()
        for name in ("redis_celery_password_previous", "postgresql_app_password_previous", "app_src_dir",
                     "app_task_queues", "celery_worker_pools"):
            changes.pop(name)
        # The rollback stops midway, as a run that fails in the workers play
        # does: every play up to the app's, then the first worker host only.
        run("playbooks/preflight.yml", "playbooks/datastores.yml", "playbooks/app.yml", extra_vars=changes)
        run("playbooks/workers.yml", extra_vars=changes, limit=hosts("celery_workers")[0])
        seen["stale"] = [unit for unit, pid in app_units().items() if pid == seen["pids"].get(unit)]
        # A run that does not reach every app host (here --limit) keeps
        # PostgreSQL's second role: the units left behind still log in as it.
        run("playbooks/topology.yml", "playbooks/postgresql-rotated.yml", extra_vars=changes,
            limit=hosts("postgresql")[0])
        seen["kept"] = role_exists(rotating)
        # The next run finishes it. Every file is already written; only the
        # units' release stamps tell it what to restart.
        run("site.yml", extra_vars=changes)

    failed_logins = failed_database_logins()
    # The retired host's pools stop on purpose, and start again when it returns.
    drill("retire-rotate-upgrade-rollback", disturb, skip_hosts={retired})
    assert failed_database_logins() == failed_logins, "PostgreSQL refused a login during the rotation"
    assert not seen["retired"], f"the retired host {retired} kept {seen['retired']}"
    assert not seen["flower_from"], f"Flower's old host {flower_from} kept {seen['flower_from']}"
    assert seen["flower_to"], f"Flower did not run on its new host {flower_to}"
    assert seen["web_to"] == 200, f"the new web host {flower_to} did not serve the app"
    assert all(seen["upgraded"].values()), f"hosts without the upgrade: {seen['upgraded']}"
    assert seen["reports"]["status"] == "SUCCESS", seen["reports"]
    assert seen["reports"]["result"]["hostname"].startswith("reports@"), seen["reports"]
    assert seen["stale"], "the interrupted rollback was meant to leave units on the upgrade's release"
    rolled_back = on_upgrade(hosts("web") + hosts("celery_workers"))
    assert not any(rolled_back.values()), f"hosts still on the upgrade: {rolled_back}"
    after = app_units()
    assert not [unit for unit, pid in after.items() if pid in ("0", seen["pids"].get(unit))], (
        f"units not restarted on the rolled-back release: before {seen['pids']}, after {after} "
        f"(left on the upgrade by the interrupted run: {seen['stale']})")
    for worker in hosts("celery_workers"):
        assert not backend(worker).file("/etc/systemd/system/celery-worker@reports.service.d").exists
    flower = backend(hosts("flower")[0])
    url = f"http://{FLOWER}/api/workers"
    assert http(flower, "GET", url, auth=f"{flower_user['username']}:{flower_new[0]['password']}")["status"] == 200
    assert http(flower, "GET", url, auth=f"{flower_user['username']}:{flower_user['password']}")["status"] == 401
    environment = backend(web).file(f"/etc/{APP}/app.env").content_string
    assert django in environment
    assert seen["db_login"] == (rotating, db_new), "the first run's app was not on the second role"
    assert database_login(backend(web)) == (db_user, db_new)
    assert seen["kept"], "a run limited to the PostgreSQL host dropped the second role"
    assert not role_exists(rotating), "the rotation's login role is still there"
    for name in set(hosts("web") + hosts("celery_workers")) - set(hosts("flower")):
        assert not flower_traces(backend(name)), f"Flower stayed on {name}: {flower_traces(backend(name))}"
    for name in set(hosts("celery_workers")) - set(hosts("web")):
        assert not gunicorn_traces(backend(name)), f"gunicorn stayed on {name}: {gunicorn_traces(backend(name))}"
    # The retired host is back ("Add a worker host"), like every worker host.
    for worker in hosts("celery_workers"):
        wait_for_pools(worker)
        for pool in expected_pools(worker):
            assert backend(worker).service(f"celery-worker@{pool['name']}").is_enabled, (worker, pool["name"])
    # The rotation's passwords, old and new, show on no host (a command
    # line, the journal, a file an unrelated user can read) nor in the runs'
    # output: the runs pass both to Redis and PostgreSQL.
    rotated = {"redis_celery_password (old)": old, "redis_celery_password (new)": new,
               "flower password (old)": flower_user["password"], "flower password (new)": flower_new[0]["password"],
               "app_secret_key (new)": django, "app_db_password (old)": db_old, "app_db_password (new)": db_new}
    seen_on = {name: secrets_seen_on(name, rotated) for name in hosts("all")}
    SUMMARY.append(("rotated secrets sweep", json.dumps(seen_on)))
    assert all(found == {"ps": [], "journal": [], "files": {}} for found in seen_on.values()), seen_on
    printed = sorted(label for label, value in rotated.items() if any(value in output for output in outputs))
    assert len(outputs) == 5 and not printed, f"the runs printed {printed}"


def retirement_traces(host):
    """What of the app a retired host still has: worker units, a Celery
    process, the app's settings and secrets."""
    traces = host.run("systemctl list-unit-files --no-legend 'celery-worker*'").stdout.split()[:1]
    traces += ["a Celery process"] if host.run("pgrep -f '[c]elery_launcher.py'").stdout.strip() else []
    return traces + ([f"/etc/{APP}"] if host.file(f"/etc/{APP}").exists else [])


def role_exists(name):
    """Whether the PostgreSQL host has the role `name`."""
    query = f"select rolname from pg_roles where rolname = '{name}'"  # noqa: S608 (a name the test made)
    roles = backend(hosts("postgresql")[0]).check_output(f"runuser -u postgres -- psql -tAc {shlex.quote(query)}")
    return roles == name


def failed_database_logins():
    """How many logins PostgreSQL has refused for a wrong password (its log)."""
    host = backend(hosts("postgresql")[0])
    logs = "/var/log/postgresql/postgresql-*-main.log"  # a missing log fails here, not counts 0
    return int(host.check_output(f"ls {logs} > /dev/null && cat {logs} | grep -c 'password authentication failed' "
                                 "|| test $? = 1"))


def database_login(web):
    """The PostgreSQL user and password in the app's DATABASE_URL on `web`."""
    credentials = database_url(web).split("//", 1)[1].split("@", 1)[0]
    user, password = credentials.split(":", 1)
    return user, unquote(password)
