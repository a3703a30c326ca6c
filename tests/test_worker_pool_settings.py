"""The worker arguments a pool's drop-in (pool.conf.j2) renders, through the
bench's renderer (tests/bench/deployment.py), which the bench measures too."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "bench"))
import deployment  # noqa: E402

POOLS = [
    {"name": "default", "queues": ["celery"]},
    {"name": "recycled", "queues": ["celery"], "max_tasks_per_child": 1000},
    {"name": "reports", "queues": ["reports", "pdf"], "concurrency": 1, "max_tasks_per_child": 50,
     "max_memory_per_child": 512000, "soft_time_limit": 100, "time_limit": 120, "extra_args": ["-Ofair"]},
]


def test_each_pool_renders_its_worker_arguments(tmp_path):
    secrets = {"redis_password": "a" * 32, "redis_celery_password": "b" * 32, "app_secret_key": "k" * 40}
    files = deployment.render(tmp_path, 6379, tmp_path, secrets, pools=POOLS)
    args = {pool["name"]: deployment.pool_worker_args(files[f"{pool['name']}.pool.conf"]) for pool in POOLS}
    # max_tasks_per_child 0 (the default) renders no option: Celery refuses 0 (the worker dies at start).
    assert args["default"] == ["--queues=celery", "--pool=prefork", "--concurrency=2", "--prefetch-multiplier=1",
                               "--loglevel=INFO"]
    assert args["recycled"] == ["--queues=celery", "--pool=prefork", "--concurrency=2", "--prefetch-multiplier=1",
                                "--max-tasks-per-child=1000", "--loglevel=INFO"]
    assert args["reports"] == ["--queues=reports,pdf", "--pool=prefork", "--concurrency=1",
                               "--prefetch-multiplier=1", "--max-tasks-per-child=50",
                               "--max-memory-per-child=512000", "--soft-time-limit=100", "--time-limit=120",
                               "--loglevel=INFO", "-Ofair"]
    # systemd's stop timeout: the pool's hard time limit, else the app's (360), plus the 30 s margin.
    stops = {name: deployment.unit_setting(files[f"{name}.pool.conf"], "TimeoutStopSec") for name in args}
    assert stops == {"default": "390", "recycled": "390", "reports": "150"}
