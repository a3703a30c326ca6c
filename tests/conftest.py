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

    def write(groups, variables):
        hosts = {"all": {"children": {g: {"hosts": {"node1": None}} for g in groups}}}
        hosts["all"]["hosts"] = {"node1": {"ansible_connection": "local",
                                           "ansible_python_interpreter": str(BIN / "python")}}
        path = tmp_path / "hosts.yml"
        path.write_text(json.dumps(hosts))
        (tmp_path / "group_vars").mkdir(exist_ok=True)
        (tmp_path / "group_vars" / "all.yml").write_text(json.dumps(variables))
        return path

    return write


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()
