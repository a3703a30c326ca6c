"""Prove the sandbox works from this machine, through its published ports:
a task sent over the HTTP API to each queue and its result, beat's last
heartbeat (the sample app's Heartbeat rows: beat -> Redis -> a pool ->
PostgreSQL), Flower healthy and listing every pool, the Django admin's login
page. Then print the URLs and where the credentials are. files/sandbox.sh
runs it; it also creates the Django admin's user. Standard library only. The browser
test reads the secrets with read_vault()."""

import argparse
import base64
import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

# The sandbox's pools (inventories/sandbox) and a task for each queue.
PROBES = {"default": ("add", {"args": [2, 3]}, 5), "io": ("nap", {"args": [0.1]}, None)}
POOLS = ("default", "io")
HEARTBEAT_SECONDS = 10  # app_heartbeat_seconds in inventories/sandbox


def read_vault(path):
    """The sandbox's secrets: files/new-vault.sh --plain writes one
    `name: "value"` line each."""
    with open(path) as lines:
        return dict(re.findall(r'^(\w+): "(.*)"$', lines.read(), re.MULTILINE))


def ensure_admin(container, password):
    """The Django admin's user `admin` (a sandbox convenience: production
    creates its own with djangoapp-manage createsuperuser). The password goes
    through stdin, never a command line."""
    script = f"""
from django.contrib.auth import get_user_model
user, _ = get_user_model().objects.get_or_create(username="admin")
if not (user.is_superuser and user.check_password({password!r})):
    user.is_staff = user.is_superuser = True
    user.set_password({password!r})
    user.save()
"""
    subprocess.run(["docker", "exec", "--interactive", container, "djangoapp-manage", "shell", "--verbosity=0"],
                   input=script, text=True, check=True)


def request(url, body=None, headers=None):
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"the sandbox is on this machine's loopback: {url}")
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **(headers or {})}
    req = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310 (loopback http only, above)
    try:
        with urllib.request.urlopen(req, timeout=10) as response:  # noqa: S310
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def check(ok, what, detail=""):
    print(f"  {'ok  ' if ok else 'FAIL'} {what}{': ' + detail if detail else ''}", flush=True)
    if not ok:
        sys.exit(f"the sandbox does not work: {what}")


def task_round_trip(web, token):
    auth = {"Authorization": f"Bearer {token}"}
    for queue, (task, body, expected) in PROBES.items():
        status, text = request(f"{web}/api/tasks/{task}/", dict(body, queue=queue), auth)
        check(status == 202, f"POST /api/tasks/{task}/ on {queue}", f"{status} {text[:200]}")
        task_id = json.loads(text)["task_id"]
        deadline = time.monotonic() + 30
        while True:
            status, text = request(f"{web}/api/tasks/{task_id}/", headers=auth)
            answer = json.loads(text) if status == 200 else {}
            if answer.get("status") in ("SUCCESS", "FAILURE") or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        check(answer.get("status") == "SUCCESS" and (expected is None or answer.get("result") == expected),
              f"{task} on the {queue} pool", json.dumps(answer))


def heartbeat_age(container):
    script = ("from django.utils import timezone; from jobs.models import Heartbeat; h = Heartbeat.objects.first(); "
              "print(round((timezone.now() - h.created_at).total_seconds()) if h else -1, h.worker if h else '')")
    out = subprocess.run(["docker", "exec", container, "djangoapp-manage", "shell", "--verbosity=0", "-c", script],
                         capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]), (out[1] if len(out) > 1 else "")


def beat(container):
    deadline = time.monotonic() + 3 * HEARTBEAT_SECONDS
    while True:
        age, worker = heartbeat_age(container)
        if 0 <= age <= 2 * HEARTBEAT_SECONDS or time.monotonic() > deadline:
            break
        time.sleep(2)
    check(0 <= age <= 2 * HEARTBEAT_SECONDS, "beat's last heartbeat",
          f"{age} s ago, run by {worker}" if age >= 0 else "none yet")


def flower(url, password):
    status, text = request(f"{url}/healthcheck")
    check(status == 200, f"Flower {url}/healthcheck", f"{status} {text[:100]}")
    basic = base64.b64encode(f"admin:{password}".encode()).decode()
    status, text = request(f"{url}/api/workers?refresh=1", headers={"Authorization": f"Basic {basic}"})
    nodes = sorted(json.loads(text)) if status == 200 else []
    pools = sorted({node.split("@")[0] for node in nodes})
    check(pools == sorted(POOLS), "Flower lists every pool", ", ".join(nodes) or f"{status} {text[:100]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vault", required=True)
    parser.add_argument("--container", required=True)
    parser.add_argument("--web", required=True)
    parser.add_argument("--flower", required=True)
    options = parser.parse_args()
    secrets = read_vault(options.vault)
    ensure_admin(options.container, secrets["vault_admin_password"])

    task_round_trip(options.web, secrets["vault_app_api_token"])
    beat(options.container)
    flower(options.flower, secrets["vault_flower_password"])
    status, text = request(f"{options.web}/admin/login/")
    check(status == 200 and "Django" in text, f"the Django admin {options.web}/admin/", str(status))

    print(f"""
The sandbox is up. On this machine:
  app:          {options.web}/healthz, the task API at {options.web}/api/tasks/<name>/
  Django admin: {options.web}/admin/  (user admin)
  Flower:       {options.flower}/  (user admin)
Passwords and the API token: {options.vault} (mode 0600, not in git):
  admin:        vault_admin_password
  Flower:       vault_flower_password
  API token:    vault_app_api_token (Authorization: Bearer <token>)
Inside: docker exec -it {options.container} bash   (djangoapp-manage, djangoapp-celery, journalctl)
Remove: make sandbox-destroy""")


if __name__ == "__main__":
    main()
