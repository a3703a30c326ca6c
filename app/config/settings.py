"""Django settings. Every value comes from the environment (see README.md,
"App environment"); the app role writes them to one EnvironmentFile."""

from pathlib import Path

import dj_database_url

from . import env

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = env.required("DJANGO_SECRET_KEY")
DEBUG = env.boolean("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env.items("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env.items("DJANGO_CSRF_TRUSTED_ORIGINS", [])
# The bearer token the HTTP task API requires (jobs/views.py). Empty keeps
# the API closed: every request gets 401.
APP_API_TOKEN = env.string("APP_API_TOKEN", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "jobs",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(env.required("DATABASE_URL"), conn_max_age=60, conn_health_checks=True),
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.string("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.string("DJANGO_STATIC_ROOT", str(BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Celery (read by config/celery.py with namespace="CELERY") ---------------
CELERY_BROKER_URL = env.required("CELERY_BROKER_URL")
CELERY_RESULT_BACKEND = env.required("CELERY_RESULT_BACKEND")
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_RESULT_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_ENABLE_UTC = True
CELERY_TASK_TRACK_STARTED = True
CELERY_RESULT_EXPIRES = env.integer("CELERY_RESULT_EXPIRES", 86400)
CELERY_RESULT_EXTENDED = True
CELERY_TASK_SOFT_TIME_LIMIT = env.integer("CELERY_TASK_SOFT_TIME_LIMIT", 300)
CELERY_TASK_TIME_LIMIT = env.integer("CELERY_TASK_TIME_LIMIT", 360)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Queues this deployment consumes (the worker pools' queues). The HTTP API
# refuses others, so no task is sent where no worker will ever take it.
CELERY_TASK_DEFAULT_QUEUE = env.string("CELERY_TASK_DEFAULT_QUEUE", "celery")
APP_TASK_QUEUES = env.items("APP_TASK_QUEUES", [CELERY_TASK_DEFAULT_QUEUE])
# Redis redelivers a message that is not acknowledged within the visibility
# timeout: that is how a task held by a worker that died (SIGKILL, OOM, a lost
# host) comes back. It must outlast the hard time limit and the longest
# countdown/ETA, or a task still running (or still waiting) is delivered a
# second time; kept short otherwise, because it is also the recovery delay.
APP_MAX_COUNTDOWN = env.integer("APP_MAX_COUNTDOWN", 300)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.integer("CELERY_VISIBILITY_TIMEOUT", 1200),
    # Look for expired unacknowledged messages every 10 s (kombu's default
    # scans only every 10th interval).
    "unacked_restore_interval": 10,
    "unacked_restore_throttle": 1,
}
# A task delayed by a countdown is delivered at once and held through it, then
# may wait for a busy slot (up to a time limit) and run: the longest hold is
# APP_MAX_COUNTDOWN + 2 x the time limit (celery/kombu#337). Pools with a
# higher prefetch hold longer; the deploy checks those (celery_worker role).
_LONGEST_HOLD = CELERY_TASK_TIME_LIMIT + (APP_MAX_COUNTDOWN + CELERY_TASK_TIME_LIMIT if APP_MAX_COUNTDOWN else 0)
if CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] <= _LONGEST_HOLD:
    env.fail(
        f"CELERY_VISIBILITY_TIMEOUT must exceed {_LONGEST_HOLD} s (CELERY_TASK_TIME_LIMIT, plus APP_MAX_COUNTDOWN "
        "and one more time limit when countdowns are allowed), or Redis delivers tasks still held a second time"
    )
if CELERY_TASK_SOFT_TIME_LIMIT >= CELERY_TASK_TIME_LIMIT:
    env.fail("CELERY_TASK_SOFT_TIME_LIMIT must be below CELERY_TASK_TIME_LIMIT")
# Every task is acknowledged after it ran, so a worker that dies takes no
# message with it. A task that is not idempotent must say how a second
# delivery is handled (jobs.tasks.AtMostOnceTask); reject_on_worker_lost
# (requeue when a prefork child dies mid-task) is opted into by idempotent
# tasks only.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = False
# Storing a task's state or result retries through a Redis restart (with
# back-off, up to about 3 minutes) instead of failing a task that ran.
CELERY_RESULT_BACKEND_ALWAYS_RETRY = True
CELERY_RESULT_BACKEND_MAX_RETRIES = 30
# On a lost broker connection, running tasks finish; their messages come back
# after the visibility timeout and idempotent/at-most-once tasks handle that.
# (True would kill them mid-run.)
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
# Task events feed Flower's task pages; they cost throughput (the bundle's
# app_task_events, docs/BENCHMARKS.md).
CELERY_WORKER_SEND_TASK_EVENTS = env.boolean("CELERY_WORKER_SEND_TASK_EVENTS", True)
CELERY_TASK_SEND_SENT_EVENT = CELERY_WORKER_SEND_TASK_EVENTS
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
APP_HEARTBEAT_SECONDS = env.integer("APP_HEARTBEAT_SECONDS", 30)

# --- Logging: one JSON object per line on stdout (journald keeps them) -------
LOG_LEVEL = env.string("DJANGO_LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"task": {"()": "config.logging.TaskContextFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "json",
            "filters": ["task"],
        },
    },
    # Every logger follows the root: a worker or beat sets it to its
    # --loglevel (config/celery.py); the web's stays at DJANGO_LOG_LEVEL.
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
}
