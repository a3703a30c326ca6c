"""Worker pools, beat and Flower refuse bad input in the preflight play,
before any host changes."""

import pytest
from conftest import APP, ansible, assert_stopped_in_preflight, run_site

FLOWER = [{"username": "ops", "password": "a-long-flower-password-123"}]
ALL_IN_ONE = ["redis", "web", "celery_workers", "celery_beat", "flower"]
GOOD = dict(APP, flower_basic_auth=FLOWER)


def preflight(inventory_path):
    return ansible("ansible-playbook", "playbooks/preflight.yml", "-i", str(inventory_path))


def pools(*items):
    return {"celery_worker_pools": list(items), "app_task_queues": ["default", "io"]}


# Malformed pools: tests/test_bad_inventories.py.


def test_all_in_one_passes(inventory):
    result = preflight(inventory(ALL_IN_ONE, dict(GOOD, **pools({"name": "default", "queues": ["default"]}))))
    assert result.returncode == 0, result.stdout + result.stderr
    assert FLOWER[0]["password"] not in result.stdout + result.stderr


def test_no_beat_host_is_refused(inventory):
    groups = [g for g in ALL_IN_ONE if g != "celery_beat"]
    assert_stopped_in_preflight(run_site(inventory(groups, GOOD)), "must have exactly one host (it has 0")


def test_web_only_inventory_needs_no_beat(inventory):
    result = preflight(inventory(["redis", "web"], APP))
    assert result.returncode == 0, result.stdout + result.stderr


def test_two_beat_hosts_are_refused(inventory):
    groups = {"redis": ["a"], "web": ["a"], "flower": ["a"], "celery_workers": ["a", "b"], "celery_beat": ["a", "b"]}
    variables = dict(GOOD, app_db_engine="postgresql", app_db_password="p" * 20)
    assert_stopped_in_preflight(run_site(inventory(groups, variables)), "must have exactly one host (it has 2")


def test_flower_needs_credentials(inventory):
    result = run_site(inventory(ALL_IN_ONE, APP))
    assert_stopped_in_preflight(result, "flower_basic_auth")


@pytest.mark.parametrize(
    "credentials",
    [[{"username": "ops", "password": "short"}], [{"username": "ops", "password": "has,a,comma-1234567890"}]],
)
def test_weak_flower_credentials_are_refused_without_printing_them(inventory, credentials):
    result = run_site(inventory(ALL_IN_ONE, dict(APP, flower_basic_auth=credentials)))
    assert_stopped_in_preflight(result, "Flower is never deployed without authentication")
    assert credentials[0]["password"] not in result.stdout + result.stderr
