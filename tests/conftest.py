"""Helpers to run the bundle's playbooks on the controller, in check mode."""

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin"


def ansible(tool, *args, cwd=ROOT):
    """Run an ansible CLI tool from the project's venv; return the process."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_DEPRECATION_WARNINGS="0")
    return subprocess.run([str(BIN / tool), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def inventory(tmp_path):
    """Write a one-host inventory (local connection) in the given groups."""

    def write(groups, variables, hosts=("node1",)):
        """groups: group names every host joins, or {group: [hosts]}."""
        members = groups if isinstance(groups, dict) else {g: list(hosts) for g in groups}
        names = sorted({h for group_hosts in members.values() for h in group_hosts} | set(hosts))
        hosts = {"all": {"children": {g: {"hosts": {h: None for h in hs}} for g, hs in members.items()}}}
        local = {"ansible_connection": "local", "ansible_python_interpreter": str(BIN / "python")}
        hosts["all"]["hosts"] = {name: local for name in names}
        path = tmp_path / "hosts.yml"
        path.write_text(json.dumps(hosts))
        (tmp_path / "group_vars").mkdir(exist_ok=True)
        (tmp_path / "group_vars" / "all.yml").write_text(json.dumps(variables))
        return path

    return write


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()
