"""List tasks that failed for good: manage.py deadletters [--json] [--limit N]."""

import json

from django.core.management.base import BaseCommand

from jobs.models import DeadLetter


class Command(BaseCommand):
    help = "List dead-lettered tasks, newest first."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="one JSON object per line")
        parser.add_argument("--limit", type=int, default=50)

    def handle(self, *args, **options):
        letters = DeadLetter.objects.all()[: options["limit"]]
        for letter in letters:
            if options["json"]:
                self.stdout.write(json.dumps({
                    "task_id": letter.task_id, "task_name": letter.task_name, "queue": letter.queue,
                    "args": letter.args, "kwargs": letter.kwargs, "retries": letter.retries,
                    "exception": letter.exception, "created_at": letter.created_at.isoformat(),
                }))
            else:
                self.stdout.write(f"{letter.created_at:%Y-%m-%d %H:%M:%S} {letter}")
        if not options["json"]:
            self.stdout.write(f"{len(letters)} dead letter(s)")
