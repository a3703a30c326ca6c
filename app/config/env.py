"""Typed reads of environment variables; a missing required one stops the process."""

import os
import sys


class ConfigurationError(SystemExit):
    pass


def fail(message):
    """Stop the process with exactly one line on stderr, from manage.py,
    gunicorn, celery worker and beat alike (the exit code carries no text,
    so nothing prints it a second time)."""
    print(f"configuration error: {message}", file=sys.stderr)
    raise ConfigurationError(1)


def required(name):
    value = os.environ.get(name, "")
    if not value:
        fail(f"required environment variable {name} is not set")
    return value


def string(name, default):
    return os.environ.get(name) or default


def integer(name, default):
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        fail(f"{name} must be an integer, got {raw!r}")


def boolean(name, default):
    raw = os.environ.get(name)
    if not raw:
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    fail(f"{name} must be true or false, got {raw!r}")


def items(name, default):
    raw = os.environ.get(name)
    if not raw:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]
