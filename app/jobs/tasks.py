"""The sample app's tasks."""

import logging
import time
from datetime import timedelta

from billiard.exceptions import WorkerLostError
from celery import Task, shared_task
from celery.signals import task_failure
from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import DeadLetter, Heartbeat, LedgerEntry, SideEffect, TaskClaim

logger = logging.getLogger(__name__)


class TransientError(Exception):
    """A failure worth retrying (a flaky dependency)."""


class Interrupted(Exception):
    """An at-most-once task was delivered again after an attempt that started
    and never finished: its side effect may have happened, so it is not re-run."""


class DeadLetterTask(Task):
    """Record a task that failed for good (after its retries) as a DeadLetter."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        self.dead_letter(exc, task_id, args, kwargs, einfo)
        super().on_failure(exc, task_id, args, kwargs, einfo)

    def dead_letter(self, exc, task_id, args, kwargs, einfo):
        queue = (self.request.delivery_info or {}).get("routing_key") or ""
        DeadLetter.objects.update_or_create(
            task_id=task_id,
            defaults={
                "task_name": self.name,
                "queue": queue,
                "args": list(args or []),
                "kwargs": dict(kwargs or {}),
                "retries": self.request.retries,
                "exception": f"{type(exc).__name__}: {exc}",
                "traceback": str(einfo),
            },
        )
        logger.error("Task failed for good and was dead-lettered", extra={"exception": repr(exc)})


@task_failure.connect
def dead_letter_lost_children(sender=None, task_id=None, exception=None, args=None, kwargs=None, einfo=None, **_):
    """A prefork child that dies mid-task (SIGKILL, OOM) fails its task in the
    worker's main process, where the task's on_failure never runs: record that
    dead letter here. Idempotent tasks are requeued instead
    (reject_on_worker_lost) and never get here."""
    if isinstance(exception, WorkerLostError) and isinstance(sender, DeadLetterTask):
        sender.dead_letter(exception, task_id, args, kwargs, einfo)


class AtMostOnceTask(DeadLetterTask):
    """For a task whose side effect must not happen twice and cannot be made
    idempotent (an e-mail, a payment call).

    Acknowledged late, so a worker that dies before it starts the task (a
    SIGKILL, a reboot, a Redis restart) leaves the message to be delivered
    again instead of losing it. Each attempt is claimed in the database before
    the task body runs and marked finished after it; a delivery that finds its
    attempt already claimed does not run blindly:
    - finished: the stored result is returned, nothing runs again;
    - unfinished (the worker died mid-task): the task fails with Interrupted
      and is dead-lettered for an operator to check, never re-run.
    A prefork child that dies mid-task fails the task (WorkerLostError), which
    is acknowledged (reject_on_worker_lost stays False) and dead-lettered by
    dead_letter_lost_children.
    """

    acks_late = True
    reject_on_worker_lost = False

    def __call__(self, *args, **kwargs):
        if self.request.called_directly or self.request.is_eager:
            return super().__call__(*args, **kwargs)
        claim, created = TaskClaim.objects.get_or_create(
            task_id=self.request.id, attempt=self.request.retries, defaults={"task_name": self.name}
        )
        if not created:
            if claim.finished_at is not None:
                logger.warning("Delivered again after it finished; returning the stored result")
                return claim.result
            raise Interrupted(
                f"attempt {claim.attempt} started at {claim.started_at:%Y-%m-%d %H:%M:%S} and never finished; "
                "its side effect may have happened, so it is not run again"
            )
        result = super().__call__(*args, **kwargs)
        TaskClaim.objects.filter(pk=claim.pk).update(finished_at=timezone.now(), result=result)
        return result


def work(seconds):
    """Simulated work (at most 10 s), so that drills catch tasks mid-flight."""
    time.sleep(min(max(float(seconds), 0.0), 10.0))


@shared_task
def add(x, y):
    logger.info("Adding %s + %s", x, y)
    return x + y


@shared_task(
    bind=True,
    base=DeadLetterTask,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(TransientError,),
    max_retries=3,
    retry_backoff=1,
    retry_backoff_max=30,
    retry_jitter=False,
)
def record_side_effect(self, key, payload=None, fail_times=0, seconds=0):
    """Record `payload` once under `key`, however often the task is delivered:
    idempotent, so it is safe to run again when a worker dies mid-task
    (acks_late with reject_on_worker_lost).

    `fail_times` makes the first attempts fail with a TransientError, to
    exercise the retries; `seconds` is simulated work before the record.
    """
    work(seconds)
    if self.request.retries < fail_times:
        raise TransientError(f"attempt {self.request.retries + 1} of {key} failed on purpose")
    try:
        with transaction.atomic():
            SideEffect.objects.create(key=key, payload=payload or {}, task_id=self.request.id or "")
    except IntegrityError:
        logger.info("Side effect %s was already recorded; nothing to do", key)
        return {"key": key, "created": False}
    logger.info("Recorded side effect %s", key)
    return {"key": key, "created": True}


@shared_task(bind=True, base=AtMostOnceTask)
def append_ledger(self, account, amount, seconds=0):
    """Book `amount` on `account`: NOT idempotent (a second run books it
    twice), so it runs at most once (AtMostOnceTask). The booking is its own
    transaction, as an external call would be."""
    work(seconds)
    entry = LedgerEntry.objects.create(account=account, amount=int(amount), task_id=self.request.id or "")
    logger.info("Booked %+d on %s", entry.amount, account)
    return {"entry": entry.pk}


@shared_task(
    bind=True,
    base=DeadLetterTask,
    autoretry_for=(TransientError,),
    max_retries=2,
    retry_backoff=1,
    retry_backoff_max=4,
    retry_jitter=False,
)
def always_fails(self, reason="always fails"):
    """Fail every attempt; after its retries it lands in the dead letters."""
    raise TransientError(f"{reason} (attempt {self.request.retries + 1})")


@shared_task(bind=True)
def whoami(self):
    """Which worker node took this task, and from which queue."""
    return {
        "hostname": self.request.hostname,
        "queue": (self.request.delivery_info or {}).get("routing_key"),
    }


@shared_task(bind=True)
def nap(self, seconds=1.0):
    """Sleep a little (at most 60 s): a short task for shutdown drills.
    `started` is when the task body began (time.time()), from which the
    task-path benchmark (tests/bench/) measures enqueue-to-start latency."""
    started = time.time()
    seconds = min(max(float(seconds), 0.0), 60.0)
    logger.info("Napping %s s", seconds)
    time.sleep(seconds)
    logger.info("Woke up after %s s", seconds)
    return {"slept": seconds, "hostname": self.request.hostname, "started": started}


@shared_task(bind=True)
def heartbeat(self):
    row = Heartbeat.objects.create(worker=self.request.hostname or "")
    logger.info("Heartbeat %s", row.pk)
    return row.pk


@shared_task(reject_on_worker_lost=True)
def cleanup_heartbeats(keep_hours=24):
    """Delete old heartbeat rows (every 3 hours)."""
    deleted, _ = Heartbeat.objects.filter(created_at__lt=timezone.now() - timedelta(hours=keep_hours)).delete()
    logger.info("Deleted %s old heartbeats", deleted)
    return deleted


@shared_task(reject_on_worker_lost=True)
def cleanup_side_effects(keep_days=30):
    """Forget idempotency keys older than the longest redelivery window (daily)."""
    deleted, _ = SideEffect.objects.filter(created_at__lt=timezone.now() - timedelta(days=keep_days)).delete()
    logger.info("Deleted %s old side-effect records", deleted)
    return deleted
