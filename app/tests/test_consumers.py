"""`<app>-celery consumers pause|resume` (the launcher's subcommand the Redis
role runs around a restart) against workers that behave like busy ones: a
worker replies to a cancel or an add at once and applies it on its event
loop's next turn, so the query right after it can still see the old queues."""

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

LIB = Path(__file__).resolve().parents[2] / "roles" / "app" / "files" / "opt" / "djangoapp" / "lib"
spec = importlib.util.spec_from_file_location("celery_consumers", LIB / "celery_consumers.py")
celery_consumers = importlib.util.module_from_spec(spec)
spec.loader.exec_module(celery_consumers)


class Clock:
    """Stands in for the module's `time`: a broadcast's wait and a sleep
    advance it, so a deadline is reached without waiting for it."""

    def __init__(self):
        self.now = 0.0

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class Workers:
    """`app.control` of workers whose cancels and adds take effect one query
    late, or (deaf) never; a mute one answers the first query only."""

    def __init__(self, clock, queues, deaf=(), mute=()):
        self.clock, self.queues, self.deaf, self.mute = clock, queues, set(deaf), set(mute)
        self.late, self.cancels, self.queries = [], 0, 0

    def inspect(self, timeout, destination=None):
        def active_queues():
            self.clock.sleep(timeout)
            reply = {node: [{"name": name} for name in sorted(names)] for node, names in self.queues.items()
                     if (destination is None or node in destination) and not (self.queries and node in self.mute)}
            self.queries += 1
            for change in self.late:
                change()
            self.late = []
            return reply

        return SimpleNamespace(active_queues=active_queues)

    def cancel_consumer(self, queue, destination, **_):
        self.cancels += 1
        if destination[0] not in self.deaf:
            self.late.append(lambda: self.queues[destination[0]].discard(queue))

    def add_consumer(self, queue, destination, **_):
        self.late.append(lambda: self.queues[destination[0]].add(queue))


@pytest.fixture
def clock(monkeypatch, tmp_path):
    clock = Clock()
    monkeypatch.setattr(celery_consumers, "time", clock)
    monkeypatch.setattr(celery_consumers, "STATE", tmp_path / "paused-consumers.json")
    return clock


def run(command, workers):
    return CliRunner().invoke(celery_consumers.consumers, [command], obj=SimpleNamespace(
        app=SimpleNamespace(control=workers)))


def test_a_pause_waits_for_cancels_applied_late_and_resume_gives_the_queues_back(clock):
    workers = Workers(clock, {"default@w1": {"default"}, "io@w1": {"io", "mail"}})
    paused = run("pause", workers)
    assert paused.exit_code == 0, paused.output
    assert json.loads(paused.output)["paused"] == {"default@w1": ["default"], "io@w1": ["io", "mail"]}
    assert workers.queues == {"default@w1": set(), "io@w1": set()}
    assert json.loads(celery_consumers.STATE.read_text()) == {"default@w1": ["default"], "io@w1": ["io", "mail"]}

    resumed = run("resume", workers)
    assert resumed.exit_code == 0, resumed.output
    assert workers.queues == {"default@w1": {"default"}, "io@w1": {"io", "mail"}}
    assert not celery_consumers.STATE.exists()


def test_a_worker_that_keeps_consuming_fails_the_pause_and_its_queues_stay_remembered(clock):
    workers = Workers(clock, {"default@w1": {"default"}, "io@w1": {"io"}}, deaf={"default@w1"})
    paused = run("pause", workers)
    assert paused.exit_code == 1
    assert 'still consuming, or not answering, 30 s into the pause: {"default@w1": ["default"]}' in paused.output
    assert workers.cancels > 2, "the cancel was not sent again"
    assert workers.queues["io@w1"] == set()
    assert json.loads(celery_consumers.STATE.read_text()) == {"default@w1": ["default"], "io@w1": ["io"]}


def test_a_worker_that_stops_answering_is_not_taken_for_paused(clock):
    """A busy worker can miss a query's timeout: seen consuming once, it
    counts as paused only when it answers with no queue."""
    workers = Workers(clock, {"default@w1": {"default"}, "io@w1": {"io"}}, deaf={"default@w1"}, mute={"default@w1"})
    paused = run("pause", workers)
    assert paused.exit_code == 1
    assert 'not answering, 30 s into the pause: {"default@w1": ["default"]}' in paused.output
