"""The HTTP API and the health check. The task API needs the bearer token
(the api_client fixture sends it); the health check is open."""

import base64
import json
import uuid

import pytest

pytestmark = pytest.mark.django_db


def post(client, name, body, content_type="application/json", **kwargs):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(f"/api/tasks/{name}/", data=data, content_type=content_type, **kwargs)


def test_enqueue_returns_202_and_the_result_comes_back(api_client, eager_with_results):
    response = post(api_client, "add", {"args": [2, 3]})
    assert response.status_code == 202
    task_id = response.json()["task_id"]
    body = api_client.get(f"/api/tasks/{task_id}/").json()
    assert body == {"task_id": task_id, "status": "SUCCESS", "result": 5}


def test_failed_task_reports_its_error(api_client, eager_with_results):
    task_id = post(api_client, "always_fails", {"kwargs": {"reason": "api"}}).json()["task_id"]
    body = api_client.get(f"/api/tasks/{task_id}/").json()
    assert body["status"] == "FAILURE"
    assert "api" in body["error"]


def test_unknown_task_is_404_and_lists_allowed(api_client):
    response = post(api_client, "os.system", {"args": ["true"]})
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
def test_bad_requests_get_400_with_a_clear_message(api_client, body, message):
    response = post(api_client, "add", body)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_result_needs_a_uuid(api_client):
    assert api_client.get("/api/tasks/not-a-uuid/").status_code == 400


def test_unknown_task_id_is_pending(api_client, broker):
    task_id = str(uuid.uuid4())
    assert api_client.get(f"/api/tasks/{task_id}/").json()["status"] == "PENDING"


def test_other_methods_are_refused(api_client):
    assert api_client.delete("/api/tasks/add/").status_code == 405


def assert_refused(response, message="a valid API token is required"):
    assert response.status_code == 401, response.content
    assert response["WWW-Authenticate"] == "Bearer"
    assert set(response.json()) == {"error"}, "a refusal tells nothing but why"
    assert message in response.json()["error"]


def test_enqueue_without_a_token_is_401(client, eager_with_results):
    assert_refused(post(client, "add", {"args": [2, 3]}))


@pytest.mark.parametrize(
    "authorization",
    ["Bearer wrong-token", "Bearer ", "Bearer", "Token {token}", "{token}",
     "Bearer {token}x", "Bearer {token_prefix}"],
)
def test_a_wrong_token_or_scheme_is_401(client, settings, eager_with_results, authorization):
    token = settings.APP_API_TOKEN
    header = authorization.format(token=token, token_prefix=token[:-1])
    assert_refused(post(client, "add", {"args": [2, 3]}, headers={"Authorization": header}))


def test_basic_auth_with_the_token_as_password_is_401(client, settings):
    credentials = base64.b64encode(f"api:{settings.APP_API_TOKEN}".encode()).decode()
    assert_refused(post(client, "add", {"args": [2, 3]}, headers={"Authorization": f"Basic {credentials}"}))


def test_the_scheme_is_case_insensitive(client, settings, eager_with_results):
    response = post(client, "add", {"args": [2, 3]}, headers={"Authorization": f"bearer {settings.APP_API_TOKEN}"})
    assert response.status_code == 202, response.content


def test_reading_a_result_without_a_token_is_401(client, api_client, eager_with_results):
    task_id = post(api_client, "add", {"args": [2, 3]}).json()["task_id"]
    assert_refused(client.get(f"/api/tasks/{task_id}/"))


def test_unknown_task_without_a_token_is_401_not_404(client):
    assert_refused(post(client, "os.system", {"args": ["true"]}))


def test_bad_task_id_without_a_token_is_401_not_400(client):
    assert_refused(client.get("/api/tasks/not-a-uuid/"))


def test_without_a_configured_token_the_api_is_closed(client, settings, broker):
    """Fail closed: an empty APP_API_TOKEN matches nothing, not even an empty bearer."""
    settings.APP_API_TOKEN = ""
    for authorization in ("Bearer ", "Bearer", ""):
        assert_refused(post(client, "add", {"args": [2, 3]}, headers={"Authorization": authorization}),
                       "the API token is not configured")
    assert_refused(client.get(f"/api/tasks/{uuid.uuid4()}/"), "the API token is not configured")


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
