"""Benchmark of the Celery task path, as the bundle deploys it: figures, never pass/fail.

    make bench                      # BENCH_TASKS=5000 per drain: about 30 minutes on 2 cores
    BENCH_TASKS=1000 BENCH_REPEAT=1 make bench     # a smoke run
    .venv-app/bin/python tests/bench/task_path.py --report   # chart and tables again from the stored run

Each run writes docs/bench/task-path.json and .png, and the table between the
bench-table markers of docs/BENCHMARKS.md.

Everything runs as host processes on this machine, set up from the roles' own
templates (tests/bench/deployment.py renders them with ansible-playbook):
- a private redis-server on 127.0.0.1:BENCH_REDIS_PORT (6398) with the Redis
  role's redis.conf and users.acl (ACL users `default` and `celery`, AOF with
  fsync every second, noeviction);
- a temporary sqlite database, migrated once;
- Celery workers of the sample app with its real settings (config.settings)
  and the environment app.env.j2 renders, started the way the units start them:
  .venv-app/bin/python celery_launcher.py --app=config worker ..., from app/.

Configurations, measured in the same run:
1. bundle-default: the worker arguments the celery_worker role renders for a
   pool with no field set (pool.conf.j2) plus the unit's --hostname.
2. stock: `celery worker` with no option but the app.
3. recommended: RECOMMENDED_LAYOUT below (one list of arguments per worker process).
4. broker ceiling: a raw LPUSH/BRPOP loop with redis-py (raw_broker.py), one
   producer and one consumer process, as the `celery` user, with a real
   Celery message of the no-op task as payload.
5. factors: the bundle's default pool with one thing changed each
   (factor_configurations below: prefetch, concurrency, log level,
   recycling children, gossip/mingle/heartbeat, task events), two such
   workers of concurrency 1 and three solo workers; the no-op drain only.
   What each default costs or gains.
6. I/O pools: the bundle's default pool with a threads (8) or a gevent (20)
   pool in its place (io_configurations below); the 50 ms drain only.

The no-op drain of configurations 1-3 and 5 runs BENCH_REPEAT times (3),
the configurations interleaved, and the median is reported with every run
(the `runs` column): single runs move by 2x with the machine's load.

Workloads:
- drain: BENCH_TASKS no-op tasks (jobs.tasks.add), then as many 50 ms tasks
  (jobs.tasks.nap, seconds=0.05), published with no worker running; then the
  workers start. tasks/s counts from the first task's date_done to the last
  one's (stored by the workers in the result backend), so start-up is excluded.
  The bench waits with three O(1) commands every 0.2 s (LLEN of the queue,
  HLEN of kombu's unacked hash, INFO cpu), then reads every result with MGET;
  its own CPU, Redis's and the workers' (every worker process and its pool's
  processes, from /proc) between the first and the last result are reported
  as shares of one core: the bench and Redis, to show neither is the
  bottleneck; the workers, to show whether they are CPU-bound (200 % is both
  cores of this machine; a threads or gevent pool is one process, so about 100 %),
  and of it the workers' main processes alone (a prefork pool's parent, which
  takes each message from Redis, hands it to a pool process and acks it).
  Every task is counted: ok (SUCCESS), failed (another final state), lost (no
  final state).
- latency: with the workers up, nap(seconds=0) sent at BENCH_LATENCY_RATE
  tasks/s (20) for BENCH_LATENCY_SECONDS (10); the latency is the task's
  `started` (time.time() at its first line) minus time.time() just before
  apply_async.
- enqueue: BENCH_TASKS add tasks from one client, no worker running: one
  apply_async at a time (each acquires a producer from the app's pool), and
  one producer acquired once and reused by apply_async in a loop (what
  group().apply_async() does, without a group id).

Queues and the result database are purged between measurements, and the next
one starts once no RDB snapshot or AOF rewrite runs; `redis forks` counts the
ones a drain triggered itself (the role's `save` points and AOF rewrite size
apply, as in production). Results go to docs/bench/task-path.json and
docs/bench/task-path.png; progress goes to stderr.
"""

