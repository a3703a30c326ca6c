"""The web tier serves the app over gunicorn, with Redis and PostgreSQL on
another host: health, the HTTP API into the broker, deploy steps, hardening."""

import json
import os

import pytest
import testinfra.utils.ansible_runner

inventory = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"])
testinfra_hosts = inventory.get_hosts("web")

APP = "djangoapp"
HTTP = """
import json, sys, urllib.request, urllib.error
method, path, body = sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None
request = urllib.request.Request("http://127.0.0.1:8000" + path, method=method,
    data=body.encode() if body else None, headers={"Content-Type": "application/json"})
try:
    response = urllib.request.urlopen(request, timeout=10)
except urllib.error.HTTPError as error:
    response = error
print(json.dumps({"status": response.status, "body": json.loads(response.read() or b"null")}))
"""


def http(host, method, path, body=None):
    args = [method, path] + ([json.dumps(body)] if body is not None else [])
    result = host.run("python3 -c %s " + " ".join(["%s"] * len(args)), HTTP, *args)
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)


def manage(host, *args):
    result = host.run(f"{APP}-manage " + " ".join(["%s"] * len(args)), *args)
    assert result.rc == 0, result.stdout + result.stderr
    return result.stdout


def test_gunicorn_is_active_enabled_and_not_root(host):
    service = host.service("gunicorn")
    assert service.is_running
    assert service.is_enabled
    pid = host.run("systemctl show -p MainPID --value gunicorn").stdout.strip()
    assert host.run(f"ps -o user= -p {pid}").stdout.strip() == APP


def test_listens_on_loopback_only(host):
    assert host.socket("tcp://127.0.0.1:8000").is_listening
    assert not host.socket("tcp://0.0.0.0:8000").is_listening


def test_healthz_reports_database_and_broker(host):
    assert http(host, "GET", "/healthz") == {
        "status": 200,
        "body": {"status": "ok", "database": "ok", "broker": "ok"},
    }


def test_task_posted_over_http_waits_in_redis(host):
    """Without workers (they come with the Celery services), the task is
    accepted, stays PENDING, and its message sits in Redis's default queue."""
    posted = http(host, "POST", "/api/tasks/add/", {"args": [2, 3]})
    assert posted["status"] == 202
    task_id = posted["body"]["task_id"]
    assert http(host, "GET", f"/api/tasks/{task_id}/")["body"]["status"] == "PENDING"

    data = host.get_host("ansible://data1", ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"])
    password = data.ansible.get_variables()["redis_password"]
    queued = data.run("REDISCLI_AUTH=%s redis-cli --no-auth-warning LRANGE default 0 -1", password).stdout
    assert task_id in queued


def test_bad_requests_are_refused(host):
    assert http(host, "POST", "/api/tasks/not_allowed/", {"args": []})["status"] == 404
    assert http(host, "POST", "/api/tasks/add/", {"args": [], "queue": "nowhere"})["status"] == 400


def test_migrations_ran_against_postgresql(host):
    plan = manage(host, "showmigrations", "--plan")
    assert "[ ]" not in plan
    assert "jobs.0001_initial" in plan
    engine = manage(host, "shell", "--no-imports", "-c", "from django.db import connection; print(connection.vendor)")
    assert engine.strip() == "postgresql"


def test_periodic_tasks_exist_in_the_database(host):
    names = manage(host, "shell", "--no-imports", "-c",
                   "from django_celery_beat.models import PeriodicTask;"
                   "print(sorted(PeriodicTask.objects.values_list('name', flat=True)))")
    assert "heartbeat" in names
    assert "cleanup heartbeats (3-hourly)" in names
    assert "cleanup side effects (daily)" in names


def test_environment_file_is_private(host):
    env = host.file(f"/etc/{APP}/app.env")
    assert env.mode == 0o640
    assert env.user == "root"
    assert env.group == APP
    secret = host.ansible.get_variables()["app_secret_key"]
    assert secret in env.content_string
    # Never on a command line or in a unit file.
    assert secret not in host.run("ps -eo args").stdout
    assert secret not in host.file("/etc/systemd/system/gunicorn.service").content_string


def test_code_is_not_writable_by_the_app(host):
    assert host.run(f"runuser -u {APP} -- touch /opt/{APP}/src/manage.py").rc != 0
    assert host.file(f"/opt/{APP}/src/manage.py").user == "root"
    assert not host.file(f"/opt/{APP}/src/tests").exists


def test_logs_are_json_lines(host):
    lines = host.run("journalctl -u gunicorn -o cat --no-pager -n 20").stdout.strip().splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert records, lines
    assert all({"time", "level", "logger", "message"} <= set(record) for record in records)


def test_unit_passes_systemd_analyze(host):
    result = host.run("systemd-analyze verify gunicorn.service")
    assert result.rc == 0, result.stderr


@pytest.mark.parametrize("setting", ["NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes"])
def test_unit_is_hardened(host, setting):
    name, value = setting.split("=")
    assert host.run(f"systemctl show -p {name} --value gunicorn").stdout.strip() == value


def test_redis_refuses_unauthenticated_clients_from_the_web_host(host):
    probe = ("import socket; s = socket.create_connection(('data1', 6379), timeout=5);"
             "s.sendall(b'PING\\r\\n'); print(s.recv(100).decode())")
    assert "NOAUTH" in host.run("python3 -c %s", probe).stdout
