from django.db import models


class Heartbeat(models.Model):
    """Written by the periodic heartbeat task: proves beat -> broker -> worker -> DB."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    worker = models.CharField(max_length=255)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"heartbeat from {self.worker} at {self.created_at:%Y-%m-%d %H:%M:%S}"


class SideEffect(models.Model):
    """One row per idempotency key: a second delivery of the same task changes nothing."""

    key = models.CharField(max_length=200, unique=True)
    payload = models.JSONField(default=dict)
    task_id = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self):
        return self.key


class DeadLetter(models.Model):
    """A task that failed for good, after its retries; listed by `manage.py deadletters`."""

    task_id = models.CharField(max_length=255, unique=True)
    task_name = models.CharField(max_length=255)
    queue = models.CharField(max_length=255, blank=True)
    args = models.JSONField(default=list)
    kwargs = models.JSONField(default=dict)
    retries = models.PositiveIntegerField(default=0)
    exception = models.TextField()
    traceback = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.task_name}[{self.task_id}]: {self.exception}"


class TaskClaim(models.Model):
    """One row per attempt of an at-most-once task, written before its side
    effect and marked finished after it: a redelivered message finds the row
    and is not run blindly a second time (see jobs.tasks.AtMostOnceTask)."""

    task_id = models.CharField(max_length=255)
    attempt = models.PositiveIntegerField(default=0)
    task_name = models.CharField(max_length=255)
    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["task_id", "attempt"], name="unique_task_attempt")]

    def __str__(self):
        return f"{self.task_name}[{self.task_id}] attempt {self.attempt}"


class LedgerEntry(models.Model):
    """Appended by the non-idempotent sample task: running it twice books the
    amount twice, which is what the reliability drills look for."""

    account = models.CharField(max_length=100)
    amount = models.IntegerField()
    task_id = models.CharField(max_length=255, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.account}: {self.amount:+d}"
