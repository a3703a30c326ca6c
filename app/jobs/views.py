"""HTTP API: enqueue whitelisted tasks, read their results, report health."""

import hmac
import json
import logging
import re
import uuid
from functools import wraps

from celery.result import AsyncResult
from config.celery import app as celery_app
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from . import tasks

logger = logging.getLogger(__name__)

# Only these tasks can be enqueued over HTTP.
ENQUEUEABLE = {
    "add": tasks.add,
    "record_side_effect": tasks.record_side_effect,
    "append_ledger": tasks.append_ledger,
    "always_fails": tasks.always_fails,
    "whoami": tasks.whoami,
    "nap": tasks.nap,
}
QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


def error(status, message, **extra):
    return JsonResponse({"error": message, **extra}, status=status)


def token_problem(request):
    """Why the request may not use the task API, or None. Without a
    configured token the API is closed to everyone (fail closed)."""
    expected = settings.APP_API_TOKEN
    if not expected:
        return "the API token is not configured on this server"
    scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
    # Header values arrive decoded as latin-1 (WSGI): encoding them back
    # gives the bytes the client sent. compare_digest takes constant time.
    offered = offered.strip().encode("latin-1", errors="replace")
    if scheme.lower() != "bearer" or not hmac.compare_digest(offered, expected.encode()):
        return "a valid API token is required: Authorization: Bearer <token>"
    return None


def require_token(view):
    """Refuse with 401 before the view looks at anything the request names."""

    @wraps(view)
    def checked(request, *args, **kwargs):
        problem = token_problem(request)
        if problem:
            response = error(401, problem)
            response["WWW-Authenticate"] = "Bearer"
            return response
        return view(request, *args, **kwargs)

    return checked


@csrf_exempt
@require_http_methods(["GET", "POST"])
@require_token
def dispatch(request, ref):
    """POST /api/tasks/<name>/ enqueues; GET /api/tasks/<task_id>/ reads a result."""
    if request.method == "POST":
        return enqueue(request, ref)
    return result(request, ref)


def enqueue(request, name):
    task = ENQUEUEABLE.get(name)
    if task is None:
        return error(404, f"unknown task {name!r}", allowed=sorted(ENQUEUEABLE))
    try:
        body = json.loads(request.body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return error(400, f"request body is not valid JSON: {exc}")
    if not isinstance(body, dict):
        return error(400, 'request body must be a JSON object like {"args": [2, 3]}')
    unknown = set(body) - {"args", "kwargs", "queue"}
    if unknown:
        return error(400, f"unknown fields: {', '.join(sorted(unknown))}")
    args, kwargs = body.get("args", []), body.get("kwargs", {})
    if not isinstance(args, list):
        return error(400, '"args" must be a JSON array')
    if not isinstance(kwargs, dict):
        return error(400, '"kwargs" must be a JSON object')
    queue = body.get("queue", settings.CELERY_TASK_DEFAULT_QUEUE)
    if not isinstance(queue, str) or not QUEUE_NAME.match(queue) or queue not in settings.APP_TASK_QUEUES:
        return error(400, f"queue must be one of {settings.APP_TASK_QUEUES}")
    result = task.apply_async(args=args, kwargs=kwargs, queue=queue)
    logger.info("Enqueued %s on %s", task.name, queue, extra={"task_id": result.id, "task_name": task.name})
    return JsonResponse({"task_id": result.id, "queue": queue}, status=202)


def result(request, task_id):
    try:
        uuid.UUID(task_id)
    except ValueError:
        return error(400, "task_id must be a UUID")
    outcome = AsyncResult(task_id, app=celery_app)
    body = {"task_id": task_id, "status": outcome.status, "result": None}
    if outcome.status == "FAILURE":
        body["error"] = f"{type(outcome.result).__name__}: {outcome.result}"
    elif outcome.ready():
        body["result"] = outcome.result
    return JsonResponse(body)


@require_GET
def healthz(request):
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # any failure means unhealthy; report it
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        checks["broker"] = "ok"
    except Exception as exc:
        checks["broker"] = f"error: {type(exc).__name__}"
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse({"status": "ok" if healthy else "unhealthy", **checks}, status=200 if healthy else 503)