import json
import os
import platform
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import celery
import deployment
import kombu
import processes
import redis
import report
from celery import states

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "docs" / "bench"

# The layout proposed for a 2-core host: one list of worker arguments per
# worker process (after `--app=config worker`). Tune here.
RECOMMENDED_LAYOUT = [
    ["--hostname=solo1@%h", "--queues=celery", "--pool=solo", "--concurrency=1", "--prefetch-multiplier=4",
     "--without-gossip", "--without-mingle", "--loglevel=INFO"],
    ["--hostname=solo2@%h", "--queues=celery", "--pool=solo", "--concurrency=1", "--prefetch-multiplier=4",
     "--without-gossip", "--without-mingle", "--loglevel=INFO"],
]
# Hand-written layouts, measured after the bundle's default pool (rendered from
# the role). Add or replace entries to compare more.
LAYOUTS = {
    "stock": [[]],
    "recommended": RECOMMENDED_LAYOUT,
}


def factor_configurations(default):
    """The bundle's default pool with one thing changed each (no-op drains
    only): what each default costs or gains. Built from the arguments the
    role renders, so they follow its defaults. {name: (layout, environment)}."""
    queues = next(option for option in default if option.startswith("--queues="))
    return {
        # Several processes per host with the time limits kept: each its own
        # prefork parent (the default pool's one parent, busy with each task's
        # Redis calls, is its bottleneck: make bench-profile).
        "default x2, concurrency 1": (
            [with_option(with_option(default, "--concurrency", 1), "--hostname", f"prefork{i}@%h")
             for i in (1, 2)], {}),
        "default, prefetch 4": ([with_option(default, "--prefetch-multiplier", 4)], {}),
        "default, concurrency 4": ([with_option(default, "--concurrency", 4)], {}),
        "default, log WARNING": ([with_option(default, "--loglevel", "WARNING")], {}),
        # The role's default until the bench measured it.
        "default, max-tasks-per-child 1000": ([with_option(default, "--max-tasks-per-child", 1000)], {}),
        "default, no gossip/mingle/heartbeat": (
            [[*default, "--without-gossip", "--without-mingle", "--without-heartbeat"]], {}),
        # app_task_events: false (the app's environment, not a worker option).
        "default, no task events": ([default], {"CELERY_WORKER_SEND_TASK_EVENTS": "false"}),
        "solo x3, prefetch 4": ([[f"--hostname=solo{i}@%h", queues, "--pool=solo", "--concurrency=1",
                                  "--prefetch-multiplier=4", "--without-gossip", "--without-mingle", "--loglevel=INFO"]
                                 for i in (1, 2, 3)], {}),
    }


def io_configurations(default):
    """The bundle's default pool with an I/O pool in its place (the 50 ms
    drain only): how many more slots threads or gevent give a queue of tasks
    that wait. {name: layout}."""
    return {
        "default, threads 8": [with_option(with_option(default, "--pool", "threads"), "--concurrency", 8)],
        "default, gevent 20": [with_option(with_option(default, "--pool", "gevent"), "--concurrency", 20)],
    }


def with_option(options, name, value):
    """options with --name=value in place of any --name=... (appended when absent)."""
    return [option for option in options if not option.startswith(f"{name}=")] + [f"{name}={value}"]


# The ratios of drain throughput the table ends with: (numerator, denominator).
RATIOS = [("bundle-default", "stock"), ("recommended", "stock"), ("bundle-default", "broker ceiling")]

