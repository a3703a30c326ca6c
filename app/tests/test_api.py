"""The HTTP API and the health check."""

import json
import uuid

import pytest

pytestmark = pytest.mark.django_db


def post(client, name, body, content_type="application/json"):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(f"/api/tasks/{name}/", data=data, content_type=content_type)


def test_enqueue_returns_202_and_the_result_comes_back(client, eager_with_results):
    response = post(client, "add", {"args": [2, 3]})
    assert response.status_code == 202
    task_id = response.json()["task_id"]
    body = client.get(f"/api/tasks/{task_id}/").json()
    assert body == {"task_id": task_id, "status": "SUCCESS", "result": 5}


def test_failed_task_reports_its_error(client, eager_with_results):
    task_id = post(client, "always_fails", {"kwargs": {"reason": "api"}}).json()["task_id"]
    body = client.get(f"/api/tasks/{task_id}/").json()
    assert body["status"] == "FAILURE"
    assert "api" in body["error"]


def test_unknown_task_is_404_and_lists_allowed(client):
    response = post(client, "os.system", {"args": ["true"]})
    assert response.status_code == 404
    assert "add" in response.json()["allowed"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ({"args": "2,3"}, '"args" must be a JSON array'),
        ({"kwargs": [1]}, '"kwargs" must be a JSON object'),
        ({"args": [1], "eta": "now"}, "unknown fields: eta"),
        ({"args": [], "queue": "nobody-listens"}, "queue must be one of"),
    ],
)
def test_bad_requests_get_400_with_a_clear_message(client, body, message):
    response = post(client, "add", body)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_result_needs_a_uuid(client):
    assert client.get("/api/tasks/not-a-uuid/").status_code == 400


def test_unknown_task_id_is_pending(client, broker):
    task_id = str(uuid.uuid4())
    assert client.get(f"/api/tasks/{task_id}/").json()["status"] == "PENDING"


def test_other_methods_are_refused(client):
    assert client.delete("/api/tasks/add/").status_code == 405


def test_healthz_ok_with_database_and_broker(client, broker):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


def test_healthz_503_when_broker_is_down(client, monkeypatch):
    # Celery reads CELERY_BROKER_URL from the environment first. Nothing
    # listens on port 1.
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://celery:x@127.0.0.1:1/0")
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["broker"].startswith("error")
    assert response.json()["database"] == "ok"
