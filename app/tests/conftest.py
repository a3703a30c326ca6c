"""A real Redis server for the session, configured like the Redis role does:
the app connects as the `celery` ACL user with the role's own rules."""

import json
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from config.celery import app as celery_app
from django.test import Client

REDIS_PORT = 6399  # matches TEST_REDIS in config/test_settings.py
ROLE_DEFAULTS = Path(__file__).resolve().parents[2] / "roles" / "redis" / "defaults" / "main.yml"
CELERY_PASSWORD = "test-celery-password-0123456789"
ADMIN_PASSWORD = "test-admin-password-0123456789"


def celery_acl_rules():
    """The `celery` user's rules, read from the Redis role so the two cannot drift
    (a folded block, `redis_celery_acl_rules: >-`, one indented line per group)."""
    match = re.search(r"^redis_celery_acl_rules: >-\n((?:  .+\n)+)", ROLE_DEFAULTS.read_text(), re.MULTILINE)
    assert match, f"redis_celery_acl_rules not found in {ROLE_DEFAULTS}"
    return " ".join(match.group(1).split())


def acl_refusals(port, password):
    """What Redis's ACL LOG holds besides failed logins: commands, keys or
    channels the `celery` user was refused."""
    log = subprocess.run(["redis-cli", "-p", str(port), "--json", "ACL", "LOG"], env={"REDISCLI_AUTH": password},
                         capture_output=True, text=True, check=True).stdout
    return [entry for entry in json.loads(log or "[]") if entry.get("reason") != "auth"]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed: apt-get install redis-server (the test command needs it)"
    workdir = tmp_path_factory.mktemp("redis")
    acl = workdir / "users.acl"
    acl.write_text(
        f"user default on >{ADMIN_PASSWORD} ~* &* +@all\n"
        f"user celery on >{CELERY_PASSWORD} {celery_acl_rules()}\n"
    )
    process = subprocess.Popen(
        [binary, "--port", str(REDIS_PORT), "--bind", "127.0.0.1", "--dir", str(workdir), "--save", "",
         "--appendonly", "no", "--aclfile", str(acl), "--maxmemory-policy", "noeviction"],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", REDIS_PORT), timeout=0.2).close()
            break
        except OSError:
            assert process.poll() is None, f"redis-server exited (is port {REDIS_PORT} taken?)"
            assert time.monotonic() < deadline, "redis-server did not start within 10 s"
            time.sleep(0.1)
    yield process
    refused = acl_refusals(REDIS_PORT, ADMIN_PASSWORD)
    process.terminate()
    process.wait(timeout=10)
    assert not refused, f"the celery ACL user was refused commands the app sends: {refused}"


@pytest.fixture
def broker(redis_server):
    """The Celery app, with the session's Redis running behind its broker URL."""
    return celery_app


@pytest.fixture
def eager():
    """Run tasks in-process; results are not stored."""
    celery_app.conf.update(task_always_eager=True, task_eager_propagates=False)
    yield celery_app
    celery_app.conf.update(task_always_eager=False)


@pytest.fixture
def eager_with_results(broker, eager):
    """Run tasks in-process and store their results in Redis, where the API reads them."""
    celery_app.conf.update(task_store_eager_result=True)
    yield celery_app
    celery_app.conf.update(task_store_eager_result=False)


@pytest.fixture
def api_client(settings):
    """A test client that sends the API token, as every caller of the task API must."""
    return Client(headers={"Authorization": f"Bearer {settings.APP_API_TOKEN}"})
