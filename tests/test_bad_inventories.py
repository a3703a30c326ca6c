"""Malformed inventories, one input broken each, as a new user writes them:
every one is refused by the preflight play with a message naming the
variable, and no host changes (site.yml runs in check mode as a second net,
and no play after the preflight starts). The count is printed at the end."""

import re

import pytest
from conftest import APP, ROOT, ansible

ALL_IN_ONE = ["redis", "web", "celery_workers", "celery_beat", "flower"]
BASE = dict(APP, flower_basic_auth=[{"username": "operator", "password": "f" * 20}])


def pools(**fields):
    return {"celery_worker_pools": [dict({"name": "default", "queues": ["celery"]}, **fields)]}


CASES = [
    # Worker pools: extra_args is an allow-list.
    (pools(extra_args=["--purge"]), "not --purge"),
    (pools(extra_args=["-B"]), "not -B"),
    (pools(extra_args=["--beat"]), "not --beat"),
    (pools(extra_args=["-c9"]), "not -c9"),
    (pools(extra_args=["-Qsecretq"]), "not -Qsecretq"),
    (pools(extra_args=['--x"y']), 'not --x"y'),
    (pools(extra_args=["--hostname=evil@%h"]), "not --hostname=evil@%h"),
    (pools(extra_args=["--heartbeat-interval=%n"]), "not --heartbeat-interval=%n"),
    (pools(extra_args=["-O fair"]), "not -O fair"),
    (pools(extra_args=["--concurrency=9"]), "not --concurrency=9"),
    (pools(extra_args=["-E\n"]), "not -E"),
    (pools(pool="threads", concurrency=4, time_limit=400), "time_limit only on prefork or gevent"),
    (pools(pool="gevent", concurrency=4, soft_time_limit=30), "soft_time_limit only on prefork"),
    (pools(pool="solo", time_limit=400), "time_limit only on prefork or gevent"),
    (pools(concurrency=0), "concurrency a positive integer"),
    (pools(pool="eventlet"), "value of pool must be one of"),
    (pools(pool="solo", concurrency=4), "1 for solo"),
    (pools(autoscale="2,8"), 'autoscale "max,min"'),
    (pools(soft_time_limit=500, time_limit=400), "soft_time_limit below"),
    # Redis would deliver a task the pool still holds: 3 x 360 + 300 + 360, 900 + 300 + 900.
    (pools(prefetch_multiplier=3), "can hold a task unacknowledged for 1740 s"),
    (pools(soft_time_limit=800, time_limit=900), "can hold a task unacknowledged for 2100 s"),
    ({"celery_worker_pools": [{"name": "Bad Name", "queues": ["celery"]}]}, "each with a unique name"),
    ({"celery_worker_pools": [{"name": "a", "queues": ["celery"]}, {"name": "a", "queues": ["io"]}]},
     "each with a unique name"),
    ({"celery_worker_pools": []}, "at least one pool"),
    (dict(pools(), app_task_queues=["other"]), "add them to app_task_queues"),
    # Redis.
    ({"redis_extra_config": {"maxclients": "100\nbind 0.0.0.0"}}, "takes lower-case directive names"),
    ({"redis_extra_config": {"lazyfree-lazy-user-del": True}}, "yes/no rather than true/false"),
    ({"redis_extra_config": {"hz": "10\r\nport 1"}}, "redis_extra_config takes lower-case directive names"),
    ({"redis_extra_config": {"Bind Now": "1"}}, "redis_extra_config takes lower-case directive names"),
    ({"redis_extra_config": {"port": 6380}}, "redis_extra_config takes lower-case directive names"),
    ({"redis_celery_acl_rules": "~* &* +@all nopass"}, "redis_celery_acl_rules holds"),
    ({"redis_celery_acl_rules": "~* +@all >another-password"}, "redis_celery_acl_rules holds"),
    ({"redis_celery_acl_rules": "~* +@all #" + "a" * 64}, "redis_celery_acl_rules holds"),
    ({"redis_celery_acl_rules": "reset ~* +@all"}, "redis_celery_acl_rules holds"),
    ({"redis_celery_acl_rules": ""}, "redis_celery_acl_rules holds"),
    ({"redis_extra_acl_users": [{"name": "metrics", "password": "m" * 32, "rules": "+info off"}]},
     "redis_extra_acl_users entry 'metrics'"),
    ({"redis_bind": ["127.0.0.1 0.0.0.0"]}, "redis_bind a non-empty list"),
    ({"redis_bind": [""]}, "redis_bind a non-empty list"),
    ({"redis_bind": ["redis.example.com"]}, "redis_bind a non-empty list"),
    ({"redis_tls": True, "redis_tls_cert": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"},
     "redis_tls_cert, redis_tls_key and redis_tls_ca_cert go together"),
    ({"redis_tls": True, "redis_tls_names": ["redis.example.com other.example.com"]},
     "redis_tls_names holds host names"),
    ({"redis_tls": True, "redis_tls_cert": "not a certificate", "redis_tls_key": "not a key",
      "redis_tls_ca_cert": "not a CA"}, "as PEM text"),
    ({"redis_bind": ["999.1.1.1"]}, "redis_bind a non-empty list"),
    ({"redis_bind": ["127.0.0.1\n", "::1"]}, "redis_bind a non-empty list"),
    ({"redis_bind": ["::*", "10.0.0.5"]}, "must stand alone"),
    ({"redis_bind": ["127.0.0.1", "0.0.0.0"]}, "must stand alone"),
    ({"redis_password": "short"}, "redis_password"),
    # The app.
    ({"app_user": "root"}, "other than root"),
    ({"app_group": "root"}, "other than root"),
    ({"app_name": "Django App"}, "app_name must be"),
    ({"app_env_extra": {"DJANGO_DEBUG": "true"}}, "app_env_extra may not set DJANGO_DEBUG"),
    ({"app_env_extra": {"DATABASE_URL": "sqlite:////tmp/x"}}, "app_env_extra may not set DATABASE_URL"),
    ({"app_env_extra": {"LD_PRELOAD": "/tmp/x.so"}}, "app_env_extra may not set LD_PRELOAD"),
    ({"app_ip_address_allow": ["10.0.0.0/8 0.0.0.0/0"]}, "app_ip_address_allow holds IP addresses"),
    ({"app_ip_address_allow": ["api.example.com"]}, "app_ip_address_allow holds IP addresses"),
    ({"app_ip_address_allow": ["10.0.0.1\nIPAddressDeny="]}, "app_ip_address_allow holds IP addresses"),
    ({"app_env_extra": {"lower": "x"}}, "app_env_extra names are UPPER_CASE"),
    ({"app_debug": True, "app_allowed_hosts": ["*"]}, "app_debug may not be true with '*'"),
    ({"app_allowed_hosts": ["a.example.com,b.example.com"]}, "app_allowed_hosts holds host names"),
    ({"app_allowed_hosts": ["x'$(id>/tmp/p)'"]}, "app_allowed_hosts holds host names"),
    ({"app_csrf_trusted_origins": ["example.com"]}, "app_csrf_trusted_origins origins"),
    ({"app_redis_host": "redis host"}, "app_redis_host and"),
    ({"app_db_host": "db/x"}, "app_redis_host and app_db_host"),
    ({"app_python": "python3"}, "app_python must be an absolute path"),
    ({"app_build_packages": ["gcc; reboot"]}, "Debian package names"),
    ({"app_system_packages": ["Libpq5"]}, "Debian package names"),
    ({"app_static_root": "/opt/djangoapp/src/"}, "but not app_code_dir itself"),
    ({"app_dependencies": "poetry"}, "app_dependencies"),
    ({"app_visibility_timeout": 100}, "app_visibility_timeout must exceed"),
    ({"app_visibility_timeout": 1000}, "app_visibility_timeout must exceed"),
    ({"app_task_soft_time_limit": 400, "app_task_time_limit": 360}, "app_task_soft_time_limit must be below"),
    ({"app_task_queues": ["bad queue"]}, "queue names use letters"),
    ({"app_db_engine": "mysql"}, "app_db_engine"),
    ({"app_source": "git"}, "app_git_repo must name the repository"),
    ({"app_secret_key": "short"}, "app_secret_key must be set"),
    ({"app_api_token": "0123456789"}, "app_api_token, when set (in the vault), must have at least 32"),
    ({"app_api_token": "it's-an-api-token-with-a-quote-0123456789"}, "app_api_token may not contain a single quote"),
    # Web and Flower.
    ({"gunicorn_bind": "0.0.0.0:99999"}, "port 1-65535"),
    ({"gunicorn_bind": "unix:/run/x y.sock"}, "gunicorn_bind is host:port"),
    ({"gunicorn_bind": 'unix:/x"];__import__("os").system("id");#'}, "gunicorn_bind is host:port"),
    ({"flower_port": "5555"}, "flower_port must be an integer"),
    ({"flower_address": "0.0.0.0"}, "not a wildcard"),
    ({"flower_address": "::0"}, "not a wildcard"),
    ({"flower_address": "flower.example.com"}, "flower_address one IP address"),
    ({"flower_basic_auth": [{"username": "operator", "password": "short"}]}, "flower_basic_auth"),
]


# Valid inputs near the edges of the checks, which must pass.
UNUSUAL_BUT_VALID = {
    "redis_celery_acl_rules": "~celery* %RW~_kombu.* &* +@all -@dangerous +GET +json.get +config|get ALLKEYS",
    "redis_bind": ["*", "-::*"],
    "redis_extra_config": {"hz": 20, "lazyfree-lazy-user-del": "yes"},
    "app_redis_host": "redis_1",
    "app_db_host": "fd00::5",
    "app_allowed_hosts": [".example.com", "[::1]", "10.0.0.5"],
    "app_csrf_trusted_origins": ["https://*.example.com", "http://10.0.0.5:8000"],
    "gunicorn_bind": "[::1]:8000",
    "flower_address": "::1",
    "app_api_token": "t" * 32,
    "app_ip_address_allow": ["any", "10.0.0.0/8", "2001:db8::/32", "192.0.2.7", "link-local"],
    "redis_tls": True,
    "redis_tls_names": ["redis.example.com", "10.0.0.5", "fd00::5"],
    # No countdowns: a pool holds a task at most prefetch x time limit, 3 x 360 < 1200.
    "app_max_countdown": 0,
    "celery_worker_pools": [{"name": "default", "queues": ["celery"], "prefetch_multiplier": 3}],
}


@pytest.mark.parametrize("variables", [BASE, dict(BASE, **UNUSUAL_BUT_VALID)], ids=["base", "unusual"])
def test_valid_inventories_pass(inventory, variables):
    result = ansible("ansible-playbook", "playbooks/preflight.yml", "-i", str(inventory(ALL_IN_ONE, variables)))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.mark.parametrize(("override", "message"), CASES, ids=[str(i) for i in range(len(CASES))])
def test_bad_inventory_is_refused_before_any_host_changes(inventory, override, message):
    assert_refused(inventory(ALL_IN_ONE, dict(BASE, **override)), message)


def test_a_retired_host_still_in_a_group_is_refused(inventory):
    """Retiring removes the app's units and secrets: a host in the retired
    group and in one of the stack's groups is a mistake."""
    assert_refused(inventory(["retired", *ALL_IN_ONE], BASE),
                   "node1 is in the retired group and in celery_beat, celery_workers, flower, redis, web: "
                   "site.yml removes")


# site.yml's roles skip their own checks once its preflight passed; a
# playbook run alone has no preflight, so the role checks its input itself.
@pytest.mark.parametrize(("playbook", "override", "message"), [
    ("playbooks/workers.yml", pools(concurrency=0), "concurrency a positive integer"),
    ("playbooks/datastores.yml", {"redis_password": "short"}, "redis_password"),
    ("playbooks/web.yml", {"gunicorn_bind": "0.0.0.0:99999"}, "port 1-65535"),
    ("playbooks/flower.yml", {"flower_address": "0.0.0.0"}, "not a wildcard"),
], ids=["workers", "datastores", "web", "flower"])
def test_a_playbook_run_alone_checks_its_input_in_the_role(inventory, playbook, override, message):
    result = ansible("ansible-playbook", playbook, "-i", str(inventory(ALL_IN_ONE, dict(BASE, **override))), "--check")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert message in " ".join(output.split()), output[-3000:]
    assert re.search(r"^TASK \[\w+ : Check", result.stdout, re.MULTILINE), output[-3000:]
    assert set(re.findall(r"changed=(\d+)", result.stdout)) == {"0"}, result.stdout[-1500:]


def assert_refused(inventory_path, message):
    result = ansible("ansible-playbook", "site.yml", "-i", str(inventory_path), "--check")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert message in " ".join(output.split()), output[-3000:]
    plays = re.findall(r"^PLAY \[(.+?)\]", result.stdout, re.MULTILINE)
    assert plays and plays[-1] == "Check inventory input before changing any host", plays
    recaps = re.findall(r"changed=(\d+)", result.stdout)
    assert recaps and set(recaps) == {"0"}, result.stdout[-1500:]


def test_the_table_is_large_enough():
    """The count of refused inventories is printed at the end of the run
    (tests/conftest.py)."""
    assert len(CASES) >= 40


def test_the_env_names_the_role_refuses_are_the_ones_it_writes():
    import yaml

    template = (ROOT / "roles/app/templates/etc/djangoapp/app.env.j2").read_text()
    written = set(re.findall(r"^([A-Z_]+)=", template, re.MULTILINE))
    refused = yaml.safe_load((ROOT / "roles/app/vars/main.yml").read_text())["__app_env_names"]
    assert written == set(refused)