TASKS = int(os.environ.get("BENCH_TASKS", "5000"))
# No-op drains move by 2x with the machine's load: each configuration's is
# repeated, interleaved with the others', and the median reported.
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
REDIS_PORT = int(os.environ.get("BENCH_REDIS_PORT", "6398"))
LATENCY_RATE = float(os.environ.get("BENCH_LATENCY_RATE", "20"))
LATENCY_SECONDS = float(os.environ.get("BENCH_LATENCY_SECONDS", "10"))
# The raw loop moves tens of thousands of messages a second: give it enough
# to measure for more than a blink.
BROKER_MESSAGES = max(TASKS, 20000)
DRAINS = {"drain no-op": ("jobs.tasks.add", {"x": 1, "y": 2}),
          "drain 50 ms": ("jobs.tasks.nap", {"seconds": 0.05})}
LATENCY_WORKLOAD = f"latency nap(0) @{LATENCY_RATE:g}/s"
POLL_SECONDS = 0.2
# A drain or latency run gives up when nothing moved for this long.
STALL_SECONDS = 60
WORKER_STOP_SECONDS = 30
UNACKED_KEY = "unacked"  # kombu's Redis transport default


def log(message):
    print(message, file=sys.stderr, flush=True)


class Stack:
    """Redis, the app's environment and the Celery client of one bench run."""

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.workers = []
        self.redis = None
        state = self.workdir / "state"
        state.mkdir()
        self.secrets = {"redis_password": secrets.token_hex(16), "redis_celery_password": secrets.token_hex(16),
                        "app_secret_key": secrets.token_urlsafe(40)}
        self.rendered = self.workdir / "rendered"
        self.rendered.mkdir()
        log("rendering the roles' templates with ansible-playbook")
        self.files = deployment.render(self.rendered, REDIS_PORT, state, self.secrets)
        self.app_env = deployment.env_file(self.files["app.env"])
        self.celery_options, self.default_pool = deployment.unit_worker_command(
            self.files["celery-worker@.service"], self.files["default.pool.conf"], deployment.DEFAULT_POOL["name"])
        self.queue = self.app_env["CELERY_TASK_DEFAULT_QUEUE"]

    def start(self):
        log(f"starting redis-server on 127.0.0.1:{REDIS_PORT}")
        self.redis = processes.start_redis(self.rendered / "redis.conf", self.rendered / "users.acl",
                                           self.workdir, REDIS_PORT)
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **self.app_env}
        broker_url, result_url = self.app_env["CELERY_BROKER_URL"], self.app_env["CELERY_RESULT_BACKEND"]
        self.broker = redis.Redis.from_url(broker_url)
        self.results = redis.Redis.from_url(result_url)
        self.broker_admin = redis.Redis.from_url(as_admin(broker_url, self.secrets["redis_password"]))
        self.results_admin = redis.Redis.from_url(as_admin(result_url, self.secrets["redis_password"]))
        log("migrating the sqlite database")
        subprocess.run([str(processes.APP_PYTHON), "manage.py", "migrate", "--verbosity", "0"],
                       cwd=processes.APP_DIR, env=self.env, check=True)
        self.app, self.tasks = celery_client(self.app_env)

    def stop(self):
        self.stop_workers()
        if self.redis is not None:
            processes.stop(self.redis, 30)

    def commands(self, layout):
        """The `celery` argument list of each worker process of a layout."""
        return [[*self.celery_options, "worker", *options] for options in layout]

    def start_workers(self, layout, label, environment=None):
        for index, argv in enumerate(self.commands(layout)):
            path = self.workdir / f"{label}-{index}.log".replace(" ", "_").replace("/", "_").replace(",", "")
            self.workers.append((processes.start_worker(argv, {**self.env, **(environment or {})}, path), path))

    def stop_workers(self):
        for process, _ in self.workers:
            processes.terminate(process)
        for process, path in self.workers:
            processes.reap(process, WORKER_STOP_SECONDS)
            if process.returncode not in (0, -signal.SIGTERM):
                log(f"worker exited with {process.returncode}; its log:\n{processes.tail(path)}")
        self.workers = []

    def workers_cpu(self):
        """CPU seconds the running workers used so far: their main processes
        alone, and with their pool processes (main, all)."""
        return processes.cpu_seconds([process.pid for process, _ in self.workers])

    def workers_alive(self):
        return any(process.poll() is None for process, _ in self.workers)

    def purge(self):
        """Empty the broker database but for kombu's bindings (the client
        declared its queues once and would not again), and the result database."""
        keys = [key for key in self.broker_admin.scan_iter(count=1000) if not key.startswith(b"_kombu.binding.")]
        for start in range(0, len(keys), 1000):
            self.broker_admin.delete(*keys[start:start + 1000])
        self.results_admin.flushdb()
        self.wait_for_persistence()

    def wait_for_persistence(self, timeout=120):
        """Until no RDB snapshot or AOF rewrite runs: one that the last
        measurement triggered would slow down the next. (Those a measurement
        triggers itself count, as in production: see redis_forks.)"""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = self.broker_admin.info("persistence")
            if not (info["rdb_bgsave_in_progress"] or info["aof_rewrite_in_progress"]
                    or info["aof_rewrite_scheduled"]):
                return
            time.sleep(0.5)

    def redis_forks(self):
        """Forks so far: each is an RDB snapshot or an AOF rewrite."""
        return self.broker_admin.info("stats")["total_forks"]

    def in_broker(self):
        return self.broker.llen(self.queue) + self.broker.hlen(UNACKED_KEY)

    def redis_settings(self):
        """What the running Redis says about the settings that matter here."""
        settings = {}
        for name in ["appendonly", "appendfsync", "maxmemory-policy", "save"]:
            settings.update(self.broker_admin.config_get(name))
        # The app's user may not run ACL WHOAMI (its allow-list): the URL names it.
        settings["client user"] = urlsplit(self.app_env["CELERY_BROKER_URL"]).username
        return {text(key): text(value) for key, value in settings.items()}

    def redis_cpu(self):
        info = self.broker_admin.info("cpu")
        return info["used_cpu_user"] + info["used_cpu_sys"]


