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


# Valid Redis secrets; each test adds or breaks one input.
GOOD = {
    "redis_password": "a-long-random-admin-secret-123",
    "redis_celery_password": "a-long-random-celery-secret-456",
}
APP = dict(GOOD, app_secret_key="k" * 40)


def run_site(inventory_path):
    # --check as a second safety net: even a broken preflight changes nothing.
    return ansible("ansible-playbook", "site.yml", "-i", str(inventory_path), "--check")


def assert_stopped_in_preflight(result, *expected):
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    for text in expected:
        assert text in output, output
    # No task of the Redis play ran.
    assert "Install Redis" not in output, output


def pytest_terminal_summary(terminalreporter):
    """How many of the malformed inventories (test_bad_inventories.py) were
    refused: counted from the reports, so it holds with pytest -n too."""
    table = "test_bad_inventory_is_refused_before_any_host_changes["
    outcomes = {name: [r for r in terminalreporter.stats.get(name, []) if table in getattr(r, "nodeid", "")]
                for name in ("passed", "failed")}
    if outcomes["passed"] or outcomes["failed"]:
        terminalreporter.write_sep("-", "bad inventories")
        terminalreporter.write_line(
            f"{len(outcomes['passed'])} of {len(outcomes['passed']) + len(outcomes['failed'])} malformed "
            "inventories refused by the preflight, no host changed")
