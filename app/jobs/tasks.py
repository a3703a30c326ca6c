"""The sample app's tasks."""

import logging
import time
from datetime import timedelta

from celery import Task, shared_task
from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import DeadLetter, Heartbeat, SideEffect

logger = logging.getLogger(__name__)


class TransientError(Exception):
    """A failure worth retrying (a flaky dependency)."""


class DeadLetterTask(Task):
    """Record a task that failed for good (after its retries) as a DeadLetter."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
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
        super().on_failure(exc, task_id, args, kwargs, einfo)


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
def record_side_effect(self, key, payload=None, fail_times=0):
    """Record `payload` once under `key`, however often the task is delivered.

    `fail_times` makes the first attempts fail with a TransientError, to
    exercise the retries.
    """
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
    """Sleep a little (at most 60 s): a short task for shutdown drills."""
    seconds = min(max(float(seconds), 0.0), 60.0)
    logger.info("Napping %s s", seconds)
    time.sleep(seconds)
    logger.info("Woke up after %s s", seconds)
    return {"slept": seconds, "hostname": self.request.hostname}


@shared_task(bind=True)
def heartbeat(self):
    row = Heartbeat.objects.create(worker=self.request.hostname or "")
    logger.info("Heartbeat %s", row.pk)
    return row.pk


@shared_task
def cleanup_heartbeats(keep_hours=24):
    """Delete old heartbeat rows (every 3 hours)."""
    deleted, _ = Heartbeat.objects.filter(created_at__lt=timezone.now() - timedelta(hours=keep_hours)).delete()
    logger.info("Deleted %s old heartbeats", deleted)
    return deleted


@shared_task
def cleanup_side_effects(keep_days=30):
    """Forget idempotency keys older than the longest redelivery window (daily)."""
    deleted, _ = SideEffect.objects.filter(created_at__lt=timezone.now() - timedelta(days=keep_days)).delete()
    logger.info("Deleted %s old side-effect records", deleted)
    return deleted
