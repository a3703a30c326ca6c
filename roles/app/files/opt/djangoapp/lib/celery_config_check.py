"""`celery check-config --expect JSON`: what the project really runs with,
checked against what the inventory deploys.

The bundle writes its Celery safety settings as environment variables, but a
project that does not read them keeps its own values, and checks on the
inventory alone would protect nothing. So the deploy loads the project's
Celery app and Django settings from its own virtualenv and code, and refuses
what would lose tasks, run them twice or leave them waiting forever, with a
message naming what to change. The app role runs it before migrations and
before any unit restarts; operators can run it too:

    <app>-celery check-config --expect '{"pools": [{"name": "default", "queues": ["celery"]}]}'

--expect (JSON; every key optional):
    pools            [{name, queues, pool, prefetch_multiplier, time_limit, soft_time_limit}] of every
                     worker host; a limit of 0 leaves the project's own
    stop_time_limit  the hard time limit systemd's stop timeout of a pool
                     without its own time_limit is computed from
    visibility_timeout  the one the inventory's checks assume
    max_countdown    the longest countdown or ETA the project may use
    static_root      where the bundle collects static files (null: it does not)
    time_zone        the deployment's time zone

Prints {"config", "errors", "warnings"} as JSON; exits 3 when there are errors.
"""

import json
import os
from pathlib import Path

import click

# kombu's Redis transport redelivers an unacknowledged message after this
# many seconds when the project sets no visibility_timeout.
KOMBU_VISIBILITY_TIMEOUT = 3600
# Serializers that let whoever can write to Redis run code on the workers.
UNSAFE_SERIALIZERS = {"pickle", "yaml", "application/x-python-serialize", "application/x-yaml"}


def _queue_name(queue):
    return getattr(queue, "name", queue)


def _routed_queues(routes):
    """(queue names the routes send tasks to, whether some router is a callable)."""
    if routes is None:
        return [], False
    routers = [routes] if isinstance(routes, dict) else list(routes)
    queues, opaque = [], False
    for router in routers:
        if not isinstance(router, dict):
            opaque = True
            continue
        for pattern, route in router.items():
            queue = route.get("queue") if isinstance(route, dict) else route
            if queue is not None:
                queues.append((str(pattern), _queue_name(queue)))
    return queues, opaque


def effective_config(app):
    """The settings the checks need, as the project's own code sets them."""
    conf = app.conf
    routes, opaque = _routed_queues(conf.task_routes)
    static_root = None
    if os.environ.get("DJANGO_SETTINGS_MODULE"):
        from django.conf import settings

        static_root = str(Path(settings.STATIC_ROOT).resolve()) if getattr(settings, "STATIC_ROOT", None) else None
    return {
        "default_queue": conf.task_default_queue,
        "routes": routes,
        "opaque_routes": opaque,
        "time_limit": conf.task_time_limit,
        "soft_time_limit": conf.task_soft_time_limit,
        "visibility_timeout": (conf.broker_transport_options or {}).get("visibility_timeout", KOMBU_VISIBILITY_TIMEOUT),
        "task_serializer": conf.task_serializer,
        "result_serializer": conf.result_serializer,
        "accept_content": sorted(conf.accept_content or []),
        "result_accept_content": sorted(conf.result_accept_content or conf.accept_content or []),
        "result_backend": bool(conf.result_backend),
        "result_expires": _seconds(conf.result_expires),
        "timezone": str(conf.timezone or "UTC"),
        "static_root": static_root,
    }


def _seconds(value):
    return value.total_seconds() if hasattr(value, "total_seconds") else value


def longest_hold(time_limit, prefetch_multiplier, max_countdown):
    """The longest a worker can hold a task unacknowledged (acks_late), from
    its delivery: Redis redelivers it once the visibility timeout has passed
    (the score is the delivery time: celery/kombu#337), so this must stay below.

    A worker reserves prefetch_multiplier tasks per slot; the last waits for
    the others and then runs: prefetch_multiplier × time_limit. A countdown or
    ETA task is delivered at once and held through its countdown, outside the
    prefetch count, then waits for a slot whose tasks run up to time_limit
    each, then runs: max_countdown + (prefetch_multiplier + 1) × time_limit.
    The same rule is in the roles' input checks and the app's settings."""
    held = prefetch_multiplier * time_limit
    return held + max_countdown + time_limit if max_countdown else held


