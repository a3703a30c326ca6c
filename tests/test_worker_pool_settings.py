"""The worker arguments a pool's drop-in (pool.conf.j2) renders, through the
bench's renderer (tests/bench/deployment.py), which the bench measures too;
and when the role installs its own gevent."""

import json
import sys
from pathlib import Path

from conftest import BIN, ROOT, ansible

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


GEVENT_CASES = [
    ({}, False),
    ({"app_extra_pip_packages": ["Gevent==25.5.1"]}, True),
    ({"app_extra_pip_packages": ["gevent-websocket==0.10.1", "gevent_x==1"]}, False),
    # What the app role's inspect_project.py read on the host.
    ({"__app_project_output": {"stdout": json.dumps({"packages": ["celery", "gevent"]})}}, True),
    ({"__app_project_output": {"stdout": json.dumps({"packages": ["celery", "greenlet"]})}}, False),
    # Skipped (check mode on a new host): the role installs its own pin.
    ({"__app_project_output": {"skipped": True}}, False),
]


def test_the_role_installs_its_gevent_only_when_the_project_has_none(tmp_path):
    tasks = [{"ansible.builtin.copy": {"content": "{{ __celery_worker_gevent_from_project }}",
                                       "dest": str(tmp_path / f"case{index}")}, "vars": variables}
             for index, (variables, _) in enumerate(GEVENT_CASES)]
    playbook = tmp_path / "gevent.yml"
    playbook.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": tasks,
                                     "vars_files": [str(ROOT / "roles" / role / "vars" / "main.yml")
                                                    for role in ("app", "celery_worker")]}]))
    run = ansible("ansible-playbook", "-i", "localhost,", "-c", "local",
                  "-e", f"ansible_python_interpreter={BIN / 'python'}", str(playbook))
    assert run.returncode == 0, run.stdout + run.stderr
    found = [(tmp_path / f"case{index}").read_text() for index in range(len(GEVENT_CASES))]
    assert found == [str(expected) for _, expected in GEVENT_CASES]
