"""The app's units run sandboxed: systemd rates each one's exposure low, and
the workers' network filter refuses every address but loopback, Redis,
PostgreSQL and the DNS servers."""

import json
import re

import pytest
from conftest import REDIS_PORT, SUMMARY, backend, hosts

APP_GROUPS = ("web", "celery_workers", "celery_beat", "flower")
APP_UNITS = ("gunicorn.service", "celery-worker@*.service", "celery-beat.service", "flower.service")
# systemd-analyze's scale: 0 (sandboxed) to 10 (exposed); up to 2 is "OK".
MAX_EXPOSURE = 2.0

# Run as root on a worker host: try a connection from outside a unit, then
# from inside it (this process joins the unit's cgroup, where systemd's
# IPAddressDeny= filter applies to every socket created afterwards).
CONNECT = """
import json, os, socket, sys
pid, outsider, redis_host, redis_port = sys.argv[1:5]
def attempt(address):
    try:
        socket.create_connection(address, timeout=3).close()
        return "connected"
    except ConnectionRefusedError:
        return "refused"
    except OSError as error:
        return type(error).__name__
outside = attempt((outsider, 9))
# The unit's cgroup in the unified (v2) hierarchy, where the filter is
# attached: mounted at /sys/fs/cgroup, or under it on hybrid hosts.
with open(f"/proc/{pid}/cgroup") as lines:
    cgroup = next(line.split("::", 1)[1].strip() for line in lines if line.startswith("0::"))
root = "/sys/fs/cgroup/unified" if os.path.isdir("/sys/fs/cgroup/unified") else "/sys/fs/cgroup"
with open(f"{root}{cgroup}/cgroup.procs", "w") as procs:
    procs.write(str(os.getpid()))
print(json.dumps({"outside": outside, "inside": attempt((outsider, 9)),
                  "redis": attempt((redis_host, int(redis_port)))}))
"""


def app_units(host):
    listed = host.check_output("systemctl list-units --plain --no-legend --state=running " + " ".join(APP_UNITS))
    return [line.split()[0] for line in listed.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def exposure():
    scores = {}
    for name in sorted({host for group in APP_GROUPS for host in hosts(group)}):
        host = backend(name)
        for unit in app_units(host):
            rating = host.check_output(f"systemd-analyze security --no-pager {unit} | tail -n 1")
            scores[name, unit] = float(re.search(r": ([0-9.]+) ", rating).group(1))
    SUMMARY.append(("systemd-analyze security: exposure of each app unit (0 best, 10 worst)",
                    "\n".join(f"{host:10} {unit:32} {score}" for (host, unit), score in sorted(scores.items()))))
    return scores


def test_every_app_unit_is_rated(exposure):
    units = {re.sub(r"@.*", "@", unit) for _, unit in exposure}
    assert units == {"gunicorn.service", "celery-worker@", "celery-beat.service", "flower.service"}


def test_every_app_unit_exposure_is_at_most_2(exposure):
    assert {key: score for key, score in exposure.items() if score > MAX_EXPOSURE} == {}


@pytest.mark.parametrize("name", hosts("celery_workers"))
def test_workers_reach_redis_and_nothing_outside_the_allow_list(name):
    host = backend(name)
    unit = next(unit for unit in app_units(host) if unit.startswith("celery-worker@"))
    pid = host.check_output(f"systemctl show --property MainPID --value {unit}")
    # The host's own network address: no listener on port 9, and not in the
    # allow-list (loopback is).
    outsider = host.check_output("hostname -I").split()[0]
    redis = hosts("redis")[0]
    redis_host = "127.0.0.1" if redis == name else redis
    result = host.run("python3 -c %s %s %s %s %s", CONNECT, pid, outsider, redis_host, str(REDIS_PORT))
    assert result.rc == 0, result.stderr
    outcome = json.loads(result.stdout)
    # Outside the unit the port answers "refused"; inside, the filter drops
    # the packets before anything can answer (or refuses to send them).
    assert (outcome["outside"], outcome["redis"]) == ("refused", "connected")
    assert outcome["inside"] in ("TimeoutError", "PermissionError")
