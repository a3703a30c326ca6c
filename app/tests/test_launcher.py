"""The units' launcher (roles/app/files/opt/djangoapp/lib/celery_launcher.py)
started as the units start it, with a gevent pool, against the session's real
Redis: the pool takes tasks and runs them side by side. The launcher used to
import kombu before gevent patched the standard library; the pool then
started, said ready, and never finished a task."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from jobs import tasks

ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = ROOT / "roles" / "app" / "files" / "opt" / "djangoapp" / "lib" / "celery_launcher.py"
WORKER_DEFAULTS = ROOT / "roles" / "celery_worker" / "defaults" / "main.yml"
APP_DIR = ROOT / "app"
# Long enough that eight starts fit in one nap on a loaded machine.
NAP = 3.0
TASKS = 8


def test_the_gevent_pin_is_the_roles():
    """The tests run the gevent release that the celery_worker role installs."""
    pin = re.search(r"^celery_worker_gevent_requirement: (\S+)$", WORKER_DEFAULTS.read_text(), re.MULTILINE)
    assert pin, f"celery_worker_gevent_requirement not found in {WORKER_DEFAULTS}"
    assert f"{pin.group(1)}\n" in (APP_DIR / "requirements-test.txt").read_text()


@pytest.fixture
def gevent_worker(broker, tmp_path):
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.test_settings")
    log = tmp_path / "worker.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, str(LAUNCHER), "--app=config", "worker", "--hostname=gevent@test", "--queues=io",
             "--pool=gevent", f"--concurrency={TASKS}", "--prefetch-multiplier=1", "--without-mingle",
             "--without-gossip", "--loglevel=WARNING"],
            cwd=APP_DIR, env=env, stdout=output, stderr=subprocess.STDOUT,
        )
    yield broker
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:  # the old launcher's pool did not stop either
        process.kill()
        process.wait()
    print(log.read_text())


def test_a_gevent_pool_takes_tasks_and_runs_them_side_by_side(gevent_worker):
    results = [tasks.nap.apply_async((NAP,), queue="io") for _ in range(TASKS)]
    done = [result.get(timeout=60) for result in results]
    assert {answer["hostname"] for answer in done} == {"gevent@test"}
    # Side by side: every nap began before the first one ended.
    first_end = min(answer["started"] for answer in done) + NAP
    assert all(answer["started"] < first_end for answer in done), sorted(a["started"] for a in done)
