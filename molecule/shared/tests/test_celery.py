"""Celery services, driven by the inventory: worker pools, exactly one beat,
Flower; routing, retries, dead letters, and an operator's inventory edit
(made by the scenario's side effect)."""

import base64
import json
import shlex
import socket
import subprocess
import time
import urllib.request

import pytest
from conftest import (
    APP,
    FLOWER,
    api,
    backend,
    celery_json,
    expected_pools,
    hosts,
    http,
    manage,
    nodename,
    run_task,
    variables,
    wait_for_task,
)

pytestmark = pytest.mark.skipif(not hosts("celery_workers"), reason="this scenario has no workers")


def every_pool_node():
    return {f"{pool['name']}@{nodename(worker)}": (worker, pool)
            for worker in hosts("celery_workers") for pool in expected_pools(worker)}


@pytest.mark.parametrize("name", hosts("all"))
def test_units_run_exactly_on_their_groups(name):
    host = backend(name)
    groups = variables(name)["group_names"]
    for pool in expected_pools(name) if "celery_workers" in groups else []:
        unit = host.service(f"celery-worker@{pool['name']}")
        assert unit.is_running and unit.is_enabled, pool["name"]
        pid = host.check_output(f"systemctl show --property=MainPID --value celery-worker@{pool['name']}")
        assert host.check_output(f"ps -o user= -p {pid}") == APP, "workers never run as root"
    worker_units = host.run("systemctl list-units --all --plain --no-legend 'celery-worker@*'").stdout
    if "celery_workers" not in groups:
        assert worker_units.strip() == ""
    assert host.service("celery-beat").is_running == ("celery_beat" in groups)
    assert host.service("celery-beat").is_enabled == ("celery_beat" in groups)
    assert host.service("flower").is_running == ("flower" in groups)
    assert host.service("gunicorn").is_running == ("web" in groups)
    assert host.service("redis-server").is_running == ("redis" in groups)
    assert host.service("postgresql").is_running == ("postgresql" in groups)


def test_exactly_one_beat_process_in_the_deployment():
    beat = "pgrep -f '[c]elery_launcher.py --app=.* beat'"
    count = sum(len(backend(name).run(beat).stdout.split()) for name in hosts("all"))
    assert count == 1


@pytest.mark.parametrize("name", hosts("celery_workers"))
def test_units_pass_systemd_analyze(name):
    host = backend(name)
    pools = " ".join(f"celery-worker@{pool['name']}.service" for pool in expected_pools(name))
    result = host.run(f"systemd-analyze verify celery-workers.target {pools}")
    assert result.rc == 0, result.stderr


def test_every_pool_runs_with_its_inventory_concurrency(web):
    stats = celery_json(web, "inspect", "stats", "--timeout=10")
    nodes = every_pool_node()
    assert set(stats) == set(nodes)
    for node, (_, pool) in nodes.items():
        assert stats[node]["pool"]["max-concurrency"] == pool["concurrency"], node


@pytest.mark.parametrize("name", hosts("celery_workers"))
def test_the_edit_restarted_nothing_but_the_edited_pool(name):
    """The side effect recorded the default pool's MainPID, then changed
    another pool's concurrency and removed a pool: default kept running."""
    host = backend(name)
    before = host.file("/var/tmp/molecule-default-pool-pid").content_string.strip()
    now = host.run("systemctl show --property=MainPID --value celery-worker@default.service").stdout.strip()
    assert before == now


@pytest.mark.parametrize("name", hosts("celery_workers"))
def test_removed_pools_are_gone(name):
    host = backend(name)
    configured = {pool["name"] for pool in expected_pools(name)}
    loaded = host.run("systemctl list-units --all --plain --no-legend 'celery-worker@*'").stdout.split()
    instances = {unit.split("@")[1].removesuffix(".service") for unit in loaded if unit.startswith("celery-worker@")}
    assert instances == configured
    dropins = host.run("ls -d /etc/systemd/system/celery-worker@*.service.d").stdout.split()
    assert {path.split("@")[1].removesuffix(".service.d") for path in dropins} == configured


