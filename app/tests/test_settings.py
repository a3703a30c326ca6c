"""Settings come from the environment; bad or missing values stop the process."""

import os
import subprocess
import sys
from datetime import UTC
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parent.parent
BASE_ENV = {
    "DJANGO_SECRET_KEY": "k",
    "DATABASE_URL": "sqlite:////tmp/unused.sqlite3",
    "CELERY_BROKER_URL": "redis://127.0.0.1:1/0",
    "CELERY_RESULT_BACKEND": "redis://127.0.0.1:1/1",
}


def app_env(**overrides):
    """The base environment plus overrides (None removes a variable)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO", "CELERY", "DATABASE"))}
    env.update(BASE_ENV, DJANGO_SETTINGS_MODULE="config.settings")
    env.update(overrides)
    return {key: value for key, value in env.items() if value is not None}


def django_check(**overrides):
    return subprocess.run([sys.executable, "manage.py", "check"], cwd=APP, env=app_env(**overrides),
                          capture_output=True, text=True)


def test_complete_environment_passes():
    result = django_check()
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", sorted(BASE_ENV))
def test_missing_required_variable_is_named(name):
    result = django_check(**{name: None})
    assert result.returncode != 0
    assert result.stderr.count(f"required environment variable {name} is not set") == 1, result.stderr


@pytest.mark.parametrize(("visibility", "countdown", "ok"), [
    # Held at most: the time limit (360), plus with countdowns the countdown and another time limit.
    ("100", "0", False), ("360", "0", False), ("361", "0", True),
    ("1020", "300", False), ("1021", "300", True),
])
def test_visibility_timeout_must_outlast_the_longest_hold(visibility, countdown, ok):
    result = django_check(CELERY_VISIBILITY_TIMEOUT=visibility, CELERY_TASK_TIME_LIMIT="360",
                          CELERY_TASK_SOFT_TIME_LIMIT="300", APP_MAX_COUNTDOWN=countdown)
    assert (result.returncode == 0) == ok, result.stderr
    if not ok:
        assert "CELERY_VISIBILITY_TIMEOUT must exceed" in result.stderr


def test_integer_settings_are_checked():
    result = django_check(CELERY_TASK_TIME_LIMIT="ten")
    assert result.returncode != 0
    assert result.stderr.count("configuration error: CELERY_TASK_TIME_LIMIT must be an integer") == 1, result.stderr


def test_boolean_settings_are_checked_and_named_once():
    result = django_check(DJANGO_DEBUG="maybe")
    assert result.returncode != 0
    assert result.stderr.count("configuration error: DJANGO_DEBUG must be true or false") == 1, result.stderr


@pytest.mark.parametrize(("value", "expected"), [(None, "True True"), ("false", "False False")])
def test_task_events_follow_the_environment(value, expected):
    code = ("import django; django.setup(); from django.conf import settings as s; "
            "print(s.CELERY_WORKER_SEND_TASK_EVENTS, s.CELERY_TASK_SEND_SENT_EVENT)")
    result = subprocess.run([sys.executable, "-c", code], cwd=APP, env=app_env(CELERY_WORKER_SEND_TASK_EVENTS=value),
                            capture_output=True, text=True)
    assert result.stdout.strip() == expected, result.stderr


def test_celery_settings_are_json_only_with_database_scheduler(settings):
    assert settings.CELERY_ACCEPT_CONTENT == ["json"]
    assert settings.CELERY_TASK_SERIALIZER == "json"
    assert settings.CELERY_BEAT_SCHEDULER == "django_celery_beat.schedulers:DatabaseScheduler"
    assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] > settings.CELERY_TASK_TIME_LIMIT


def test_every_task_is_acknowledged_late_and_recovery_is_prompt(settings):
    assert settings.CELERY_TASK_ACKS_LATE is True
    assert settings.CELERY_TASK_REJECT_ON_WORKER_LOST is False
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    assert options["visibility_timeout"] == 1200
    assert options["unacked_restore_interval"] * options["unacked_restore_throttle"] <= 10
    # A Redis restart must not fail a task because its state could not be stored.
    assert settings.CELERY_RESULT_BACKEND_ALWAYS_RETRY is True


def test_delays_beyond_the_redelivery_window_are_refused(settings):
    from config.celery import app

    with pytest.raises(ValueError, match="exceeds APP_MAX_COUNTDOWN"):
        app.send_task("jobs.tasks.add", (1, 2), countdown=settings.APP_MAX_COUNTDOWN + 1)
    from datetime import datetime, timedelta

    with pytest.raises(ValueError, match="exceeds APP_MAX_COUNTDOWN"):
        app.send_task("jobs.tasks.add", (1, 2), eta=datetime.now(UTC) + timedelta(hours=2))
