"""The periodic tasks this app needs; `manage.py ensure_periodic_tasks` creates
the missing ones in django-celery-beat's tables (never overwriting edits made
in the admin)."""

from django.conf import settings

INTERVALS = {
    "heartbeat": {"task": "jobs.tasks.heartbeat", "every": lambda: settings.APP_HEARTBEAT_SECONDS},
}
CRONTABS = {
    "cleanup heartbeats (3-hourly)": {"task": "jobs.tasks.cleanup_heartbeats", "minute": "15", "hour": "*/3"},
    "cleanup side effects (daily)": {"task": "jobs.tasks.cleanup_side_effects", "minute": "30", "hour": "3"},
}
