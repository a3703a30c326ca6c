"""`celery consumers pause|resume`: every worker stops taking tasks from the
broker while Redis restarts, then takes them again.

kombu's Redis transport takes a message with BRPOP and only then records it
as unacknowledged (ZADD + HSET from the worker): when Redis stops between
the two, the message is gone. Redis persists the pop but may exit before it
sends the answer, or the worker's record arrives after it stopped (seen in the
redis-restart drill: 1 task of 1,000 lost in 2 of 9 restarts; the transport
has no atomic pop-and-record, see celery/kombu#305 and celery/celery#7950).
A worker that consumes no queue sends no BRPOP, so a restart during a pause
cannot lose a message. Running tasks go on, and clients go on publishing;
tasks wait in Redis until the resume.

    <app>-celery consumers pause   # cancel every worker's queues, remember them
    <app>-celery consumers resume  # add them back, once each worker is reconnected

What was paused is kept in a file in the app user's home, so a resume after
a failed run (or by hand) still knows which queues to give back; a pause
while one is pending adds to it. A worker that restarts while paused starts
consuming its queues again on its own.
"""

import json
import os
import pwd
import time
from pathlib import Path

import click

STATE = Path(pwd.getpwuid(os.getuid()).pw_dir) / "paused-consumers.json"
TIMEOUT = 5  # seconds to wait for the workers' replies to one broadcast
PAUSE_WAIT = 30  # seconds a pause waits for every worker to stop consuming
RESUME_WAIT = 120  # seconds a resume waits for paused workers to reconnect
BRPOP_TIMEOUT = 1  # kombu's: a BRPOP sent before a cancel blocks this long


def consuming(app, nodes=None):
    """The queues each worker that answers consumes, by node name."""
    replies = app.control.inspect(timeout=TIMEOUT, destination=nodes).active_queues() or {}
    return {node: sorted(queue["name"] for queue in queues) for node, queues in replies.items()}


def pending():
    return json.loads(STATE.read_text()) if STATE.exists() else {}


def remember(paused):
    if paused:
        STATE.write_text(json.dumps(paused, indent=1, sort_keys=True))
    else:
        STATE.unlink(missing_ok=True)


@click.group()
def consumers():
    """Pause and resume every worker's consuming (around a Redis restart)."""


@consumers.command()
@click.pass_context
def pause(ctx):
    """Cancel every queue every worker consumes; remember them for resume."""
    app, paused = ctx.obj.app, pending()
    deadline = time.monotonic() + PAUSE_WAIT
    # A worker replies to a cancel at once but applies it on its event loop's
    # next turn: a query that reaches it in between (a busy host) still sees
    # the queue, and a reply lost to the timeout may mean a lost cancel. So
    # ask again after the cancels, and cancel again what is left. A worker
    # seen consuming counts as paused only once it answers with no queue: a
    # busy one may miss a query's timeout.
    current = {}
    while True:
        for node, queues in consuming(app).items():
            if queues:
                current[node] = queues
            else:
                current.pop(node, None)
        if not current:
            break
        for node, queues in current.items():
            paused[node] = sorted(set(paused.get(node, [])) | set(queues))
        # Written before any cancel: a resume must know them whatever fails next.
        remember(paused)
        if time.monotonic() > deadline:
            raise click.ClickException(
                f"workers still consuming, or not answering, {PAUSE_WAIT} s into the pause: {json.dumps(current)}")
        for node, queues in current.items():
            for queue in queues:
                app.control.cancel_consumer(queue, destination=[node], reply=True, timeout=TIMEOUT)
    time.sleep(BRPOP_TIMEOUT + 1)
    click.echo(json.dumps({"paused": paused}))


@consumers.command()
@click.pass_context
def resume(ctx):
    """Give every paused worker its queues back; waits for workers to reconnect."""
    app, paused = ctx.obj.app, pending()
    deadline = time.monotonic() + RESUME_WAIT
    resumed = {}
    while paused:
        for node, queues in consuming(app, list(paused)).items():
            for queue in sorted(set(paused[node]) - set(queues)):
                app.control.add_consumer(queue, destination=[node], reply=True, timeout=TIMEOUT)
        for node, queues in consuming(app, list(paused)).items():
            if set(paused[node]) <= set(queues):
                resumed[node] = paused.pop(node)
        remember(paused)
        if paused:
            if time.monotonic() > deadline:
                raise click.ClickException(f"workers not consuming again after {RESUME_WAIT} s: {json.dumps(paused)}")
            time.sleep(2)
    click.echo(json.dumps({"resumed": resumed}))
