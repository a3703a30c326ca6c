"""Start the `celery` command with the bundle's fixes for known upstream bugs,
and its `consumers` and `check-config` subcommands (celery_consumers.py,
celery_config_check.py).

Every Celery unit (workers, beat, Flower) and the operators' celery wrapper
start through this file instead of the venv's `celery` script; it takes the
same arguments.

celery 5.7.0 with kombu 5.7.0 (the newest releases): when the broker
connection is lost (a Redis restart), the worker consumer calls
Connection.collect(), which detaches the transport but keeps the default
channel, then closes the connection again (added by celery PR #10242, new in
5.7.0), which re-closes that channel and restores its unacknowledged messages
through the detached transport: AttributeError("'NoneType' object has no
attribute 'hostname'") in kombu's _connparams, and the worker dies
("Unrecoverable error") instead of reconnecting. No upstream issue covers
this path (celery/kombu#582 is the same error on another path, fixed in kombu
4.0; celery/celery#10205 is a different restore failure, fixed in kombu
5.7.0). collect() drops every reference to the broker connection, so
dropping the default channel too is what it means to do; messages the
channel held stay in Redis's unacked hash and come back after the visibility
timeout. Without this a busy worker dies on every Redis restart (reproduced
with host processes); the redis-restart drill (docs/RELIABILITY.md) counts
such crashes. Remove it once a release fixes the double close.
"""

import sys

if __name__ == "__main__":
    # A gevent or eventlet pool patches the standard library; that must
    # happen before anything imports socket or threading (kombu below), as
    # Celery's own `celery` script does first. Patched later, a gevent pool
    # started, said ready, and never finished a task.
    from celery import maybe_patch_concurrency

    if "multi" not in sys.argv:
        maybe_patch_concurrency()

from kombu.connection import Connection  # noqa: E402

_collect = Connection.collect


def _collect_and_forget_the_channel(self, socket_timeout=None):
    try:
        return _collect(self, socket_timeout)
    finally:
        self._default_channel = None


Connection.collect = _collect_and_forget_the_channel

if __name__ == "__main__":
    from celery.bin.celery import celery, main

    # The bundle's own subcommands, next to this file.
    from celery_config_check import check_config
    from celery_consumers import consumers

    celery.add_command(consumers)
    celery.add_command(check_config)
    sys.exit(main())
