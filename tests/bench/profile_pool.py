"""Where a worker's time goes on no-op tasks: py-spy samples of its main
process and of its pool processes while they drain. Figures, never pass/fail.

    make bench-profile                                   # the bundle's default pool, about 2 minutes
    PROFILE_POOL_ARGS="--pool=solo" make bench-profile   # the default pool's arguments with these in place

Sets up what `make bench` does (tests/bench/task_path.py: a private Redis with
the Redis role's configuration, the sample app's real settings), queues
PROFILE_TASKS (20000) no-op tasks, starts one worker with the arguments the
celery_worker role renders for a pool with no field set, and once it has run
for PROFILE_WARMUP_SECONDS (8) records it and its pool processes with
`py-spy record --subprocesses` twice, PROFILE_SECONDS (20) each at
PROFILE_RATE (200) samples a second: with --idle (every sample: where the
time goes) and without (the samples where the process was on a CPU). Both
are given as shares of the first recording's samples, so the difference
between the two columns is time spent off the CPU (waiting). py-spy pauses
a process to sample it, so the drain is slower than unprofiled; the shares,
not the rates, are the figures.

Every sample of each process is put in one bucket:
- "in a Redis call: <call>": in redis-py sending a command, waiting for its
  reply or parsing it; <call> is the Celery or kombu function that made it;
- "waits for its next task": a prefork pool process reading the main
  process's pipe;
- "in the event loop's poll()": the main process waiting for its sockets
  and pipes (the next message from Redis, a result from a pool process);
- "in <call>": anything else, by the innermost Celery, kombu or billiard
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
REDIS_IO = ("read_from_socket", "send_packed_command", "read_response", "_read_from_socket")


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
        return f"in a Redis call: {call}"
    if in_pool_process and path.startswith("billiard/") and function == "_recv":
        return "waits for its next task (the main process's pipe)"
    if path.startswith("kombu/utils/eventio") and function == "poll":
        return "in the event loop's poll() (Redis's sockets, the pool's pipes)"
    inside_redis_py = any(path.startswith("redis/") for _, path in frames[at + 1:])
    return f"in {call}{', in redis-py' if inside_redis_py else ''}"


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


def record(pid, output, idle):
    """py-spy's raw samples of pid and its children; with idle, also those
    where a process was off the CPU."""
    subprocess.run([str(PY_SPY), "record", "--pid", str(pid), "--subprocesses", *(["--idle"] if idle else []),
                    "--rate", str(RATE), "--duration", str(SECONDS), "--format", "raw", "--output", str(output)],
                   check=True, stdout=subprocess.DEVNULL)
    return summarise(output.read_text())


def main():
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import task_path  # the bench's own set-up; imported here, so the unit tests read summarise() without Celery

    with tempfile.TemporaryDirectory(prefix="bench-profile-") as workdir:
        stack = task_path.Stack(workdir)
        options = stack.default_pool
        for option in os.environ.get("PROFILE_POOL_ARGS", "").split():
            name, equals, value = option.partition("=")
            options = task_path.with_option(options, name, value) if equals else [*options, option]
        command = f"celery {' '.join(stack.commands([options])[0])}"
        stack.start()
        try:
            name, kwargs = task_path.DRAINS["drain no-op"]
            stack.purge()
            task_path.log(f"queueing {TASKS} no-op tasks")
            task_path.publish(stack, name, kwargs, TASKS)
            stack.start_workers([options], "profile")
            time.sleep(WARMUP_SECONDS)
            before, pid = stack.in_broker(), stack.workers[0][0].pid
            task_path.log(f"recording {command}: {SECONDS} s with --idle, then {SECONDS} s without")
            every = record(pid, Path(workdir) / "every.txt", idle=True)
            on_cpu = record(pid, Path(workdir) / "on-cpu.txt", idle=False)
            left = stack.in_broker()
        finally:
            stack.stop()
    if not left:
        sys.exit(f"the queue ran dry while recording: raise PROFILE_TASKS ({TASKS})")
    print(command)
    print(f"{before - left} tasks drained in the {2 * SECONDS} s recorded (slowed by the sampling)\n")
    for role, counts in every.items():
        total = sum(counts.values())
        if not total:
            continue
        print(f"{role}: {total} samples in {SECONDS} s; shares of them, every sample and those on a CPU")
        print(f"  {'every':>6}  {'on CPU':>6}")
        top = counts.most_common(TOP)
        for name, count in top:
            print(f"  {count / total:6.1%}  {on_cpu[role][name] / total:6.1%}  {name}")
        shown = {name for name, _ in top}
        rest, rest_on_cpu = (sum(count for name, count in counter.items() if name not in shown)
                             for counter in (counts, on_cpu[role]))
        print(f"  {rest / total:6.1%}  {rest_on_cpu / total:6.1%}  everything else")
        print(f"  {'':6}  {sum(on_cpu[role].values()) / total:6.1%}  on a CPU in all\n")


if __name__ == "__main__":
    main()
