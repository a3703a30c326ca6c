"""The Celery application, configured from Django settings (CELERY_* names)."""

import logging
import os
from datetime import UTC, datetime

from celery import Celery
from celery.signals import setup_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


class App(Celery):
    """Refuses to publish a task whose countdown or ETA is longer than
    APP_MAX_COUNTDOWN: Redis would deliver it again to another worker once the
    visibility timeout passes while the first one still holds it. Schedule
    longer delays with django-celery-beat (a one-off clocked periodic task)."""

    def send_task(self, name, args=None, kwargs=None, countdown=None, eta=None, **options):
        from django.conf import settings

        delay = countdown
        if eta is not None:
            moment = datetime.fromisoformat(eta) if isinstance(eta, str) else eta
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            delay = (moment - datetime.now(UTC)).total_seconds()
        if delay is not None and delay > settings.APP_MAX_COUNTDOWN:
            raise ValueError(
                f"{name}: a delay of {delay:.0f} s exceeds APP_MAX_COUNTDOWN ({settings.APP_MAX_COUNTDOWN} s); "
                "schedule it with django-celery-beat (a one-off clocked task) instead"
            )
        return super().send_task(name, args, kwargs, countdown=countdown, eta=eta, **options)


app = App("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@setup_logging.connect
def use_django_logging(loglevel=None, **kwargs):
    """Workers and beat log through Django's LOGGING (JSON lines on stdout), at
    the level of their --loglevel (a pool's `loglevel`, `celery_beat_loglevel`).
    LOGGING alone would keep them at DJANGO_LOG_LEVEL: Celery sets the root
    logger's level only when no receiver answers this signal."""
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)
    if loglevel:
        logging.getLogger().setLevel(loglevel)