def problems(config, expect):
    """(errors, warnings): messages an operator can act on."""
    errors, warnings = [], []
    pools = expect.get("pools", [])
    consumed = {queue for pool in pools for queue in pool["queues"]}
    visibility = config["visibility_timeout"]

    if pools and config["default_queue"] not in consumed:
        errors.append(
            f"The project's default queue '{config['default_queue']}' (task_default_queue) has no pool consuming it, "
            f"so tasks sent without a queue wait forever: add '{config['default_queue']}' to a pool's queues in "
            "celery_worker_pools, or set the project's CELERY_TASK_DEFAULT_QUEUE to a queue a pool consumes."
        )
    for pattern, queue in config["routes"]:
        if pools and queue not in consumed:
            errors.append(
                f"The project's task_routes send '{pattern}' to queue '{queue}', which no pool consumes: add a pool "
                f"with queues: [{queue}] to celery_worker_pools, or change the route."
            )
    if config["opaque_routes"]:
        warnings.append("The project routes some tasks with a function; the deploy cannot check their queues.")

    assumed = expect.get("visibility_timeout")
    if assumed is not None and assumed != visibility:
        errors.append(
            f"The project's visibility timeout is {visibility:g} s (its broker_transport_options, else kombu's "
            f"default), not app_visibility_timeout ({assumed:g} s) that the inventory's checks assume: set "
            f"app_visibility_timeout: {visibility:g}."
        )

    countdown = expect.get("max_countdown")
    for pool in pools:
        own = pool.get("time_limit") or None
        hard = own or config["time_limit"]
        soft = pool.get("soft_time_limit") or config["soft_time_limit"]
        where = f"pool '{pool['name']}'"
        if soft is not None and hard is not None and soft >= hard:
            errors.append(
                f"{where}'s soft time limit ({soft:g} s) is not below its hard time limit ({hard:g} s), so tasks "
                "never get the chance to clean up: lower soft_time_limit (pool or project)."
            )
        kind = pool.get("pool", "prefork")
        if kind in ("threads", "solo") or (kind == "gevent" and soft is not None):
            warnings.append(
                f"{where} is a {kind} pool, which does not enforce "
                f"{'the soft time limit' if kind == 'gevent' else 'time limits'}: a task that hangs there holds "
                "its slot until the worker restarts."
            )
        if hard is None:
            errors.append(
                f"{where} runs tasks with no hard time limit (the project sets no task_time_limit and the pool no "
                f"time_limit): a stuck task holds its message forever and Redis hands it to another worker after "
                f"{visibility:g} s. Set CELERY_TASK_TIME_LIMIT in the project or time_limit in celery_worker_pools."
            )
            continue
        held = longest_hold(hard, pool.get("prefetch_multiplier", 1), countdown or 0)
        if held >= visibility:
            errors.append(
                f"{where} can hold a task unacknowledged for {held:g} s (time limit {hard:g} s, prefetch multiplier "
                f"{pool.get('prefetch_multiplier', 1)}, longest countdown {countdown or 0:g} s), but Redis redelivers "
                f"it after visibility_timeout {visibility:g} s (the project's broker_transport_options), so it runs "
                "twice: raise the project's visibility_timeout, or lower the time limit, the prefetch multiplier or "
                "app_max_countdown."
            )
        if own is None and expect.get("stop_time_limit") is not None and hard > expect["stop_time_limit"]:
            errors.append(
                f"The project's task_time_limit ({hard:g} s) exceeds app_task_time_limit "
                f"({expect['stop_time_limit']:g} s), from which systemd's stop timeout of {where} is computed: a "
                f"stopping worker would be killed while its tasks still run. Set app_task_time_limit: {hard:g}."
            )
        if own is not None and config["time_limit"] is not None and own != config["time_limit"]:
            warnings.append(
                f"{where} sets time_limit {own:g} s, which replaces the project's task_time_limit "
                f"({config['time_limit']:g} s) for its tasks."
            )

    if countdown is not None and countdown >= visibility:
        errors.append(
            f"app_max_countdown ({countdown:g} s) is not below the visibility timeout ({visibility:g} s): a task "
            "delayed longer is delivered twice. Lower app_max_countdown or raise the project's visibility_timeout."
        )

    unsafe = UNSAFE_SERIALIZERS & (
        {config["task_serializer"], config["result_serializer"]}
        | set(config["accept_content"])
        | set(config["result_accept_content"])
    )
    if unsafe:
        errors.append(
            f"The project accepts {', '.join(sorted(unsafe))}, which lets anyone who can write to Redis run code "
            "on the workers: set CELERY_ACCEPT_CONTENT, CELERY_RESULT_ACCEPT_CONTENT, CELERY_TASK_SERIALIZER and "
            "CELERY_RESULT_SERIALIZER to json."
        )
    if config["result_backend"] and not config["result_expires"]:
        errors.append(
            "The project's results never expire (result_expires), and Redis runs with noeviction: results fill "
            "its memory until it refuses every write. Set CELERY_RESULT_EXPIRES (for example 86400)."
        )

    static_root = expect.get("static_root")
    if static_root and config["static_root"] is None:
        errors.append(
            f"The project sets no STATIC_ROOT, so collectstatic has nowhere to go: set it in the project (for "
            f"example from DJANGO_STATIC_ROOT, which is {static_root}) or set app_collectstatic: false."
        )
    elif static_root and config["static_root"] != str(Path(static_root).resolve()):
        errors.append(
            f"The project's STATIC_ROOT is {config['static_root']}, but the bundle collects static files into "
            f"{static_root}: set app_static_root: {config['static_root']}."
        )
    time_zone = expect.get("time_zone")
    if time_zone and time_zone != config["timezone"]:
        warnings.append(
            f"The project's Celery time zone is {config['timezone']}, not app_time_zone ({time_zone}): crontab "
            "schedules follow the project's."
        )
    return errors, warnings


@click.command("check-config")
@click.option("--expect", default="{}", help="What the inventory deploys, as JSON (see the module's doc).")
@click.pass_context
def check_config(ctx, expect):
    """Check the project's effective Celery settings against the deployment."""
    config = effective_config(ctx.obj.app)
    errors, warnings = problems(config, json.loads(expect))
    click.echo(json.dumps({"config": config, "errors": errors, "warnings": warnings}))
    ctx.exit(3 if errors else 0)
