"""Bad inventory input stops site.yml in the preflight play, before any tier runs."""

import hashlib
import json
import sys

import pytest
from conftest import GOOD, ROOT, ansible, assert_stopped_in_preflight, run_site


def test_missing_password_is_named(inventory):
    result = run_site(inventory(["redis"], {"redis_celery_password": GOOD["redis_celery_password"]}))
    assert_stopped_in_preflight(result, "redis_password")


@pytest.mark.parametrize("weak", ["short", "changeme-but-long-enough"])
def test_weak_password_is_refused_without_printing_it(inventory, weak):
    result = run_site(inventory(["redis"], dict(GOOD, redis_celery_password=weak)))
    assert_stopped_in_preflight(result, "too weak")
    assert weak not in result.stdout + result.stderr


DB_SECRET = "a-long-random-db-secret-789"


@pytest.mark.parametrize(("group", "secret", "message"), [
    ("redis", "redis_celery_password", "redis_celery_password_previous must be the old password"),
    ("postgresql", "postgresql_app_password", "postgresql_app_password_previous is the old password"),
])
def test_previous_password_equal_to_the_new_one_is_refused(inventory, group, secret, message):
    variables = dict(GOOD, postgresql_app_password=DB_SECRET)
    variables[f"{secret}_previous"] = variables[secret]
    result = run_site(inventory([group], variables))
    assert_stopped_in_preflight(result, message)
    assert variables[secret] not in result.stdout + result.stderr


def test_role_owned_directive_is_refused(inventory):
    variables = dict(GOOD, redis_extra_config={"maxmemory-policy": "allkeys-lru"})
    assert_stopped_in_preflight(run_site(inventory(["redis"], variables)), "maxmemory-policy")


def test_wrong_type_is_refused(inventory):
    variables = dict(GOOD, redis_port="not-a-port")
    assert_stopped_in_preflight(run_site(inventory(["redis"], variables)), "redis_port")


def test_wildcard_bind_must_stand_alone(inventory):
    variables = dict(GOOD, redis_bind=["127.0.0.1", "0.0.0.0"])
    assert_stopped_in_preflight(run_site(inventory(["redis"], variables)), "must stand alone")


def test_bad_choice_is_refused(inventory):
    variables = dict(GOOD, redis_appendfsync="sometimes")
    assert_stopped_in_preflight(run_site(inventory(["redis"], variables)), "redis_appendfsync")


def test_good_input_passes_preflight(inventory):
    result = ansible("ansible-playbook", "playbooks/preflight.yml", "-i", str(inventory(["redis"], GOOD)))
    assert result.returncode == 0, result.stdout + result.stderr
    for secret in GOOD.values():
        assert secret not in result.stdout + result.stderr


def test_hosts_outside_the_redis_group_need_no_redis_secrets(inventory):
    variables = {"postgresql_app_password": DB_SECRET}
    result = ansible("ansible-playbook", "playbooks/preflight.yml", "-i", str(inventory(["postgresql"], variables)))
    assert result.returncode == 0, result.stdout + result.stderr


def acl_line(user, *passwords):
    hashes = " ".join(f"#{hashlib.sha256(password.encode()).hexdigest()}" for password in passwords)
    return f"user {user} on {hashes} ~* +@all\n"


OLD_CELERY = "the-celery-password-redis-has-now-0"


@pytest.mark.parametrize(("live", "change", "refused"), [
    # Redis has the old password: a new one alone is refused, with the old one as _previous it is a rotation.
    ([("celery", OLD_CELERY)], {}, True),
    ([("celery", OLD_CELERY)], {"redis_celery_password_previous": OLD_CELERY}, False),
    ([("celery", OLD_CELERY)], {"redis_celery_password_previous": "not-the-password-redis-has-1"}, True),
    # The second run of a rotation: Redis accepts both, the new one alone is fine.
    ([("celery", OLD_CELERY, GOOD["redis_celery_password"])], {}, False),
    # The admin password is checked the same way.
    ([("celery", GOOD["redis_celery_password"]), ("default", "the-admin-password-redis-has-2")], {}, True),
    # A user Redis does not have yet has nothing to rotate.
    ([("default", GOOD["redis_password"])], {}, False),
])
def test_a_password_change_must_be_a_rotation(inventory, tmp_path, live, change, refused):
    """The preflight compares the inventory's passwords with the hashes in the
    users file the role wrote on the Redis host (here a file on the
    controller, where the unit tests' host is)."""
    (tmp_path / "users.acl").write_text("".join(acl_line(*user) for user in live))
    hosts = inventory(["redis"], dict(GOOD, **change))
    config = f"__redis_config_dir={tmp_path}"
    result = ansible("ansible-playbook", "playbooks/preflight.yml", "-i", str(hosts), "-e", config)
    output = result.stdout + result.stderr
    assert (result.returncode != 0) == refused, output
    if refused:
        assert "is not a password Redis accepts" in output, output
    for secret in [*GOOD.values(), *change.values(), OLD_CELERY]:
        assert secret not in output


