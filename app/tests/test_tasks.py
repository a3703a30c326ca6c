"""Task logic, run eagerly (no broker)."""

import io
import json
import logging
import time

import pytest
from config.logging import TaskContextFilter
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask
from jobs import tasks
from jobs.models import DeadLetter, Heartbeat, SideEffect

pytestmark = pytest.mark.django_db


def test_add(eager):
    assert tasks.add.delay(2, 3).get() == 5


def test_add_logs_json_with_task_context(eager):
    from pythonjsonlogger.json import JsonFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("%(levelname)s %(name)s %(message)s"))
    handler.addFilter(TaskContextFilter())
    logger = logging.getLogger("jobs.tasks")
    logger.addHandler(handler)
    try:
        result = tasks.add.delay(2, 3)
    finally:
        logger.removeHandler(handler)
    line = json.loads(stream.getvalue().splitlines()[0])
    assert line["message"] == "Adding 2 + 3"
    assert line["task_id"] == result.id
    assert line["task_name"] == "jobs.tasks.add"


def test_side_effect_is_recorded_once_per_key(eager):
    first = tasks.record_side_effect.delay("order-42", {"amount": 10}).get()
    second = tasks.record_side_effect.delay("order-42", {"amount": 10}).get()
    assert first == {"key": "order-42", "created": True}
    assert second == {"key": "order-42", "created": False}
    assert SideEffect.objects.filter(key="order-42").count() == 1


def test_failure_after_retries_is_dead_lettered(eager):
    # Called directly (not through the broker), the task's failure handler
    # records the dead letter the same way a worker does.
    result = tasks.always_fails.apply(kwargs={"reason": "eager"}, retries=tasks.always_fails.max_retries)
    assert result.status == "FAILURE"
    letter = DeadLetter.objects.get(task_id=result.id)
    assert letter.task_name == "jobs.tasks.always_fails"
    assert "eager" in letter.exception
    assert letter.kwargs == {"reason": "eager"}


def test_nap_is_bounded(eager):
    assert tasks.nap.delay(0.01).get()["slept"] == 0.01
    assert tasks.nap.delay(-5).get()["slept"] == 0.0


def test_nap_reports_when_it_started(eager):
    before = time.time()
    reply = tasks.nap.delay(0).get()
    assert before <= reply["started"] <= time.time()


def test_heartbeat_writes_a_row(eager):
    tasks.heartbeat.delay().get()
    assert Heartbeat.objects.count() == 1


def test_cleanup_deletes_only_old_rows(eager):
    from datetime import timedelta

    from django.utils import timezone

    old = Heartbeat.objects.create(worker="w")
    Heartbeat.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))
    Heartbeat.objects.create(worker="w")
    assert tasks.cleanup_heartbeats.delay().get() == 1
    assert Heartbeat.objects.count() == 1


def test_periodic_tasks_are_created_once_and_edits_survive():
    out = io.StringIO()
    call_command("ensure_periodic_tasks", stdout=out)
    assert out.getvalue().count("created:") == 3
    heartbeat = PeriodicTask.objects.get(name="heartbeat")
    assert heartbeat.task == "jobs.tasks.heartbeat"
    assert PeriodicTask.objects.get(name="cleanup heartbeats (3-hourly)").crontab.hour == "*/3"
    assert PeriodicTask.objects.get(name="cleanup side effects (daily)").crontab.hour == "3"

    heartbeat.enabled = False  # an operator's edit in the admin
    heartbeat.save()
    out = io.StringIO()
    call_command("ensure_periodic_tasks", stdout=out)
    assert out.getvalue().strip() == "unchanged"
    assert PeriodicTask.objects.get(name="heartbeat").enabled is False


def test_deadletters_command_lists_them():
    DeadLetter.objects.create(task_id="t-1", task_name="jobs.tasks.always_fails", exception="TransientError: x")
    out = io.StringIO()
    call_command("deadletters", "--json", stdout=out)
    assert json.loads(out.getvalue().splitlines()[0])["task_id"] == "t-1"


def test_a_lost_pool_child_is_dead_lettered():
    # What the worker's main process signals when a prefork child dies mid-task.
    from billiard.exceptions import WorkerLostError
    from celery.signals import task_failure

    error = WorkerLostError("Worker exited prematurely: signal 9 (SIGKILL)")
    task_failure.send(sender=tasks.append_ledger, task_id="lost-1", exception=error, args=["acct", 1], kwargs={},
                      traceback=None, einfo=None)
    letter = DeadLetter.objects.get(task_id="lost-1")
    assert letter.task_name == "jobs.tasks.append_ledger"
    assert "WorkerLostError" in letter.exception
    # Plain tasks keep no dead letters.
    task_failure.send(sender=tasks.add, task_id="lost-2", exception=error, args=[], kwargs={}, traceback=None,
                      einfo=None)
    assert not DeadLetter.objects.filter(task_id="lost-2").exists()


def test_crontabs_follow_the_configured_time_zone(settings):
    settings.TIME_ZONE = "Europe/Paris"
    call_command("ensure_periodic_tasks", stdout=io.StringIO())
    crontab = PeriodicTask.objects.get(name="cleanup side effects (daily)").crontab
    assert str(crontab.timezone) == "Europe/Paris"
