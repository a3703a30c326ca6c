"""The Redis tier is a password-protected, durable, least-privilege broker."""

import shlex

import pytest
from conftest import REDIS_PORT, backend, hosts, role_default, variables

testinfra_hosts = hosts("redis")


def redis_cli(host, *args, user=None, password=None):
    """Run redis-cli on the host, authenticating through REDISCLI_AUTH."""
    env = f"REDISCLI_AUTH={shlex.quote(password)} " if password else ""
    who = f"--user {user} " if user else ""
    command = f"{env}redis-cli --no-auth-warning {who}" + " ".join(shlex.quote(a) for a in args)
    result = host.run(command)
    return (result.stdout + result.stderr).strip()


@pytest.fixture
def secrets(host):
    variables = host.ansible.get_variables()
    return {
        "default": variables["redis_password"],
        "celery": variables["redis_celery_password"],
    }


def as_admin(host, secrets, *args):
    return redis_cli(host, *args, password=secrets["default"])


def as_celery(host, secrets, *args):
    return redis_cli(host, *args, user="celery", password=secrets["celery"])


def test_service_is_active_and_enabled(host):
    service = host.service("redis-server")
    assert service.is_running
    assert service.is_enabled


def test_listens_where_the_inventory_says(host):
    bind = host.ansible.get_variables().get("redis_bind", role_default("redis", "redis_bind"))
    if "0.0.0.0" in bind:
        assert host.socket(f"tcp://0.0.0.0:{REDIS_PORT}").is_listening
    else:
        assert host.socket(f"tcp://127.0.0.1:{REDIS_PORT}").is_listening
        assert not host.socket(f"tcp://0.0.0.0:{REDIS_PORT}").is_listening


def test_unauthenticated_ping_is_refused(host):
    assert "NOAUTH" in redis_cli(host, "PING")


def test_wrong_password_is_refused(host):
    out = redis_cli(host, "PING", user="celery", password="not-the-password-at-all")
    assert "WRONGPASS" in out or "invalid" in out


def test_celery_user_can_push_and_pop(host, secrets):
    as_celery(host, secrets, "DEL", "molecule:queue")
    assert as_celery(host, secrets, "LPUSH", "molecule:queue", "task-1") == "1"
    assert as_celery(host, secrets, "BRPOP", "molecule:queue", "1").splitlines() == [
        "molecule:queue",
        "task-1",
    ]


@pytest.mark.parametrize(
    "command",
    [("FLUSHALL",), ("FLUSHDB",), ("CONFIG", "GET", "maxmemory-policy"), ("KEYS", "*"), ("ACL", "LIST"), ("SHUTDOWN",)],
)
def test_celery_user_cannot_run_dangerous_commands(host, secrets, command):
    assert "NOPERM" in as_celery(host, secrets, *command)


def test_admin_sees_broker_settings(host, secrets):
    assert as_admin(host, secrets, "CONFIG", "GET", "maxmemory-policy").splitlines() == [
        "maxmemory-policy",
        "noeviction",
    ]
    assert as_admin(host, secrets, "CONFIG", "GET", "appendonly").splitlines() == ["appendonly", "yes"]
    assert as_admin(host, secrets, "CONFIG", "GET", "appendfsync").splitlines() == ["appendfsync", "everysec"]
    assert as_admin(host, secrets, "CONFIG", "GET", "protected-mode").splitlines() == ["protected-mode", "yes"]


def test_aof_is_written(host, secrets):
    as_celery(host, secrets, "SET", "molecule:durable", "yes")
    assert host.file("/var/lib/redis/appendonlydir").is_directory


def test_redis_cannot_rewrite_its_managed_config(host, secrets):
    # The drop-in takes /etc/redis out of the unit's writable paths.
    assert "ERR" in as_admin(host, secrets, "CONFIG", "REWRITE")


def test_no_plaintext_password_on_disk(host, secrets):
    for path in ("/etc/redis/redis.conf", "/etc/redis/users.acl"):
        content = host.file(path).content_string
        assert secrets["default"] not in content
        assert secrets["celery"] not in content
    acl = host.file("/etc/redis/users.acl")
    assert acl.mode == 0o640
    assert acl.user == "root"
    assert acl.group == "redis"


def test_kernel_tuning_is_persisted(host):
    sysctl = host.file("/etc/sysctl.d/60-redis.conf").content_string
    assert "vm.overcommit_memory=1" in sysctl
    assert "net.core.somaxconn=1024" in sysctl
    assert host.service("disable-transparent-hugepages").is_enabled


def test_units_pass_systemd_analyze(host):
    result = host.run("systemd-analyze verify --man=no redis-server.service disable-transparent-hugepages.service")
    assert result.rc == 0, result.stderr


@pytest.mark.parametrize("client", [name for name in hosts("all") if name not in hosts("redis")] or [None])
def test_other_hosts_reach_redis_only_with_a_password(host, client):
    if client is None:
        pytest.skip("every host of this scenario runs Redis")
    server = host.backend.get_hostname()
    probe = (f"import socket; s = socket.create_connection(({server!r}, {REDIS_PORT}), timeout=5);"
             "s.sendall(b'PING\\r\\n'); print(s.recv(100).decode())")
    assert "NOAUTH" in backend(client).run("python3 -c %s", probe).stdout
    password = variables(client).get("redis_celery_password")
    auth = (f"import socket; s = socket.create_connection(({server!r}, {REDIS_PORT}), timeout=5);"
            f"s.sendall(b'AUTH celery {password}\\r\\nPING\\r\\n'); import time; time.sleep(0.5);"
            "print(s.recv(100).decode())")
    assert "+PONG" in backend(client).run("python3 -c %s", auth).stdout
