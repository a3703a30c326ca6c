"""The broker's ceiling: one side of a raw LPUSH/BRPOP loop, no Celery.

    BENCH_BROKER_URL=redis://celery:...@127.0.0.1:6398/0 \\
        python raw_broker.py produce|consume KEY COUNT PAYLOAD_FILE

`produce` LPUSHes the payload COUNT times, one command at a time; `consume`
BRPOPs until it has COUNT messages (or none came for 30 s). Each prints one
JSON line: {"count": messages, "first": time.time(), "last": time.time()}.
The URL comes from the environment, where `ps` does not show its password.
"""

import json
import os
import sys
import time
from pathlib import Path

import redis

IDLE_TIMEOUT = 30


def produce(client, key, count, payload):
    first = time.time()
    for _ in range(count):
        client.lpush(key, payload)
    return {"count": count, "first": first, "last": time.time()}


def consume(client, key, count, payload):
    received, first, last = 0, None, None
    while received < count and client.brpop([key], timeout=IDLE_TIMEOUT) is not None:
        last = time.time()
        first = first or last
        received += 1
    return {"count": received, "first": first, "last": last}


def main(side, key, count, payload_file):
    client = redis.Redis.from_url(os.environ["BENCH_BROKER_URL"])
    loop = {"produce": produce, "consume": consume}[side]
    print(json.dumps(loop(client, key, int(count), Path(payload_file).read_bytes())))


if __name__ == "__main__":
    main(*sys.argv[1:])
