"""Start the `celery` command with the bundle's fixes for known upstream bugs.

Every Celery unit (workers, beat, Flower) and the operators' celery wrapper
start through this file instead of the venv's `celery` script; it takes the
same arguments.

kombu 5.7.0 / celery 5.7.0: when the broker connection is lost (a Redis
restart, an ACL reload that drops clients), the worker consumer calls
Connection.collect(), which detaches the transport but keeps the default
channel, then Connection.close(), which closes that channel a second time and
fails with AttributeError("'NoneType' object has no attribute 'hostname'")
in kombu's _connparams. The worker dies ("Unrecoverable error") instead of
reconnecting. Upstream: celery/celery#10205 (see also celery/kombu#582 and
celery/kombu#970). collect() drops every reference to the broker connection,
so dropping the default channel with them is what it means to do; the
channel's unacknowledged messages stay in Redis and come back after the
visibility timeout. Remove this file's patch once a kombu release fixes it:
the reliability drills (docs/RELIABILITY.md) show whether it is still needed.
"""

import sys

from kombu.connection import Connection

_collect = Connection.collect


def _collect_and_forget_the_channel(self, socket_timeout=None):
    try:
        return _collect(self, socket_timeout)
    finally:
        self._default_channel = None


Connection.collect = _collect_and_forget_the_channel

if __name__ == "__main__":
    from celery.__main__ import main

    sys.exit(main())
