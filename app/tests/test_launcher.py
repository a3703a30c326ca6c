"""The units' launcher (roles/app/files/opt/djangoapp/lib/celery_launcher.py)
started as the units start it, against the session's real Redis.

With a gevent pool, the pool takes tasks and runs them side by side. The
launcher used to import kombu before gevent patched the standard library; the
pool then started, said ready, and never finished a task.

A worker logs at its --loglevel (a pool's `loglevel` field). The app's LOGGING
used to hold Celery's loggers at DJANGO_LOG_LEVEL, so WARNING still wrote three
INFO lines per task."""

import json
import os
import re
import subprocess
import sys
from contextlib import contextmanager
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


@contextmanager
def launched_worker(log, *options):
    """A worker started through the launcher, as a unit starts it; its output in `log`."""
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.test_settings")
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, str(LAUNCHER), "--app=config", "worker", "--queues=io", "--prefetch-multiplier=1",
             "--without-mingle", "--without-gossip", *options],
            cwd=APP_DIR, env=env, stdout=output, stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:  # the old launcher's gevent pool did not stop either
            process.kill()
            process.wait()
        print(log.read_text())


@pytest.fixture
def gevent_worker(broker, tmp_path):
    with launched_worker(tmp_path / "worker.log", "--hostname=gevent@test", "--pool=gevent",
                         f"--concurrency={TASKS}", "--loglevel=WARNING"):
        yield broker


def test_a_gevent_pool_takes_tasks_and_runs_them_side_by_side(gevent_worker):
    results = [tasks.nap.apply_async((NAP,), queue="io") for _ in range(TASKS)]
    done = [result.get(timeout=60) for result in results]
    assert {answer["hostname"] for answer in done} == {"gevent@test"}
    # Side by side: every nap began before the first one ended.
    first_end = min(answer["started"] for answer in done) + NAP
    assert all(answer["started"] < first_end for answer in done), sorted(a["started"] for a in done)


@pytest.mark.parametrize("loglevel", ["INFO", "WARNING"])
def test_a_worker_logs_at_its_loglevel(broker, tmp_path, loglevel):
    log = tmp_path / "worker.log"
    with launched_worker(log, f"--hostname={loglevel.lower()}@test", "--pool=solo", f"--loglevel={loglevel}"):
        result = tasks.add.apply_async((2, 3), queue="io")
        assert result.get(timeout=60) == 5
    output = log.read_text()
    levels = {json.loads(line)["level"] for line in output.splitlines() if line.startswith("{")}
    if loglevel == "INFO":
        # The lines per task received and finished that REFERENCE promises at INFO.
        assert f"[{result.id}] received" in output
        assert f"[{result.id}] succeeded" in output
    else:
        assert f"[{result.id}]" not in output
        assert levels <= {"WARNING", "ERROR", "CRITICAL"}, levels
