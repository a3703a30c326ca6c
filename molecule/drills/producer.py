"""The drills' workload, run on a web host with its own python3: post N tasks
to the HTTP API at a steady rate, half idempotent (record_side_effect, one key
each) and half at-most-once (append_ledger), alternating the default and io
queues. A refused or failed POST is retried for up to 60 s, as a client would;
what the API accepted (HTTP 202) is written one JSON line per task. The API
token comes from the environment (APP_API_TOKEN: test_drills.py starts the
producer with the app's environment file), never from the command line.

    APP_API_TOKEN=... python3 producer.py NAME COUNT RATE SECONDS OUTFILE
"""

import json
import os
import sys
import time
import urllib.error
import urllib.request

name, outfile = sys.argv[1], sys.argv[5]
count, rate, seconds = int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
API = "http://127.0.0.1:8000/api/tasks/"
HEADERS = {"Content-Type": "application/json", "Authorization": f"Bearer {os.environ['APP_API_TOKEN']}"}


def post(task, body):
    deadline = time.monotonic() + 60
    while True:
        # API is a fixed http:// URL on this host.
        request = urllib.request.Request(API + task + "/", method="POST", data=json.dumps(body).encode(),  # noqa: S310
                                         headers=HEADERS)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return json.loads(response.read())["task_id"]
        except (urllib.error.URLError, OSError, ValueError):
            if time.monotonic() > deadline:
                return None
            time.sleep(0.5)


start = time.monotonic()
refused = 0
with open(outfile, "w") as out:
    for i in range(count):
        time.sleep(max(0.0, start + i / rate - time.monotonic()))
        queue = ("default", "io")[i % 2]
        if i % 4 < 2:
            kind, task = "idempotent", "record_side_effect"
            body = {"args": [f"{name}-{i}"], "kwargs": {"seconds": seconds}}
        else:
            kind, task = "at-most-once", "append_ledger"
            body = {"args": [name, 1], "kwargs": {"seconds": seconds}}
        task_id = post(task, dict(body, queue=queue))
        if task_id is None:
            refused += 1
            continue
        key = body["args"][0] if kind == "idempotent" else None
        out.write(json.dumps({"id": task_id, "kind": kind, "key": key}) + "\n")
        out.flush()
print(json.dumps({"refused": refused, "seconds": round(time.monotonic() - start, 1)}))
