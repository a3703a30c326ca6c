"""The app follows the servers' own inventory: nothing is kept equal by hand."""

import json

import yaml
from conftest import BIN, ROOT, ansible


def playbook(out):
    """Resolve the app's addresses on web1, as its roles see them, into `out`."""
    values = ("{{ {'redis': [app_redis_host, app_redis_port | int],"
              " 'db': [app_db_host, app_db_port | int, app_db_name, app_db_user], 'hosts': app_hosts} | to_json }}")
    return [{
        "hosts": "web1", "gather_facts": False,
        "tasks": [
            {"ansible.builtin.include_role": {"name": "app", "tasks_from": "settings", "public": True}},
            {"ansible.builtin.copy": {"content": values, "dest": str(out), "mode": "0600"}},
        ],
    }]


def resolve(tmp_path, groups):
    local = {"ansible_connection": "local", "ansible_python_interpreter": str(BIN / "python")}
    inventory = {"all": {"children": {
        name: {"hosts": {host: local for host in group["hosts"]}, "vars": group.get("vars", {})}
        for name, group in groups.items()}}}
    (tmp_path / "hosts.json").write_text(json.dumps(inventory))
    (tmp_path / "resolve.yml").write_text(json.dumps(playbook(tmp_path / "values.json")))
    result = ansible("ansible-playbook", "-i", str(tmp_path / "hosts.json"),
                     "playbooks/topology.yml", str(tmp_path / "resolve.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads((tmp_path / "values.json").read_text())


def test_the_app_follows_the_servers_inventory(tmp_path):
    values = resolve(tmp_path, {
        "redis": {"hosts": ["redis1"], "vars": {"redis_port": 6380}},
        "postgresql": {"hosts": ["db1"], "vars": {"postgresql_port": 5433, "postgresql_app_db": "shop",
                                                 "postgresql_app_user": "shopper"}},
        "web": {"hosts": ["web1"]},
        "celery_workers": {"hosts": ["worker1"]},
    })
    assert values["redis"] == ["redis1", 6380]
    assert values["db"] == ["db1", 5433, "shop", "shopper"]
    assert sorted(values["hosts"]) == ["web1", "worker1"]


def test_redis_on_the_same_host_is_reached_on_loopback(tmp_path):
    values = resolve(tmp_path, {"redis": {"hosts": ["web1"]}, "web": {"hosts": ["web1"]}})
    assert values["redis"] == ["127.0.0.1", 6379]
    assert values["db"][0] == "127.0.0.1"


def test_the_removal_plays_take_the_hosts_that_left_a_group(tmp_path):
    """The plays of site.yml that remove units (a host left the group, or is
    retired), with their own host patterns: each takes exactly the app hosts
    outside its group and the retired hosts; playbooks/retired.yml takes the
    retired hosts only."""
    import yaml
    from conftest import ROOT

    removal = {}
    for name in ("workers", "web", "beat", "flower", "retired"):
        for play in yaml.safe_load((ROOT / "playbooks" / f"{name}.yml").read_text()):
            if play["name"].startswith(("No ", "Retired hosts")):
                removal[play["name"]] = play["hosts"]
    assert len(removal) == 5, removal
    local = {"ansible_connection": "local", "ansible_python_interpreter": str(BIN / "python")}
    inventory = {"all": {"children": {
        "web": {"hosts": {"web1": local}}, "celery_beat": {"hosts": {"web1": local}},
        "flower": {"hosts": {"web1": local}}, "celery_workers": {"hosts": {"worker1": local}},
        "redis": {"hosts": {"redis1": local}}, "retired": {"hosts": {"old1": local}}}}}
    (tmp_path / "hosts.json").write_text(json.dumps(inventory))
    plays = [{"name": name, "hosts": pattern, "gather_facts": False, "tasks": [
        {"ansible.builtin.lineinfile": {"path": str(tmp_path / "targets"), "create": True, "mode": "0600",
                                        "line": f"{name}={{{{ inventory_hostname }}}}"}, "throttle": 1}]}
             for name, pattern in removal.items()]
    (tmp_path / "removal.yml").write_text(json.dumps(plays))
    result = ansible("ansible-playbook", "-i", str(tmp_path / "hosts.json"),
                     "playbooks/topology.yml", str(tmp_path / "removal.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Could not match" not in result.stdout + result.stderr
    targets = {}
    for line in (tmp_path / "targets").read_text().splitlines():
        play, host = line.split("=")
        targets.setdefault(play, set()).add(host)
    assert targets == {
        "No worker pools outside the celery_workers group": {"web1", "old1"},
        "No gunicorn outside the web group": {"worker1", "old1"},
        "No beat outside the celery_beat group": {"worker1", "old1"},
        "No Flower outside the flower group": {"worker1", "old1"},
        "Retired hosts (the app's settings and secrets)": {"old1"},
    }


def run_after_a_datastore_failure(inventory, tmp_path, failing, limit=None):
    """playbooks/datastores.yml's guard play (its second), between a play in
    which `failing` fails, as a role would, and an app play: the output and
    whether the app play ran."""
    guard = yaml.safe_load((ROOT / "playbooks" / "datastores.yml").read_text())[1]
    plays = [
        {"hosts": "redis:postgresql", "gather_facts": False, "strategy": "ansible.builtin.free",
         "tasks": [{"ansible.builtin.fail": {"msg": "the role failed"}, "when": f"inventory_hostname == {failing!r}"}]},
        guard,
        {"hosts": "web", "gather_facts": False, "tasks": [{"ansible.builtin.debug": {"msg": "the app play ran"}}]},
    ]
    hosts_file = inventory({"redis": ["redis1"], "postgresql": ["db1"], "web": ["web1"]}, {}, hosts=())
    (tmp_path / "guard.yml").write_text(json.dumps(plays))
    result = ansible("ansible-playbook", "-i", str(hosts_file), str(tmp_path / "guard.yml"),
                     *(["--limit", limit] if limit else []))
    return result, "the app play ran" in result.stdout


def test_a_failed_datastore_host_stops_the_run(inventory, tmp_path):
    """One play converges Redis and PostgreSQL side by side (strategy free),
    so a failed Redis host no longer empties its play: the guard stops the
    run before any app play, naming the host."""
    result, app_ran = run_after_a_datastore_failure(inventory, tmp_path, "redis1")
    assert result.returncode != 0 and not app_ran, result.stdout
    assert "redis1 did not converge" in " ".join(result.stdout.split()), result.stdout


def test_the_guard_lets_a_converged_or_limited_run_go_on(inventory, tmp_path):
    result, app_ran = run_after_a_datastore_failure(inventory, tmp_path, "nobody")
    assert result.returncode == 0 and app_ran, result.stdout
    # A host outside --limit did not fail: it was not in the run.
    result, app_ran = run_after_a_datastore_failure(inventory, tmp_path, "redis1", limit="db1,web1")
    assert result.returncode == 0 and app_ran, result.stdout
