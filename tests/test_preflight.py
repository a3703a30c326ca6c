"""Bad inventory input stops site.yml in the preflight play, before any tier runs."""

import pytest
from conftest import GOOD, ansible, assert_stopped_in_preflight, run_site


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
