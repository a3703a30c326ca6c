"""The app, web and PostgreSQL tiers refuse bad input in the preflight play."""

import pytest
from conftest import APP, ansible, assert_stopped_in_preflight, run_site
from conftest import GOOD as REDIS

PG = dict(APP, app_db_engine="postgresql", app_db_password="p" * 20, postgresql_app_password="p" * 20)


def preflight(inventory_path):
    return ansible("ansible-playbook", "playbooks/preflight.yml", "-i", str(inventory_path))


def test_single_host_with_sqlite_passes(inventory):
    result = preflight(inventory(["redis", "web"], APP))
    assert result.returncode == 0, result.stdout + result.stderr


def test_missing_secret_key_is_named(inventory):
    result = run_site(inventory(["web"], REDIS))
    assert_stopped_in_preflight(result, "app_secret_key must be set")


def test_sqlite_on_two_hosts_is_refused(inventory):
    result = run_site(inventory({"web": ["web1"], "celery_workers": ["worker1"]}, APP))
    assert_stopped_in_preflight(result, "SQLite serves a single host only", "app_db_engine: postgresql")


def test_postgresql_needs_a_password(inventory):
    variables = dict(APP, app_db_engine="postgresql")
    result = run_site(inventory({"web": ["web1"], "celery_workers": ["worker1"]}, variables))
    assert_stopped_in_preflight(result, "app_db_password (vault) must have at least 16 characters")


def test_postgresql_multi_host_passes(inventory):
    result = preflight(inventory({"redis": ["r1"], "postgresql": ["db1"], "web": ["web1"],
                                  "celery_workers": ["worker1"], "celery_beat": ["web1"]}, PG))
    assert result.returncode == 0, result.stdout + result.stderr
    for secret in (PG["app_secret_key"], PG["app_db_password"]):
        assert secret not in result.stdout + result.stderr


def test_quote_in_a_secret_is_refused_without_printing_it(inventory):
    secret = "it's-a-secret-with-a-quote-123456789"
    result = run_site(inventory(["web"], dict(APP, app_secret_key=secret)))
    assert_stopped_in_preflight(result)
    assert secret not in result.stdout + result.stderr


@pytest.mark.parametrize("token", ["short-api-token", "it's-an-api-token-with-a-quote-0123456789"])
def test_a_bad_api_token_is_refused_without_printing_it(inventory, token):
    result = run_site(inventory(["web"], dict(APP, app_api_token=token)))
    assert_stopped_in_preflight(result, "app_api_token")
    assert token not in result.stdout + result.stderr


# Malformed app settings: tests/test_bad_inventories.py.


def test_bad_gunicorn_bind_is_refused(inventory):
    result = run_site(inventory(["web"], dict(APP, gunicorn_bind="everywhere")))
    assert_stopped_in_preflight(result, "gunicorn_bind is host:port")


def test_weak_postgresql_password_is_refused(inventory):
    result = run_site(inventory(["postgresql"], dict(PG, postgresql_app_password="short")))
    assert_stopped_in_preflight(result, "postgresql_app_password must be set")
