"""Counts the final state of every task a drill's producer had accepted. Run
on a web host inside the app (`<app>-manage shell`), with DRILL_FILE set to
the producer's output; prints one JSON object."""

import json
import os
from collections import Counter

from celery.result import AsyncResult
from config.celery import app
from jobs.models import DeadLetter, LedgerEntry, SideEffect

tasks = [json.loads(line) for line in open(os.environ["DRILL_FILE"])]
ids = [task["id"] for task in tasks]
states = {task_id: AsyncResult(task_id, app=app).state for task_id in ids}
bookings = Counter(LedgerEntry.objects.filter(task_id__in=ids).values_list("task_id", flat=True))
keys = [task["key"] for task in tasks if task["kind"] == "idempotent"]
recorded = set(SideEffect.objects.filter(key__in=keys).values_list("key", flat=True))
dead = set(DeadLetter.objects.filter(task_id__in=ids).values_list("task_id", flat=True))
succeeded = [task for task in tasks if states[task["id"]] == "SUCCESS"]
lost = [i for i in ids if states[i] not in ("SUCCESS", "FAILURE")]
print(json.dumps({
    "accepted": len(tasks),
    "succeeded": len(succeeded),
    "failed": sum(states[i] == "FAILURE" for i in ids),
    "dead_lettered": len(dead),
    "lost": len(lost),
    # A side effect that happened twice: a ledger booked twice for one task.
    "duplicated": sum(count > 1 for count in bookings.values()),
    # A success whose side effect is missing would be a silent loss too.
    "missing_effect": sum(
        (task["kind"] == "idempotent" and task["key"] not in recorded)
        or (task["kind"] == "at-most-once" and not bookings[task["id"]])
        for task in succeeded
    ),
    # What an operator would look for first: each lost task's state and
    # whether its side effect happened anyway.
    "lost_tasks": [
        {"id": i, "state": states[i], "effect": bool(bookings[i]) or any(
            task["key"] in recorded for task in tasks if task["id"] == i and task["kind"] == "idempotent")}
        for i in lost[:10]
    ],
}))
