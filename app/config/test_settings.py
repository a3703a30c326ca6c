"""Settings for the app's own tests: the environment a host would provide,
with local defaults. Broker and result backend point at the Redis that the
test session starts (tests/conftest.py)."""

import os
import tempfile

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key")
os.environ.setdefault("DATABASE_URL", f"sqlite:///{tempfile.gettempdir()}/app-tests.sqlite3")
# The `celery` ACL user of the Redis server that tests/conftest.py starts.
TEST_REDIS = "redis://celery:test-celery-password-0123456789@127.0.0.1:6399"
os.environ.setdefault("CELERY_BROKER_URL", f"{TEST_REDIS}/0")
os.environ.setdefault("CELERY_RESULT_BACKEND", f"{TEST_REDIS}/1")
os.environ.setdefault("CELERY_TASK_DEFAULT_QUEUE", "default")
os.environ.setdefault("APP_TASK_QUEUES", "default,io")
os.environ.setdefault("APP_API_TOKEN", "test-api-token-0123456789abcdef0123")

from .settings import *  # noqa: E402,F403

# Tests that run a real worker thread need the test database in a file that
# every thread's connection sees.
DATABASES["default"].setdefault("TEST", {})["NAME"] = os.path.join(tempfile.gettempdir(), "app-tests-db.sqlite3")
DATABASES["default"]["CONN_MAX_AGE"] = 0
STATIC_ROOT = tempfile.mkdtemp(prefix="app-tests-static-")
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"
