"""A deploy that stops after the app play (as one that fails in the workers
play does) leaves the services on the old release; the next run, with nothing
left to change, restarts every one of them on the new release (the per-unit
release stamps of the app role's unit.yml)."""

import pytest
from conftest import APP, backend, expected_pools, hosts, run_playbooks

pytestmark = pytest.mark.skipif(len(hosts("celery_workers")) < 2, reason="needs two worker hosts")


def units():
    pairs = [(name, unit) for name in hosts("web") for unit in ("gunicorn", "celery-beat", "flower")
             if backend(name).service(unit).is_enabled]
    pairs += [(name, f"celery-worker@{pool['name']}") for name in hosts("celery_workers")
              for pool in expected_pools(name)]
    return pairs


def runs_the_new_release(name, unit):
    """Whether the unit's process started after the new release was written
    (the environment file the run changes; Flower does not read it, but its
    release includes it)."""
    host = backend(name)
    started = host.check_output(f"date +%s -d \"$(systemctl show --property=ExecMainStartTimestamp --value {unit})\"")
    written = host.check_output(f"stat -c %Y /etc/{APP}/app.env")
    return int(started) >= int(written)


def test_a_run_that_stopped_midway_is_finished_by_the_next_one():
    extra = {"app_env_extra": {"DEPLOY_RESUME_MARK": "resumed"}}
    # The interrupted run: everything up to the app play, then the first
    # worker host only.
    run_playbooks("playbooks/preflight.yml", "playbooks/app.yml", extra_vars=extra)
    run_playbooks("playbooks/workers.yml", extra_vars=extra, limit=hosts("celery_workers")[0])
    stale = [pair for pair in units() if not runs_the_new_release(*pair)]
    assert stale, "the interrupted run was meant to leave units on the old release"
    # The next run changes no file: only the stamps tell it what to restart.
    run_playbooks("site.yml", extra_vars=extra)
    still_stale = [pair for pair in units() if not runs_the_new_release(*pair)]
    assert not still_stale, f"units still on the old release: {still_stale} (stale before: {stale})"
