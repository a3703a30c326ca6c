"""The deploy's check of a project's effective Celery settings
(roles/app/files/opt/djangoapp/lib/celery_config_check.py) reads them from a
real Celery app: the sample's, as its tests configure it, and a bare one with
Celery's and kombu's own defaults."""

import importlib.util
from datetime import timedelta
from pathlib import Path

from celery import Celery
from django.conf import settings

LIB = Path(__file__).resolve().parents[2] / "roles" / "app" / "files" / "opt" / "djangoapp" / "lib"
_spec = importlib.util.spec_from_file_location("celery_config_check", LIB / "celery_config_check.py")
check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check)


def test_the_sample_apps_settings_are_read_as_configured():
    from config.celery import app

    config = check.effective_config(app)
    assert config["default_queue"] == settings.CELERY_TASK_DEFAULT_QUEUE
    assert config["time_limit"] == settings.CELERY_TASK_TIME_LIMIT
    assert config["visibility_timeout"] == settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    assert config["accept_content"] == ["json"]
    assert config["result_expires"] == settings.CELERY_RESULT_EXPIRES
    assert config["static_root"] == str(Path(settings.STATIC_ROOT).resolve())


def test_a_bare_app_gets_celery_and_kombu_defaults():
    app = Celery("bare", broker="redis://127.0.0.1:1/0", backend="redis://127.0.0.1:1/1")
    app.conf.task_routes = {"a.*": {"queue": "pdf"}, "b": "mail"}
    app.conf.result_expires = timedelta(hours=2)
    config = check.effective_config(app)
    assert (config["default_queue"], config["visibility_timeout"], config["time_limit"]) == ("celery", 3600, None)
    assert config["routes"] == [("a.*", "pdf"), ("b", "mail")]
    assert config["result_expires"] == 7200
    errors, _ = check.problems(config, {"pools": [{"name": "default", "queues": ["celery"]}]})
    assert any("queues: [pdf]" in error for error in errors) and any("no hard time limit" in error for error in errors)