def test_each_queue_is_served_by_its_pool(web):
    pools = {pool["name"]: pool for _, pool in every_pool_node().values()}
    for pool in pools.values():
        for queue in pool["queues"]:
            body = run_task(web, "whoami", {"queue": queue})
            assert body["status"] == "SUCCESS", body
            answered = body["result"]["hostname"]
            assert answered.split("@")[0] == pool["name"], (queue, answered)
            assert body["result"]["queue"] == queue
            worker_nodes = {nodename(w) for w in hosts("celery_workers")}
            assert answered.split("@")[1] in worker_nodes
            if nodename(hosts("web")[0]) not in worker_nodes:
                assert answered.split("@")[1] != nodename(hosts("web")[0])


def test_paused_workers_take_nothing_until_resumed(web):
    """`consumers pause` (what the Redis role runs around a restart) stops
    every pool taking tasks; `resume` gives each its queues back."""
    host = backend(hosts("celery_workers")[0])
    paused = host.run(f"{APP}-celery consumers pause")
    try:
        assert paused.rc == 0, paused.stdout + paused.stderr
        nodes = json.loads(paused.stdout.strip().splitlines()[-1])["paused"]
        assert set(nodes) == set(every_pool_node()), nodes
        assert not any(celery_json(web, "inspect", "active_queues").values())
        posted = api(web, "POST", "/api/tasks/add/", {"args": [2, 3]})
        assert posted["status"] == 202, posted
        time.sleep(5)
        assert api(web, "GET", f"/api/tasks/{posted['body']['task_id']}/")["body"]["status"] == "PENDING"
    finally:
        resumed = host.run(f"{APP}-celery consumers resume")
    assert resumed.rc == 0, resumed.stdout + resumed.stderr
    assert wait_for_task(web, posted["body"]["task_id"])["result"] == 5


def test_beat_writes_heartbeats(web):
    def count():
        return int(manage(web, "shell", "--no-imports", "-c",
                          "from jobs.models import Heartbeat; print(Heartbeat.objects.count())").strip())

    before = count()
    deadline = time.monotonic() + 60
    while count() <= before:
        assert time.monotonic() < deadline, "no new heartbeat within 60 s"
        time.sleep(2)


def test_failed_task_lands_in_the_dead_letters_after_its_retries(web):
    body = run_task(web, "always_fails", {"kwargs": {"reason": "molecule"}}, timeout=90)
    assert body["status"] == "FAILURE"
    assert "molecule (attempt 3)" in body["error"]
    deadline = time.monotonic() + 20
    while body["task_id"] not in manage(web, "deadletters", "--json"):
        assert time.monotonic() < deadline, "failure not dead-lettered"
        time.sleep(1)


def test_idempotent_task_delivered_twice_has_one_side_effect(web):
    key = f"molecule-{time.time_ns()}"
    first = run_task(web, "record_side_effect", {"args": [key, {"n": 1}]})
    second = run_task(web, "record_side_effect", {"args": [key, {"n": 1}]})
    assert first["result"] == {"key": key, "created": True}
    assert second["result"] == {"key": key, "created": False}
    rows = manage(web, "shell", "--no-imports", "-c",
                  f"from jobs.models import SideEffect; print(SideEffect.objects.filter(key={key!r}).count())")
    assert rows.strip() == "1"


@pytest.fixture(scope="module")
def flower():
    name = hosts("flower")[0]
    credentials = variables(name)["flower_basic_auth"][0]
    return backend(name), f"{credentials['username']}:{credentials['password']}"


@pytest.mark.parametrize("path", ["/", "/api/workers", "/metrics"])
def test_flower_requires_credentials(flower, path):
    host, auth = flower
    assert http(host, "GET", f"http://{FLOWER}{path}")["status"] == 401
    assert http(host, "GET", f"http://{FLOWER}{path}", auth="operator:wrong-password")["status"] == 401
    assert http(host, "GET", f"http://{FLOWER}{path}", auth=auth)["status"] == 200


