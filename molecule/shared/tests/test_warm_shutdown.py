"""Stopping a worker is a warm shutdown: the running task finishes."""

import time

import pytest
from conftest import APP, api, backend, hosts, nodename, wait_for_task

pytestmark = pytest.mark.skipif(not hosts("celery_workers"), reason="this scenario has no workers")


def test_stop_lets_the_running_task_finish(web):
    since = backend(hosts("celery_workers")[0]).check_output("date '+%Y-%m-%d %H:%M:%S'")
    # With several worker hosts the task may start on any of them: stop the
    # one that runs it.
    posted = api(web, "POST", "/api/tasks/nap/", {"args": [8]})
    task_id = posted["body"]["task_id"]
    wait_for_task(web, task_id, states=("STARTED",), timeout=30)
    journal = f"journalctl -u celery-worker@default --since '{since}' -o cat"
    runner = next(name for name in hosts("celery_workers") if task_id in backend(name).run(journal).stdout)
    worker, node = backend(runner), f"default@{nodename(runner)}"
    started = time.monotonic()
    assert worker.run("systemctl stop celery-worker@default.service").rc == 0
    assert time.monotonic() - started >= 2, "the stop did not wait for the running task"
    body = wait_for_task(web, task_id, timeout=30)
    assert body["status"] == "SUCCESS", body
    journal = worker.run(journal).stdout
    assert "Warm shutdown" in journal or "warm shutdown" in journal
    assert "Woke up after 8.0 s" in journal
    assert worker.run("systemctl start celery-worker@default.service").rc == 0
    deadline = time.monotonic() + 60
    while worker.run(f"{APP}-celery inspect ping --timeout=5 --destination={node}").rc != 0:
        assert time.monotonic() < deadline, f"{node} did not come back"
        time.sleep(2)
