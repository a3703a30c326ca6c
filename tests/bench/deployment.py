"""What the roles deploy on an all-in-one host, rendered from their own templates.

ansible-playbook (from .venv/) renders the Redis, app and worker templates
with each role's defaults and vars, for one host that is in the `redis` and
`celery_workers` groups, as an inventory would put it. Only the Redis port
and the app's state directory (where the sqlite database lives) are the
bench's own; everything else is what the roles would write on a host today.
"""

import json
import os
import shlex
import socket
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROLES = ROOT / "roles"
ANSIBLE_PLAYBOOK = ROOT / ".venv" / "bin" / "ansible-playbook"
# The pool the bundle-default configuration measures: no field set.
DEFAULT_POOL = {"name": "default", "queues": ["celery"]}
# Files rendered, from (role, template) to the name they get in the output directory.
TEMPLATES = {
    ("redis", "etc/redis/redis.conf.j2"): "redis.conf",
    ("redis", "etc/redis/users.acl.j2"): "users.acl",
    ("app", "etc/djangoapp/app.env.j2"): "app.env",
    ("celery_worker", "etc/systemd/system/celery-worker@.service.j2"): "celery-worker@.service",
}
POOL_TEMPLATE = ROLES / "celery_worker" / "templates" / "etc/systemd/system/celery-worker@.service.d/pool.conf.j2"


def render(outdir, redis_port, state_dir, secrets, pools=(DEFAULT_POOL,)):
    """Render the templates into outdir; return {name: text}, with each pool's
    settings as <pool>.pool.conf.

    secrets: redis_password, redis_celery_password and app_secret_key.
    """
    outdir = Path(outdir)
    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": str(ANSIBLE_PLAYBOOK.parent / "python"),
    }
    inventory = {"all": {"hosts": {"localhost": host},
                         "children": {"redis": {"hosts": {"localhost": None}},
                                      "celery_workers": {"hosts": {"localhost": None}}}}}
    # Extra vars, because the roles' defaults stand in as play vars_files here,
    # which outrank inventory variables.
    # __app_peer_addresses stands in for what the app role's getent of the
    # Redis and PostgreSQL hosts finds (tasks/network.yml): this host.
    variables = dict(secrets, app_state_dir=str(state_dir), redis_port=redis_port, celery_worker_pools=list(pools),
                     __app_peer_addresses=["127.0.0.1"])
    tasks = [{"name": f"Render {name}",
              "ansible.builtin.template": {"src": str(ROLES / role / "templates" / template),
                                           "dest": str(outdir / name), "mode": "0600"}}
             for (role, template), name in TEMPLATES.items()]
    tasks.append({"name": "Render each pool's settings",
                  "ansible.builtin.template": {"src": str(POOL_TEMPLATE),
                                               "dest": str(outdir / "{{ item.name }}.pool.conf"), "mode": "0600"},
                  "loop": "{{ __celery_worker_pools_effective }}"})
    vars_files = [str(ROLES / role / kind / "main.yml")
                  for role in ("redis", "app", "celery_worker") for kind in ("defaults", "vars")]
    playbook = [{"hosts": "localhost", "gather_facts": False, "vars_files": vars_files, "tasks": tasks}]
    files = {"hosts.json": inventory, "render.json": playbook, "extra.json": variables}
    for name, content in files.items():
        path = outdir / name
        path.write_text(json.dumps(content))
        path.chmod(0o600)
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_DEPRECATION_WARNINGS="0")
    result = subprocess.run([str(ANSIBLE_PLAYBOOK), "-i", str(outdir / "hosts.json"), str(outdir / "render.json"),
                             "-e", f"@{outdir / 'extra.json'}"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise RuntimeError(f"rendering the roles' templates failed:\n{result.stdout}{result.stderr}")
    return {path.name: path.read_text() for path in outdir.iterdir() if path.suffix != ".json"}


def env_file(text):
    """The variables of an EnvironmentFile whose values are single-quoted."""
    variables = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            variables[name] = value.removeprefix("'").removesuffix("'")
    return variables


def unit_setting(text, directive):
    """The value of the first `directive=` line of a unit file."""
    for line in text.splitlines():
        if line.startswith(f"{directive}="):
            return line.partition("=")[2]
    raise LookupError(f"no {directive}= line in the unit")


def pool_worker_args(pool_conf):
    """CELERY_WORKER_ARGS of a pool's drop-in, as argv words."""
    (assignment,) = shlex.split(unit_setting(pool_conf, "Environment"))
    name, _, value = assignment.partition("=")
    assert name == "CELERY_WORKER_ARGS", assignment
    # systemd splits an unbraced $VAR on whitespace.
    return value.split()


def unit_worker_command(unit, pool_conf, pool_name):
    """A pool's unit's ExecStart after the venv's python and the launcher, as
    (celery options, worker options): (['--app=config'],
    ['--hostname=default@host', '--queues=celery', ...])."""
    words = shlex.split(unit_setting(unit, "ExecStart"))
    start = words.index("worker")
    # words[:start] is the venv's python, the launcher and the celery options.
    celery_options = [word for word in words[:start] if word.startswith("-")]
    worker_options = []
    for word in words[start + 1:]:
        if word == "$CELERY_WORKER_ARGS":
            worker_options += pool_worker_args(pool_conf)
        else:
            worker_options.append(word.replace("%i", pool_name).replace("%H", socket.gethostname()))
    return celery_options, worker_options
