"""Host processes the bench starts and always stops: redis-server and Celery workers.

Each runs in its own session (process group), so a Ctrl-C in the terminal
reaches the bench alone, which then stops them in order; and stopping a
worker's group takes its pool children with it.
"""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APP_DIR = ROOT / "app"
APP_PYTHON = ROOT / ".venv-app" / "bin" / "python"
LAUNCHER = ROOT / "roles" / "app" / "files" / "opt" / "djangoapp" / "lib" / "celery_launcher.py"
REDIS_SERVER = "/usr/bin/redis-server"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def start(argv, log_path, **kwargs):
    """Start argv in a new session, its output appended to log_path."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **kwargs)


def terminate(process):
    """SIGTERM: Celery's warm shutdown (running tasks finish), Redis's clean exit."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)


def reap(process, timeout):
    """Wait up to timeout for a terminated process, then SIGKILL its whole group."""
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        pass
    # The group is the process's own session: whatever it left behind goes too.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def stop(process, timeout):
    terminate(process)
    reap(process, timeout)


def port_is_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def start_redis(conf, aclfile, workdir, port, timeout=10):
    """redis-server with the role's redis.conf and users.acl; only what belongs
    to a system install (data dir, ACL file path, pidfile, systemd
    supervision) is overridden, with paths in workdir."""
    if not Path(REDIS_SERVER).exists():
        raise RuntimeError(f"{REDIS_SERVER} is missing: apt-get install redis-server")
    if port_is_open(port):
        raise RuntimeError(f"port {port} is taken: set BENCH_REDIS_PORT to a free one")
    argv = [REDIS_SERVER, str(conf), "--dir", str(workdir), "--aclfile", str(aclfile),
            "--pidfile", str(workdir / "redis.pid"), "--supervised", "no"]
    process = start(argv, workdir / "redis.log")
    deadline = time.monotonic() + timeout
    while not port_is_open(port):
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process, 5)
            raise RuntimeError(f"redis-server did not start:\n{tail(workdir / 'redis.log')}")
        time.sleep(0.05)
    return process


def start_worker(worker_args, env, log_path):
    """One worker the way its unit starts it: the launcher, from the app's directory."""
    argv = [str(APP_PYTHON), str(LAUNCHER), *worker_args]
    return start(argv, log_path, cwd=APP_DIR, env=env)


def cpu_seconds(roots):
    """CPU seconds (user and system) used so far by the processes `roots`
    (pids) alone, and by them with all their descendants, counting children
    their parent has already reaped (a pool's replaced children) through its
    cutime and cstime: (roots, with descendants)."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # proc(5): after "(comm)", field 3 (state) is index 0: ppid 1, utime 11, stime 12, cutime 13, cstime 14.
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:  # exited meanwhile
            continue
        stats[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14]))
    children = {}
    for pid, (ppid, _, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    roots = [pid for pid in roots if pid in stats]
    own = sum(stats[pid][1] for pid in roots)
    ticks, todo = 0, list(roots)
    while todo:
        pid = todo.pop()
        ticks += stats[pid][1] + stats[pid][2]
        todo += children.get(pid, [])
    return own / CLOCK_TICKS, ticks / CLOCK_TICKS


def tail(path, lines=30):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