def text(value):
    return value.decode() if isinstance(value, bytes) else value


def as_admin(url, password):
    """The same Redis URL as the `default` user (operators' login: FLUSHDB, INFO)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"default:{password}@{parts.hostname}:{parts.port}"))


def celery_client(app_env):
    """The app's Celery app and tasks module in this process, as the web app has them."""
    os.environ.update(app_env)
    sys.path.insert(0, str(processes.APP_DIR))
    import django

    django.setup()
    from config.celery import app
    from jobs import tasks

    return app, tasks


# --- Measurements ------------------------------------------------------------

def publish(stack, name, kwargs, count):
    """Publish count tasks through one producer; return their ids."""
    task = stack.app.tasks[name]
    with stack.app.producer_or_acquire() as producer:
        return [task.apply_async(kwargs=kwargs, producer=producer).id for _ in range(count)]


def final_results(stack, ids):
    """{id: result meta} of the tasks among ids that reached a final state."""
    found = {}
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        keys = [stack.app.backend.get_key_for_task(task_id) for task_id in chunk]
        for task_id, raw in zip(chunk, stack.results.mget(keys), strict=True):
            if raw is not None:
                meta = json.loads(raw)
                if meta["status"] in states.READY_STATES:
                    found[task_id] = meta
    return found


def wait_for_results(stack, ids, samples=None):
    """Wait until every task has a final result, nothing moved for
    STALL_SECONDS or every worker exited; return {id: meta} of the finished.
    Each poll appends (time, Redis's, the bench's, the workers' main processes'
    and all the workers' CPU seconds) to samples."""
    done = {}
    last_seen, last_change = None, time.monotonic()
    while True:
        if samples is not None:
            samples.append((time.time(), stack.redis_cpu(), time.process_time(), *stack.workers_cpu()))
        in_broker = stack.in_broker()
        if in_broker != last_seen:
            last_seen, last_change = in_broker, time.monotonic()
        if in_broker == 0:
            fresh = final_results(stack, [i for i in ids if i not in done])
            done.update(fresh)
            if fresh:
                last_change = time.monotonic()
            if len(done) == len(ids):
                return done
        if time.monotonic() - last_change > STALL_SECONDS or not stack.workers_alive():
            done.update(final_results(stack, [i for i in ids if i not in done]))
            log(f"  gave up waiting: {len(ids) - len(done)} of {len(ids)} tasks have no final state")
            return done
        time.sleep(POLL_SECONDS)


