"""The Redis tier is a password-protected, durable, least-privilege broker."""

import re
import shlex

import pytest
from conftest import (
    ACL_PROBE_CLIENT,
    APP,
    REDIS_PORT,
    backend,
    hosts,
    redis_acl_refusals,
    redis_cli_options,
    role_default,
    variables,
)

testinfra_hosts = hosts("redis")


def redis_cli(host, *args, user=None, password=None, name=None):
    """Run redis-cli on the host, authenticating through REDISCLI_AUTH; with
    `name`, the connection is named first (commands then come on stdin)."""
    env = f"REDISCLI_AUTH={shlex.quote(password)} " if password else ""
    who = f"--user {user} " if user else ""
    line = " ".join(shlex.quote(a) for a in args)
    if name:
        feed = f"printf '%s\\n' {shlex.quote(f'CLIENT SETNAME {name}')} {shlex.quote(line)} | "
        result = host.run(f"{feed}{env}redis-cli {redis_cli_options(host)} {who}")
    else:
        result = host.run(f"{env}redis-cli {redis_cli_options(host)} {who}{line}")
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
    # Named, so that the check of the ACL LOG at the end tells these refusals
    # from the stack's.
    out = redis_cli(host, *command, user="celery", password=secrets["celery"], name=ACL_PROBE_CLIENT)
    assert "NOPERM" in out


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


# Run on another host: send `payload` to Redis over plain TCP, or over TLS
# verified against `cafile` ("system": the host's own CA store); print the
# reply or the error's name.
CLIENT = """
import socket, ssl, sys, time
server, port, cafile, payload = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
try:
    sock = socket.create_connection((server, port), timeout=5)
    if cafile:
        context = ssl.create_default_context(cafile=None if cafile == "system" else cafile)
        sock = context.wrap_socket(sock, server_hostname=server)
    sock.sendall(payload.encode())
    time.sleep(0.5)
    print(sock.recv(100).decode() or "closed")
except OSError as error:
    print(type(error).__name__, error)
"""
CLIENT_CA = f"/etc/{APP}/redis-ca.crt"  # where the app role puts the CA


def other_hosts():
    return [name for name in hosts("all") if name not in hosts("redis")] or [None]


def send(client, server, payload, cafile=""):
    return backend(client).run("python3 -c %s %s %s %s %s", CLIENT, server, str(REDIS_PORT), cafile, payload).stdout


@pytest.mark.parametrize("client", other_hosts())
def test_other_hosts_reach_redis_only_with_a_password(host, client):
    if client is None:
        pytest.skip("every host of this scenario runs Redis")
    server = host.backend.get_hostname()
    cafile = CLIENT_CA if host.ansible.get_variables().get("redis_tls") else ""
    assert "NOAUTH" in send(client, server, "PING\r\n", cafile)
    password = variables(client).get("redis_celery_password")
    assert "+PONG" in send(client, server, f"AUTH celery {password}\r\nPING\r\n", cafile)


def app_hosts():
    return sorted({name for group in ("web", "celery_workers") for name in hosts(group)}) or [None]


@pytest.mark.parametrize("client", app_hosts())
def test_with_tls_clients_verify_the_server_and_plain_text_is_refused(host, client):
    if client is None or not host.ansible.get_variables().get("redis_tls"):
        pytest.skip("TLS is off, or this scenario has no app host")
    # The address the app uses: loopback on the Redis host itself.
    server = "127.0.0.1" if client == host.backend.get_hostname() else host.backend.get_hostname()
    password = variables(client).get("redis_celery_password")
    assert "+PONG" in send(client, server, f"AUTH celery {password}\r\nPING\r\n", CLIENT_CA)
    assert "NOAUTH" not in send(client, server, "PING\r\n")
    # The CA is no public one: a client that trusts the host's store refuses
    # the certificate, so verification is really on.
    assert "SSLCertVerificationError" in send(client, server, "PING\r\n", "system")
    app_env = backend(client).file(f"/etc/{APP}/app.env").content_string
    assert re.search(r"^CELERY_BROKER_URL='rediss://.*ssl_cert_reqs=required", app_env, re.MULTILINE)


@pytest.mark.last
def test_no_command_of_the_stack_was_refused(host):
    # The `celery` user names each command it may run: anything the app,
    # workers, beat, Flower or the deploy sent outside that list since Redis
    # last started (converge, idempotence, side effect, the shared suite) is
    # in the ACL LOG.
    assert redis_acl_refusals(host) == []
