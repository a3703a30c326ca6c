"""Typed reads of environment variables; a missing required one stops the process."""

import os
import sys


class MissingSetting(SystemExit):
    pass


def required(name):
    value = os.environ.get(name, "")
    if not value:
        # SystemExit prints its message to stderr and exits non-zero, from
        # manage.py, gunicorn, celery worker and beat alike.
        print(f"configuration error: required environment variable {name} is not set", file=sys.stderr)
        raise MissingSetting(f"required environment variable {name} is not set")
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
        raise SystemExit(f"configuration error: {name} must be an integer, got {raw!r}") from None


def boolean(name, default):
    raw = os.environ.get(name)
    if not raw:
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise SystemExit(f"configuration error: {name} must be true or false, got {raw!r}")


def items(name, default):
    raw = os.environ.get(name)
    if not raw:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]