def outcome(ids, done):
    statuses = Counter(meta["status"] for meta in done.values())
    return {"succeeded": statuses["SUCCESS"], "failed": len(done) - statuses["SUCCESS"], "lost": len(ids) - len(done)}


def timestamp(iso):
    return datetime.fromisoformat(iso).timestamp()


def cpu_shares(samples, start, end):
    """Redis's, the bench's, the workers' main processes' and all the workers'
    CPU use, as shares of one core,
    from the last sample at or before start to the first at or after end."""
    before = [s for s in samples if s[0] <= start] or samples[:1]
    after = [s for s in samples if s[0] >= end] or samples[-1:]
    (t0, *used0), (t1, *used1) = before[-1], after[0]
    if t1 <= t0:
        return {}
    names = ("redis_cpu", "bench_cpu", "main_cpu", "workers_cpu")
    return {name: (last - first) / (t1 - t0) for name, first, last in zip(names, used0, used1, strict=True)}


def drain(stack, configuration, layout, workload, environment=None):
    name, kwargs = DRAINS[workload]
    stack.purge()
    ids = publish(stack, name, kwargs, TASKS)
    samples, started, forks = [], time.time(), stack.redis_forks()
    stack.start_workers(layout, f"{configuration}-{workload}", environment)
    try:
        done = wait_for_results(stack, ids, samples)
        forks = stack.redis_forks() - forks
    finally:
        stack.stop_workers()
    finished = sorted(timestamp(meta["date_done"]) for meta in done.values())
    if len(finished) < 2:
        return {"tasks_per_s": None, **outcome(ids, done)}
    span = finished[-1] - finished[0]
    return {"tasks_per_s": (len(finished) - 1) / span, "seconds": round(span, 2),
            "startup_s": round(finished[0] - started, 2), **outcome(ids, done),
            **cpu_shares(samples, finished[0], finished[-1]), "redis_forks": forks}


def wait_until_ready(stack, count, timeout=120):
    """Until count workers answer a ping (the pool is up once its node answers)."""
    deadline = time.monotonic() + timeout
    while len(stack.app.control.ping(timeout=0.5)) < count:
        if time.monotonic() > deadline or not stack.workers_alive():
            raise RuntimeError(f"{count} workers did not all answer a ping within {timeout} s")


def latency(stack, configuration, layout):
    nap = stack.app.tasks["jobs.tasks.nap"]
    stack.purge()
    stack.start_workers(layout, f"{configuration}-latency")
    try:
        wait_until_ready(stack, len(layout))
        # Warm up: every pool process runs a few tasks before the measurement.
        wait_for_results(stack, publish(stack, nap.name, {"seconds": 0}, 10 * len(layout)))
        sent = {}
        count = round(LATENCY_RATE * LATENCY_SECONDS)
        cpu, redis_cpu, workers_cpu = time.process_time(), stack.redis_cpu(), stack.workers_cpu()
        begin = time.monotonic()
        for index in range(count):
            time.sleep(max(0.0, begin + index / LATENCY_RATE - time.monotonic()))
            now = time.time()
            sent[nap.apply_async(kwargs={"seconds": 0}).id] = now
        rate = (count - 1) / (time.monotonic() - begin)
        done = wait_for_results(stack, list(sent))
        wall = time.monotonic() - begin
        bench_cpu, redis_cpu = time.process_time() - cpu, stack.redis_cpu() - redis_cpu
        main_cpu, workers_cpu = (last - first for first, last in zip(workers_cpu, stack.workers_cpu(), strict=True))
    finally:
        stack.stop_workers()
    waits = [1000 * (meta["result"]["started"] - sent[task_id])
             for task_id, meta in done.items() if meta["status"] == "SUCCESS"]
    figures = {f"p{p}_ms": report.percentile(waits, p) for p in (50, 95, 99)} if waits else {}
    return {"tasks_per_s": rate, **figures, **outcome(list(sent), done),
            "redis_cpu": redis_cpu / wall, "bench_cpu": bench_cpu / wall,
            "main_cpu": main_cpu / wall, "workers_cpu": workers_cpu / wall}