def test_flower_lists_every_pool_node_online(flower):
    host, auth = flower
    expected = set(every_pool_node())
    deadline = time.monotonic() + 60
    while True:
        status = http(host, "GET", f"http://{FLOWER}/api/workers?refresh=1&status=1", auth=auth)["body"]
        online = {node for node, up in status.items() if up}
        if online == expected:
            break
        assert time.monotonic() < deadline, f"Flower shows {sorted(online)} online, not {sorted(expected)}"
        time.sleep(3)


def test_flower_through_an_ssh_tunnel(flower, tmp_path):
    """docs/RUNBOOK.md's "Watch": Flower listens on its host's loopback only;
    an operator reaches it with `ssh -L 5555:127.0.0.1:5555 <flower host>`
    (here from the controller to the test host's sshd, with a throwaway key)."""
    host, auth = flower
    name = hosts("flower")[0]
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    address = subprocess.run(["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
                              name], check=True, capture_output=True, text=True).stdout.split()[0]
    flower_port = int(FLOWER.rsplit(":", 1)[1])
    with socket.socket() as probe:  # Flower does not answer on the host's own address
        probe.settimeout(5)
        assert probe.connect_ex((address, flower_port)) != 0, f"Flower answers on {address}:{flower_port}"
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        local = free.getsockname()[1]
    host.run_expect([0], f"install -d -m 700 /root/.ssh && echo {shlex.quote(key.with_suffix('.pub').read_text())}"
                         " > /root/.ssh/authorized_keys")
    tunnel = subprocess.Popen(["ssh", "-i", str(key), "-N", "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes",
                               "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                               "-L", f"127.0.0.1:{local}:{FLOWER}", f"root@{address}"],
                              stderr=subprocess.PIPE, text=True)
    try:
        request = urllib.request.Request(f"http://127.0.0.1:{local}/api/workers?refresh=1&status=1", headers={
            "Authorization": "Basic " + base64.b64encode(auth.encode()).decode()})
        deadline = time.monotonic() + 30
        while True:
            assert tunnel.poll() is None, f"ssh exited: {tunnel.stderr.read()}"
            try:
                with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
                    workers = json.loads(response.read())
                break
            except OSError:
                assert time.monotonic() < deadline, "no answer through the tunnel within 30 s"
                time.sleep(1)
        online = {node for node, up in workers.items() if up}
        assert set(every_pool_node()) <= online, workers
    finally:
        tunnel.terminate()
        tunnel.wait(timeout=10)
        host.run("rm -f /root/.ssh/authorized_keys")


def test_flower_metrics_are_prometheus(flower):
    host, auth = flower
    metrics = http(host, "GET", f"http://{FLOWER}/metrics", auth=auth)["body"]
    assert "flower_events_total" in metrics


def test_flower_credentials_are_not_on_a_command_line(flower):
    host, auth = flower
    assert auth.split(":", 1)[1] not in host.run("ps -eo args").stdout
    assert host.file(f"/etc/{APP}/flower.env").mode == 0o640


def test_flower_gets_the_broker_and_its_credentials_only(flower):
    host, auth = flower
    pid = host.run("systemctl show --property MainPID --value flower.service").stdout.strip()
    environ = host.run("tr '\\0' '\\n' < /proc/%s/environ", pid).stdout
    names = {line.split("=", 1)[0] for line in environ.splitlines() if "=" in line}
    assert {"CELERY_BROKER_URL", "FLOWER_BASIC_AUTH"} <= names
    assert not names & {"DJANGO_SECRET_KEY", "DATABASE_URL", "APP_API_TOKEN"}
    # The broker page reads each queue's length from Redis.
    queues = http(host, "GET", f"http://{FLOWER}/api/queues/length", auth=auth)
    assert queues["status"] == 200
    assert {queue["name"] for queue in queues["body"]["active_queues"]} >= {"default"}
