"""The Redis role's templates render what a broker needs and no plaintext secret."""

import json
from pathlib import Path

import pytest
import yaml
from conftest import BIN, ROOT, ansible, sha256

ROLE = ROOT / "roles" / "redis"
SECRETS = {"redis_password": "admin-secret-0123456789", "redis_celery_password": "celery-secret-0123456789"}
# The celery user's default rules, as the ACL file writes them (one line).
CELERY_RULES = " ".join(yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())["redis_celery_acl_rules"].split())


@pytest.fixture
def render(tmp_path):
    """Render a role template with the role's defaults, vars and the given overrides."""

    def run(template, **overrides):
        variables = dict(SECRETS, ansible_python_interpreter=str(BIN / "python"), **overrides)
        extra = tmp_path / "extra.json"
        extra.write_text(json.dumps(variables))
        playbook = tmp_path / "render.yml"
        dest = tmp_path / Path(template).name.removesuffix(".j2")
        playbook.write_text(json.dumps([{
            "hosts": "localhost", "gather_facts": False,
            "vars_files": [str(ROLE / "defaults" / "main.yml"), str(ROLE / "vars" / "main.yml")],
            "tasks": [{"ansible.builtin.template": {"src": str(ROLE / "templates" / template),
                                                     "dest": str(dest), "mode": "0600"}}],
        }]))
        result = ansible("ansible-playbook", "-i", "localhost,", "-c", "local", str(playbook),
                         "-e", f"@{extra}")
        assert result.returncode == 0, result.stdout + result.stderr
        return dest.read_text()

    return run


def test_acl_file_holds_hashes_only(render):
    acl = render("etc/redis/users.acl.j2")
    lines = acl.strip().splitlines()
    assert lines == [
        f"user default on #{sha256(SECRETS['redis_password'])} ~* &* +@all",
        f"user celery on #{sha256(SECRETS['redis_celery_password'])} {CELERY_RULES}",
    ]
    # An allow-list: every command named, none of Redis's categories beyond
    # the connection's own.
    assert CELERY_RULES.startswith("~* &* -@all +@connection -@dangerous ")
    refused = {"+@all", "+eval", "+keys", "+flushall", "+config", "+script", "+function", "+rename"}
    assert not refused & set(CELERY_RULES.split())
    for secret in SECRETS.values():
        assert secret not in acl


def test_acl_file_adds_extra_users(render):
    acl = render("etc/redis/users.acl.j2", redis_extra_acl_users=[
        {"name": "metrics", "password": "metrics-secret-0123456", "rules": "+info +ping"}])
    assert acl.strip().splitlines()[-1] == f"user metrics on #{sha256('metrics-secret-0123456')} +info +ping"


def test_a_rotation_accepts_the_previous_password_too(render):
    acl = render("etc/redis/users.acl.j2", redis_celery_password_previous="celery-old-0123456789")
    assert acl.strip().splitlines()[1] == (
        f"user celery on #{sha256(SECRETS['redis_celery_password'])} #{sha256('celery-old-0123456789')} "
        f"{CELERY_RULES}")
    assert "celery-old-0123456789" not in acl


def test_live_acl_update_sets_the_same_users_in_place(render):
    commands = render("acl-setuser.j2", __redis_stale_users=["metrics"]).strip().splitlines()
    acl = render("etc/redis/users.acl.j2").strip().splitlines()
    assert commands[:2] == [line.replace("user ", "ACL SETUSER ", 1).replace(" on ", " reset on ", 1) for line in acl]
    assert commands[2:] == ["ACL DELUSER metrics"]
    for secret in SECRETS.values():
        assert secret not in "\n".join(commands)


def test_config_is_a_durable_broker(render):
    conf = render("etc/redis/redis.conf.j2").splitlines()
    for line in ["maxmemory-policy noeviction", "appendonly yes", "appendfsync everysec",
                 "protected-mode yes", "bind 127.0.0.1 -::1", "aclfile /etc/redis/users.acl",
                 "save 3600 1", 'logfile ""', "supervised systemd"]:
        assert line in conf
    assert not any(line.startswith("requirepass") for line in conf)


def test_config_without_snapshots_and_with_extras(render):
    conf = render("etc/redis/redis.conf.j2", redis_rdb_save=[], redis_maxmemory="512mb",
                  redis_extra_config={"lazyfree-lazy-user-del": "yes"}).splitlines()
    assert 'save ""' in conf
    assert "maxmemory 512mb" in conf
    assert "lazyfree-lazy-user-del yes" in conf
    assert not any(line.startswith("save 3600") for line in conf)


def test_with_tls_redis_takes_tls_connections_only(render):
    conf = render("etc/redis/redis.conf.j2", redis_tls=True).splitlines()
    assert [line for line in conf if line.startswith(("port ", "tls-port "))] == ["port 0", "tls-port 6379"]
    assert "tls-cert-file /etc/redis/tls/server.crt" in conf
    assert "tls-auth-clients no" in conf
    plain = render("etc/redis/redis.conf.j2").splitlines()
    assert [line for line in plain if line.startswith(("port ", "tls-"))] == ["port 6379"]