def enqueue_rates(stack):
    add = stack.app.tasks["jobs.tasks.add"]

    def one_at_a_time():
        for _ in range(TASKS):
            add.apply_async((1, 2))

    def one_producer():
        with stack.app.producer_or_acquire() as producer:
            for _ in range(TASKS):
                add.apply_async((1, 2), producer=producer)

    rows = []
    for workload, loop in [("enqueue, apply_async one at a time", one_at_a_time),
                           ("enqueue, one producer in a loop", one_producer)]:
        # Warm up: the client's connections are open before the clock starts.
        publish(stack, add.name, {"x": 1, "y": 2}, 10)
        stack.purge()
        begin = time.perf_counter()
        loop()
        seconds = time.perf_counter() - begin
        queued = stack.broker.llen(stack.queue)
        rows.append({"configuration": "client", "workload": workload, "tasks_per_s": TASKS / seconds,
                     "seconds": round(seconds, 2), "succeeded": queued, "lost": TASKS - queued})
        log(f"  {workload}: {TASKS / seconds:.0f}/s")
    return rows


def celery_message(stack):
    """One real message body of the no-op task, as it sits in the queue."""
    stack.purge()
    stack.tasks.add.apply_async((1, 2))
    (body,) = stack.broker.lrange(stack.queue, 0, 0)
    return body


def broker_ceiling(stack):
    payload = stack.workdir / "payload.json"
    payload.write_bytes(celery_message(stack))
    stack.purge()
    env = dict(stack.env, BENCH_BROKER_URL=stack.app_env["CELERY_BROKER_URL"])
    script = Path(__file__).with_name("raw_broker.py")

    def side(name):
        argv = [str(processes.APP_PYTHON), str(script), name, "bench.raw", str(BROKER_MESSAGES), str(payload)]
        return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True)

    sides = []
    try:
        sides.append(side("consume"))
        time.sleep(1)  # the consumer is blocked in BRPOP before the first push
        sides.append(side("produce"))
        consumed, produced = (json.loads(p.communicate(timeout=600)[0]) for p in sides)
    finally:
        for process in sides:
            processes.stop(process, 5)
    stack.purge()
    span = consumed["last"] - consumed["first"] if consumed["count"] > 1 else 0
    return [
        {"configuration": "broker ceiling", "workload": "raw BRPOP, 1 consumer",
         "tasks_per_s": (consumed["count"] - 1) / span if span else None, "seconds": round(span, 2),
         "succeeded": consumed["count"], "lost": BROKER_MESSAGES - consumed["count"]},
        {"configuration": "broker ceiling", "workload": "raw LPUSH, 1 producer",
         "tasks_per_s": produced["count"] / (produced["last"] - produced["first"]),
         "seconds": round(produced["last"] - produced["first"], 2), "succeeded": produced["count"]},
    ]


# --- The run -----------------------------------------------------------------

