"""Create the app's periodic tasks in django-celery-beat's tables if missing.

Idempotent: existing entries, including schedules an operator edited in the
admin, are left as they are. Prints "created: <name>" for each new one (the
deploy role reports "changed" from that) and "unchanged" otherwise.
"""

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from jobs.schedules import CRONTABS, INTERVALS


class Command(BaseCommand):
    help = "Create missing periodic tasks (never overwrites existing ones)."

    @transaction.atomic
    def handle(self, *args, **options):
        created = []
        for name, spec in INTERVALS.items():
            if not PeriodicTask.objects.filter(name=name).exists():
                every, _ = IntervalSchedule.objects.get_or_create(
                    every=spec["every"](), period=IntervalSchedule.SECONDS
                )
                PeriodicTask.objects.create(name=name, task=spec["task"], interval=every)
                created.append(name)
        for name, spec in CRONTABS.items():
            if not PeriodicTask.objects.filter(name=name).exists():
                crontab, _ = CrontabSchedule.objects.get_or_create(
                    minute=spec["minute"], hour=spec["hour"], day_of_week="*", day_of_month="*",
                    month_of_year="*", timezone=settings.TIME_ZONE,
                )
                PeriodicTask.objects.create(name=name, task=spec["task"], crontab=crontab)
                created.append(name)
        for name in created:
            self.stdout.write(f"created: {name}")
        if not created:
            self.stdout.write("unchanged")
