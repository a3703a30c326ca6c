"""The web tier serves the app over gunicorn, with Redis and PostgreSQL on
another host: health, the HTTP API into the broker, deploy steps, hardening."""

import json
import uuid

import pytest
from conftest import APP, WEB, api, backend, hosts, manage, redis_cli_options, run_task, variables

testinfra_hosts = hosts("web")


def test_gunicorn_is_active_enabled_and_not_root(host):
    service = host.service("gunicorn")
    assert service.is_running
    assert service.is_enabled
    pid = host.run("systemctl show -p MainPID --value gunicorn").stdout.strip()
    assert host.run(f"ps -o user= -p {pid}").stdout.strip() == APP


def test_listens_on_loopback_only(host):
    port = WEB.rsplit(":", 1)[1]
    assert host.socket(f"tcp://{WEB}").is_listening
    assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening


def test_healthz_reports_database_and_broker(host):
    assert api(host, "GET", "/healthz") == {
        "status": 200,
        "body": {"status": "ok", "database": "ok", "broker": "ok"},
    }


@pytest.mark.skipif(bool(hosts("celery_workers")), reason="workers run here: see the round trip")
def test_without_workers_a_posted_task_waits_in_redis(host):
    posted = api(host, "POST", "/api/tasks/add/", {"args": [2, 3]})
    assert posted["status"] == 202
    task_id = posted["body"]["task_id"]
    assert api(host, "GET", f"/api/tasks/{task_id}/")["body"]["status"] == "PENDING"
    redis = hosts("redis")[0]
    queued = backend(redis).run(f"REDISCLI_AUTH=%s redis-cli {redis_cli_options(backend(redis))} LRANGE default 0 -1",
                                variables(redis)["redis_password"]).stdout
    assert task_id in queued


@pytest.mark.skipif(not hosts("celery_workers"), reason="this scenario has no workers")
def test_round_trip_over_http(host):
    """HTTP -> Redis -> a worker pool -> the result backend -> HTTP."""
    body = run_task(host, "add", {"args": [2, 3]})
    assert body["status"] == "SUCCESS", body
    assert body["result"] == 5


def test_bad_requests_are_refused(host):
    assert api(host, "POST", "/api/tasks/not_allowed/", {"args": []})["status"] == 404
    assert api(host, "POST", "/api/tasks/add/", {"args": [], "queue": "nowhere"})["status"] == 400


@pytest.mark.parametrize("token", ["", "not-the-api-token-0123456789abcdef"], ids=["without-token", "wrong-token"])
@pytest.mark.parametrize(("method", "path", "body"), [("POST", "/api/tasks/add/", {"args": [2, 3]}),
                                                      ("GET", f"/api/tasks/{uuid.UUID(int=0)}/", None)],
                         ids=["enqueue", "result"])
def test_the_task_api_needs_the_token(host, token, method, path, body):
    response = api(host, method, path, body, token=token)
    assert response["status"] == 401, response
    assert set(response["body"]) == {"error"}, response


def test_migrations_ran_against_the_configured_database(host):
    plan = manage(host, "showmigrations", "--plan")
    assert "[ ]" not in plan
    assert "jobs.0001_initial" in plan
    engine = manage(host, "shell", "--no-imports", "-c", "from django.db import connection; print(connection.vendor)")
    expected = "postgresql" if host.ansible.get_variables().get("app_db_engine") == "postgresql" else "sqlite"
    assert engine.strip() == expected


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
    secret, token = (host.ansible.get_variables()[name] for name in ("app_secret_key", "app_api_token"))
    assert secret in env.content_string
    assert f"APP_API_TOKEN='{token}'" in env.content_string
    # Never on a command line or in a unit file.
    processes = host.run("ps -eo args").stdout
    assert secret not in processes and token not in processes
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
