"""The bench profiler's reading of py-spy's raw output (tests/bench/profile_pool.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "bench"))

from profile_pool import summarise  # noqa: E402

SITE = "/srv/venv/lib/python3.11/site-packages/"
MAIN = 'process 10:"python celery_launcher.py worker"'
CHILD = 'process 11:"python celery_launcher.py worker"'


def raw(*stacks):
    return "\n".join(f"{';'.join(frames)} {count}" for frames, count in stacks)


def test_samples_go_to_the_process_and_the_call_that_waits():
    profile = raw(
        ([MAIN, "<module> (celery_launcher.py:62)", f"_put_fanout ({SITE}kombu/transport/redis.py:1717)",
          f"execute_command ({SITE}redis/client.py:600)",
          f"read_from_socket ({SITE}redis/_parsers/hiredis.py:192)"], 7),
        ([MAIN, f"create_loop ({SITE}kombu/asynchronous/hub.py:406)", f"poll ({SITE}kombu/utils/eventio.py:83)"], 2),
        ([MAIN, f"_create_client ({SITE}kombu/transport/redis.py:2062)",
          f"__setitem__ ({SITE}redis/client.py:145)"], 1),
        ([MAIN, CHILD, f"workloop ({SITE}billiard/pool.py:351)", f"_recv ({SITE}billiard/connection.py:425)"], 6),
        ([MAIN, CHILD, f"get ({SITE}celery/backends/redis.py:785)",
          f"send_packed_command ({SITE}redis/connection.py:1349)"], 3),
        ([MAIN, CHILD, f"dumps ({SITE}kombu/utils/json.py:63)",
          "iterencode (/usr/lib/python3.11/json/encoder.py:258)"], 1),
    )
    shares = summarise(profile)
    assert shares["main process"] == {
        "in a Redis call: _put_fanout (kombu/transport/redis.py)": 7,
        "in the event loop's poll() (Redis's sockets, the pool's pipes)": 2,
        "in _create_client (kombu/transport/redis.py), in redis-py": 1,
    }
    assert shares["pool processes"] == {
        "waits for its next task (the main process's pipe)": 6,
        "in a Redis call: get (celery/backends/redis.py)": 3,
        "in dumps (kombu/utils/json.py)": 1,
    }
