"""Where a worker's time goes on no-op tasks: py-spy samples of its main
process and of its pool processes while they drain. Figures, never pass/fail.

    make bench-profile                                   # the bundle's default pool, about 1 minute
    PROFILE_POOL_ARGS="--pool=solo" make bench-profile   # the default pool's arguments with these in place

Sets up what `make bench` does (tests/bench/task_path.py: a private Redis with
the Redis role's configuration, the sample app's real settings), queues
PROFILE_TASKS (20000) no-op tasks, starts one worker with the arguments the
celery_worker role renders for a pool with no field set, and once it has run
for PROFILE_WARMUP_SECONDS (8) records it and its pool processes with
`py-spy record --subprocesses --idle` (PROFILE_RATE samples a second, for
PROFILE_SECONDS, 20). py-spy pauses a process to sample it, so the drain is
slower than unprofiled; the shares, not the rates, are the figures.

Every sample of each process is put in one bucket:
- "waits for Redis (<call>)": in redis-py, reading a reply or sending a
  command; <call> is the Celery or kombu function that issued it;
- "waits for work": a prefork pool process reading its next task from the
  main process's pipe, or the main process's event loop in poll();
- "cpu: <call>": anything else, by the innermost Celery, kombu or billiard
  function on the stack ("in redis-py" when it was inside redis-py then).
"""

import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

PY_SPY = Path(sys.executable).parent / "py-spy"
TASKS = int(os.environ.get("PROFILE_TASKS", "20000"))
WARMUP_SECONDS = float(os.environ.get("PROFILE_WARMUP_SECONDS", "8"))
SECONDS = int(os.environ.get("PROFILE_SECONDS", "20"))
RATE = int(os.environ.get("PROFILE_RATE", "200"))
TOP = 12

# A frame as py-spy's raw format writes it: "function (path:line)".
FRAME = re.compile(r"(?P<function>\S+) \((?P<path>.+?):\d+\)$")
LIBRARIES = ("celery/", "kombu/", "billiard/")
REDIS_IO = ("read_from_socket", "_socket_can_read", "send_packed_command", "read_response", "_read_from_socket")


def frame(text):
    """(function, path after site-packages/) of one raw frame, or None."""
    match = FRAME.match(text)
    if not match:
        return None
    return match["function"], match["path"].rpartition("site-packages/")[2]


def innermost(frames, prefixes):
    """(index, "function (path)") of the innermost frame whose path starts
    with one of prefixes, or (-1, "elsewhere")."""
    for index in range(len(frames) - 1, -1, -1):
        function, path = frames[index]
        if path.startswith(prefixes):
            return index, f"{function} ({path})"
    return -1, "elsewhere"


def bucket(frames, in_pool_process):
    function, path = frames[-1]
    at, call = innermost(frames, LIBRARIES)
    if path.startswith("redis/") and function in REDIS_IO:
        return f"waits for Redis: {call}"
    if in_pool_process and path.startswith("billiard/") and function == "_recv":
        return "waits for work: the next task from the main process"
    if path.startswith("kombu/utils/eventio") and function == "poll":
        return "waits for work: the event loop's poll()"
    inside_redis_py = any(path.startswith("redis/") for _, path in frames[at + 1:])
    return f"cpu: {call}{', in redis-py' if inside_redis_py else ''}"


def summarise(raw):
    """{"main process" | "pool processes": Counter(bucket: samples)} from py-spy's raw output."""
    shares = {"main process": Counter(), "pool processes": Counter()}
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        parts = stack.split(";")
        # --subprocesses prefixes a child's stack with its parent's "process ..." entry too.
        in_pool_process = len(parts) > 1 and parts[1].startswith("process ")
        frames = [parsed for parsed in map(frame, parts) if parsed]
        if frames:
            role = "pool processes" if in_pool_process else "main process"
            shares[role][bucket(frames, in_pool_process)] += int(count)
    return shares


def main():
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import task_path  # the bench's own set-up; imported here, so the unit tests read summarise() without Celery

    extra = os.environ.get("PROFILE_POOL_ARGS", "").split()
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as workdir:
        stack = task_path.Stack(workdir)
        options = stack.default_pool
        for option in extra:
            options = task_path.with_option(options, *option.split("=", 1))
        stack.start()
        try:
            name, kwargs = task_path.DRAINS["drain no-op"]
            stack.purge()
            task_path.log(f"queueing {TASKS} no-op tasks")
            task_path.publish(stack, name, kwargs, TASKS)
            stack.start_workers([options], "profile")
            time.sleep(WARMUP_SECONDS)
            before = stack.in_broker()
            output = Path(workdir) / "profile.txt"
            task_path.log(f"recording celery {' '.join(stack.commands([options])[0])} for {SECONDS} s")
            subprocess.run([str(PY_SPY), "record", "--pid", str(stack.workers[0][0].pid), "--subprocesses", "--idle",
                            "--rate", str(RATE), "--duration", str(SECONDS), "--format", "raw",
                            "--output", str(output)], check=True, stdout=subprocess.DEVNULL)
            drained = before - stack.in_broker()
            raw = output.read_text()
        finally:
            stack.stop()
    if drained <= 0:
        sys.exit(f"the worker drained nothing while recorded ({before} tasks waiting): no profile to read")
    print(f"celery {' '.join(stack.commands([options])[0])}")
    print(f"{drained} tasks drained in the {SECONDS} s recorded (slowed by the sampling)\n")
    for role, counts in summarise(raw).items():
        total = sum(counts.values())
        if not total:
            continue
        print(f"{role}: {total} samples")
        for name, count in counts.most_common(TOP):
            print(f"  {count / total:6.1%}  {name}")
        rest = total - sum(count for _, count in counts.most_common(TOP))
        if rest:
            print(f"  {rest / total:6.1%}  everything else")
        print()


if __name__ == "__main__":
    main()
