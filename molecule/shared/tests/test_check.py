"""playbooks/check.yml, the operator's "is the stack working?" (also the
sandbox's proof): it passes on the deployed stack, and a pool that does not
answer fails it by name, with the pool's journal lines."""

import re
import time

import pytest
from conftest import APP, backend, expected_pools, hosts, nodename, recorded_pools, run_playbooks

pytestmark = pytest.mark.skipif(not hosts("celery_workers"), reason="this scenario has no workers")


def as_deployed():
    """The side effect changed the pools after Molecule wrote its inventory
    (it rewrites it on every action): give check.yml the pools the worker
    hosts run, recorded on them."""
    pools = recorded_pools(hosts("celery_workers")[0])
    return {} if pools is None else {"celery_worker_pools": pools}


def test_check_passes_on_the_deployed_stack():
    output = run_playbooks("playbooks/check.yml", extra_vars=as_deployed()).stdout
    checked = {name for group in ("web", "celery_workers", "celery_beat", "flower") for name in hosts(group)}
    recaps = dict(re.findall(r"^(\S+)\s+: (ok=.*)$", output, re.MULTILINE))
    assert set(recaps) == checked, recaps
    assert all("failed=0" in recap for recap in recaps.values()), recaps
    if hosts("celery_beat"):
        assert "beat last sent " in output, output[-3000:]


def test_check_names_a_pool_that_does_not_answer():
    worker = hosts("celery_workers")[0]
    pool = expected_pools(worker)[-1]["name"]
    host = backend(worker)
    host.run_expect([0], f"systemctl stop celery-worker@{pool}")
    try:
        result = run_playbooks("playbooks/check.yml", extra_vars=dict(as_deployed(), __celery_worker_check_retries=0),
                               succeed=False)
    finally:
        host.run_expect([0], f"systemctl start celery-worker@{pool}")
        node = f"{pool}@{nodename(worker)}"
        deadline = time.monotonic() + 60
        while node not in host.run(f"{APP}-celery inspect ping --timeout=5 --destination={node}").stdout:
            assert time.monotonic() < deadline, f"{node} did not come back"
            time.sleep(2)
    # Molecule's ansible.cfg prints failed results on stderr.
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"celery-worker@{pool}.service did not answer a ping. Last journal lines:" in output, output[-3000:]
    # The journal lines follow: systemd's own record of the stop among them.
    journal = output.split("Last journal lines:", 1)[1]
    assert f"Stopped celery-worker@{pool}.service" in journal, journal[:2000]
    # Every check ran: the failure is reported at the end, not at once.
    if hosts("celery_beat"):
        assert "beat last sent " in output
    for other in expected_pools(worker)[:-1]:
        assert f"celery-worker@{other['name']}.service did not answer" not in output