# What PostgreSQL 15 stored for the Molecule scenarios' test password (its
# SCRAM-SHA-256 verifier, read from pg_authid on the cluster's web1).
MOLECULE_DB = "molecule-db-3c9e1b7a5d2f"
MOLECULE_DB_VERIFIER = ("SCRAM-SHA-256$4096:NpBT4G29Eb7626GySfdjrg==$gYXOr19J0bUKKEWJPUU4bjoIZEMjCkJmgZBFALB5rFs="
                        ":ctappXTObOZitVpdbJhn2GrVInKX52uzsllWhB97TEg=")


def md5_verifier(password, user):
    return "md5" + hashlib.md5((password + user).encode(), usedforsecurity=False).hexdigest()


def test_the_verifier_check():
    sys.path.insert(0, str(ROOT / "roles/postgresql/filter_plugins"))
    from postgresql_password import postgresql_password_matches as matches

    assert matches(MOLECULE_DB_VERIFIER, MOLECULE_DB, "djangoapp") is True
    assert matches(MOLECULE_DB_VERIFIER, MOLECULE_DB[:-1] + "e", "djangoapp") is False
    assert matches(md5_verifier(DB_SECRET, "djangoapp"), DB_SECRET, "djangoapp") is True
    assert matches(md5_verifier(DB_SECRET, "djangoapp"), DB_SECRET, "other") is False
    # Cannot tell: no verifier, another format, a password PostgreSQL would normalize first.
    assert matches("", DB_SECRET, "djangoapp") is None
    assert matches("SCRAM-SHA-512$4096:abcd$efgh:ijkl", DB_SECRET, "djangoapp") is None
    assert matches("SCRAM-SHA-256$4096:not base64!$x:y", DB_SECRET, "djangoapp") is None
    assert matches(MOLECULE_DB_VERIFIER, "mot-de-passe-\u00e9t\u00e9-0123", "djangoapp") is None


@pytest.mark.parametrize(("live", "change", "refused"), [
    # PostgreSQL has the old password: a new one alone is refused, with _previous it is a rotation.
    ({"djangoapp": MOLECULE_DB_VERIFIER}, {}, True),
    ({"djangoapp": MOLECULE_DB_VERIFIER}, {"postgresql_app_password_previous": MOLECULE_DB}, False),
    ({"djangoapp": MOLECULE_DB_VERIFIER}, {"postgresql_app_password": MOLECULE_DB}, False),
    # A rotation's second run: the second role has the new password (and not a third one).
    ({"djangoapp": MOLECULE_DB_VERIFIER, "djangoapp_rotating": md5_verifier(DB_SECRET, "djangoapp_rotating")},
     {}, False),
    ({"djangoapp": MOLECULE_DB_VERIFIER, "djangoapp_rotating": md5_verifier("a-third-one-01234", "djangoapp_rotating")},
     {}, True),
    # A rotation over one that has not finished; the same first run again is fine.
    ({"djangoapp": MOLECULE_DB_VERIFIER, "djangoapp_rotating": md5_verifier("a-third-one-01234", "djangoapp_rotating")},
     {"postgresql_app_password_previous": MOLECULE_DB}, "an earlier rotation has not finished"),
    ({"djangoapp": MOLECULE_DB_VERIFIER, "djangoapp_rotating": md5_verifier(DB_SECRET, "djangoapp_rotating")},
     {"postgresql_app_password_previous": MOLECULE_DB}, False),
    # No role yet, or a PostgreSQL that does not answer (psql exits 2): nothing to compare.
    ({}, {}, False),
    (None, {}, False),
])
def test_a_postgresql_password_change_must_be_a_rotation(inventory, tmp_path, live, change, refused):
    """The preflight compares the inventory's password with the verifiers
    PostgreSQL stores (here printed by a stand-in for psql)."""
    psql = tmp_path / "psql"
    psql.write_text("#!/bin/sh\nexit 2\n" if live is None else "#!/bin/sh\ncat <<'EOF'\n"
                    + "".join(f"{role}|{verifier}\n" for role, verifier in live.items()) + "EOF\n")
    psql.chmod(0o755)
    hosts = inventory(["postgresql"], {**GOOD, "postgresql_app_password": DB_SECRET, **change})
    result = ansible("ansible-playbook", "playbooks/preflight.yml", "-i", str(hosts),
                     "-e", json.dumps({"__postgresql_psql": [str(psql)]}))
    output = result.stdout + result.stderr
    assert (result.returncode != 0) == bool(refused), output
    if refused:
        message = refused if isinstance(refused, str) else "is not the password PostgreSQL has for 'djangoapp'"
        assert message in " ".join(output.split()), output
    if live is None:
        assert "did not answer (psql exited 2)" in " ".join(output.split()), output
    for secret in [DB_SECRET, MOLECULE_DB, *change.values()]:
        assert secret not in output
