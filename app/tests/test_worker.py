"""A real worker (celery.contrib.testing) against a real Redis, as the `celery`
ACL user: the round trip, a retry, the dead-letter path, idempotency and the
at-most-once tasks' handling of a second delivery."""

import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.utils import timezone
from jobs import tasks
from jobs.models import DeadLetter, LedgerEntry, SideEffect, TaskClaim

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def worker(broker):
    with start_worker(broker, pool="solo", queues=["default", "io"], perform_ping_check=False,
                      shutdown_timeout=30, loglevel="WARNING"):
        yield broker


def test_round_trip(worker):
    assert tasks.add.delay(2, 3).get(timeout=20) == 5


def test_whoami_reports_the_queue(worker):
    reply = tasks.whoami.apply_async(queue="io").get(timeout=20)
    assert reply["queue"] == "io"
    assert reply["hostname"]


def test_transient_failures_are_retried_until_success(worker):
    result = tasks.record_side_effect.delay("retry-me", {"n": 1}, fail_times=2)
    assert result.get(timeout=30) == {"key": "retry-me", "created": True}
    assert SideEffect.objects.filter(key="retry-me").count() == 1
    assert not DeadLetter.objects.exists()


def test_exhausted_retries_land_in_the_dead_letters(worker):
    result = tasks.always_fails.delay(reason="dead")
    with pytest.raises(tasks.TransientError):
        result.get(timeout=30)
    # Celery stores the FAILURE state before it runs on_failure, which writes
    # the dead letter: wait a bounded time for it.
    deadline = time.monotonic() + 10
    while not DeadLetter.objects.filter(task_id=result.id).exists():
        assert time.monotonic() < deadline, "no dead letter recorded within 10 s of the failure"
        time.sleep(0.05)
    letter = DeadLetter.objects.get(task_id=result.id)
    assert letter.retries == tasks.always_fails.max_retries
    assert letter.queue == "default"
    assert "dead (attempt 3)" in letter.exception


def test_second_delivery_changes_nothing(worker):
    first = tasks.record_side_effect.delay("once", {"n": 1})
    second = tasks.record_side_effect.delay("once", {"n": 1})
    assert first.get(timeout=20)["created"] is True
    assert second.get(timeout=20)["created"] is False
    assert SideEffect.objects.filter(key="once").count() == 1


def test_at_most_once_task_books_once(worker):
    result = tasks.append_ledger.delay("acct", 7)
    assert "entry" in result.get(timeout=20)
    assert LedgerEntry.objects.filter(task_id=result.id, amount=7).count() == 1
    claim = TaskClaim.objects.get(task_id=result.id)
    assert claim.finished_at is not None and claim.result == result.result


def test_redelivery_after_an_interrupted_attempt_is_dead_lettered_not_rerun(worker):
    # What a worker that died mid-task leaves behind: a claim, never finished.
    TaskClaim.objects.create(task_id="interrupted-1", attempt=0, task_name=tasks.append_ledger.name)
    result = tasks.append_ledger.apply_async(("acct", 5), task_id="interrupted-1")
    with pytest.raises(tasks.Interrupted):
        result.get(timeout=20)
    assert not LedgerEntry.objects.filter(task_id="interrupted-1").exists()
    deadline = time.monotonic() + 10
    while not DeadLetter.objects.filter(task_id="interrupted-1").exists():
        assert time.monotonic() < deadline, "the interrupted task was not dead-lettered"
        time.sleep(0.05)


def test_redelivery_after_a_finished_attempt_returns_the_stored_result(worker):
    TaskClaim.objects.create(task_id="finished-1", attempt=0, task_name=tasks.append_ledger.name,
                             finished_at=timezone.now(), result={"entry": 99})
    assert tasks.append_ledger.apply_async(("acct", 5), task_id="finished-1").get(timeout=20) == {"entry": 99}
    assert not LedgerEntry.objects.filter(task_id="finished-1").exists()