def commit():
    """The checkout's commit, marked when the work tree differs from it."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return (git("rev-parse", "--short", "HEAD") or "unknown") + (" (modified)" if git("status", "--porcelain") else "")


def machine():
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((line.partition(":")[2].strip() for line in cpuinfo if line.startswith("model name")), "unknown")
    server = subprocess.run([processes.REDIS_SERVER, "--version"], capture_output=True, text=True).stdout
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "celery": celery.__version__,
        "kombu": kombu.__version__,
        "redis-py": redis.__version__,
        "redis-server": server.split("v=")[1].split()[0] if "v=" in server else server.strip(),
        "load average": " ".join(f"{load:.2f}" for load in os.getloadavg()),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def median_row(runs):
    """The run with the median rate, with every run's rate and the counts of all runs."""
    ordered = sorted(runs, key=lambda run: run["tasks_per_s"] or 0)
    row = dict(ordered[(len(ordered) - 1) // 2])
    row["runs"] = [run["tasks_per_s"] for run in runs]
    for count in ("succeeded", "failed", "lost"):
        row[count] = sum(run[count] for run in runs)
    return row


def measured_drain(stack, configuration, layout, workload, environment=None):
    log(f"{configuration}: {workload} of {TASKS} tasks")
    row = drain(stack, configuration, layout, workload, environment)
    log(f"  {row['tasks_per_s'] or 0:.1f} tasks/s, {row['lost']} lost, {row['failed']} failed, "
        f"redis cpu {row.get('redis_cpu', 0):.0%}, bench cpu {row.get('bench_cpu', 0):.0%}, "
        f"workers cpu {row.get('workers_cpu', 0):.0%} (main processes {row.get('main_cpu', 0):.0%})")
    return row


def measure(stack, configurations, factors, io_pools):
    """configurations: {name: layout}, every workload; factors: {name: (layout,
    environment)}, the no-op drain only; io_pools: {name: layout}, the 50 ms
    drain only."""
    results = []
    log("enqueue rate from one client")
    results += enqueue_rates(stack)
    log(f"broker ceiling: raw LPUSH/BRPOP of {BROKER_MESSAGES} messages")
    results += broker_ceiling(stack)
    noop = next(iter(DRAINS))
    every = {**{name: (layout, {}) for name, layout in configurations.items()}, **factors}
    runs = {name: [] for name in every}
    for repeat in range(REPEAT):
        log(f"no-op drains, round {repeat + 1} of {REPEAT}")
        for configuration, (layout, environment) in every.items():
            runs[configuration].append(measured_drain(stack, configuration, layout, noop, environment))
    for configuration, layout in configurations.items():
        results.append({"configuration": configuration, "workload": noop, **median_row(runs[configuration])})
        for workload in list(DRAINS)[1:]:
            row = measured_drain(stack, configuration, layout, workload)
            results.append({"configuration": configuration, "workload": workload, **row})
        log(f"{configuration}: {LATENCY_WORKLOAD}")
        row = latency(stack, configuration, layout)
        log(f"  p50 {row.get('p50_ms', 0):.1f} ms, p99 {row.get('p99_ms', 0):.1f} ms")
        results.append({"configuration": configuration, "workload": LATENCY_WORKLOAD, **row})
    results += [{"configuration": name, "workload": noop, **median_row(runs[name])} for name in factors]
    for configuration, layout in io_pools.items():
        for workload in list(DRAINS)[1:]:
            results.append({"configuration": configuration, "workload": workload,
                            **measured_drain(stack, configuration, layout, workload)})
    return results


def drain_rate(results, configuration, workload):
    if configuration == "broker ceiling":
        workload = "raw BRPOP, 1 consumer"
    found = [r["tasks_per_s"] for r in results if r["configuration"] == configuration and r["workload"] == workload]
    return found[0] if found else None


def add_ratios(results):
    """÷ stock and ÷ broker on every drain row; the RATIOS, by workload."""
    for row in results:
        if row["workload"] in DRAINS and row["tasks_per_s"]:
            for key, other in [("vs_stock", "stock"), ("vs_broker", "broker ceiling")]:
                base = drain_rate(results, other, row["workload"])
                row[key] = row["tasks_per_s"] / base if base else None
    ratios = {}
    for workload in DRAINS:
        ratios[workload] = {}
        for top, bottom in RATIOS:
            a, b = drain_rate(results, top, workload), drain_rate(results, bottom, workload)
            ratios[workload][f"{top} / {bottom}"] = a / b if a and b else None
    return ratios


def main():
    if TASKS < 2:
        sys.exit("BENCH_TASKS must be at least 2")
    # Ctrl-C (even when started in the background, where SIGINT is ignored)
    # and SIGTERM both unwind through the `finally` that stops every process.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    begin = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-task-path-") as workdir:
        stack = Stack(workdir)
        configurations = {"bundle-default": [stack.default_pool], **LAYOUTS}
        factors = factor_configurations(stack.default_pool)
        io_pools = io_configurations(stack.default_pool)
        try:
            stack.start()
            about = machine()
            redis_settings = stack.redis_settings()
            results = measure(stack, configurations, factors, io_pools)
        except (KeyboardInterrupt, SystemExit):
            log("interrupted: stopping the workers and redis-server")
            raise
        finally:
            stack.stop()
    ratios = add_ratios(results)
    document = {
        "machine": about,
        "settings": {"tasks": TASKS, "repeat": REPEAT, "broker_messages": BROKER_MESSAGES, "latency_rate": LATENCY_RATE,
                     "latency_seconds": LATENCY_SECONDS, "redis_port": REDIS_PORT, "redis": redis_settings,
                     "seconds": round(time.monotonic() - begin), "commit": commit()},
        "configurations": {name: stack.commands(layout) for name, layout in configurations.items()},
        "factors": {name: {"workers": stack.commands(layout), "environment": environment}
                    for name, (layout, environment) in factors.items()},
        "io_pools": {name: stack.commands(layout) for name, layout in io_pools.items()},
        "workloads": {"drain": list(DRAINS), "latency": LATENCY_WORKLOAD},
        "results": results,
        "ratios": ratios,
    }
    report.write_json(OUTPUT / "task-path.json", document)
    write_report(document)


def write_report(document):
    """The chart, the table on stdout and in docs/BENCHMARKS.md, from a run's document."""
    report.chart(OUTPUT / "task-path.png", document)
    settings = document["settings"]
    lines = [report.machine_lines(document["machine"]),
             f"{'redis':>14}: " + ", ".join(f"{key} {value}" for key, value in settings["redis"].items()), ""]
    for name, layout in document["configurations"].items():
        lines += [f"{name}: celery {' '.join(argv)}" for argv in layout]
    for name, factor in document["factors"].items():
        environment = " ".join(f"{key}={value}" for key, value in factor["environment"].items())
        lines += [f"{name}: {environment + ' ' if environment else ''}celery {' '.join(argv)}"
                  for argv in factor["workers"]]
    for name, layout in document.get("io_pools", {}).items():
        lines += [f"{name}: celery {' '.join(argv)}" for argv in layout]
    table, ratios = report.table(document["results"]), report.ratio_lines(document["ratios"])
    print("\n".join(lines), table, ratios, sep="\n\n")
    summary = (f"{len(document['results'])} measurements (N = {settings['tasks']} per drain, no-op drains "
               f"{settings['repeat']} times) in {settings['seconds']} s at {settings['commit']}")
    report.replace_between_markers(ROOT / "docs" / "BENCHMARKS.md", "bench-table", "\n".join([
        f"Written by `make bench`: {summary}.", "", "```", *lines, "```", "", table, "", "```", ratios, "```"]))
    print(f"\n{summary}; wrote {OUTPUT / 'task-path.json'}, {OUTPUT / 'task-path.png'} and the table in "
          "docs/BENCHMARKS.md")


if __name__ == "__main__":
    try:
        if sys.argv[1:] == ["--report"]:
            # Chart and tables again from the stored run (docs/bench/task-path.json).
            write_report(json.loads((OUTPUT / "task-path.json").read_text()))
        else:
            main()
    except KeyboardInterrupt:
        sys.exit(128 + signal.SIGINT)
