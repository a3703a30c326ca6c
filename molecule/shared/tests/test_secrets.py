"""No secret shows where it should not, on any host: in a process's command
line, in the journal, in a file an unrelated user can read under /etc, /opt,
/srv or /var, nor in the playbook's own output at -vv: the --check --diff
preview on the new hosts and, on an all-in-one host, the same on the
converged host, which must also report no change."""

import json
from pathlib import Path

import pytest
from conftest import INVENTORY, SUMMARY, hosts, run_playbooks, secrets_seen_on, variables


def secrets(name):
    """The inventory's secrets, by variable name (a TLS key as its PEM text)."""
    found = {key: value.strip() for key, value in variables(name).items()
             if key.endswith(("_password", "_secret_key", "_api_token", "_tls_key")) and isinstance(value, str)
             and len(value) >= 8}
    for number, login in enumerate(variables(name).get("flower_basic_auth", [])):
        found[f"flower_basic_auth[{number}].password"] = login["password"]
    return found


def secrets_in(output, names, title):
    """Which inventory secrets of the hosts `names` a playbook's `output`
    holds, reported under `title`."""
    found = {key for name in names for key, value in secrets(name).items() if value in output}
    SUMMARY.append((title, f"{len(output.splitlines())} lines, found: {sorted(found)}"))
    return found


def test_the_preview_on_the_new_hosts_printed_no_secret_at_verbosity_2():
    # prepare.yml's `site.yml --check --diff -vv` on the never-converged
    # hosts, where every new file's diff shows; it keeps the output next to
    # the scenario's inventory.
    output = (Path(INVENTORY).parents[1] / "preview.log").read_text()
    found = secrets_in(output, hosts("all"), "secrets in the preview (site.yml --check --diff -vv on new hosts)")
    assert found == set()


@pytest.mark.last
def test_check_mode_on_the_converged_host_changes_nothing_and_prints_no_secret_at_verbosity_2():
    # An operator's `--check --diff` after the suite must report no change:
    # a task that always reports one hides real changes in the preview.
    # (Molecule's idempotence step is the real second run.)
    if len(hosts("all")) > 1:
        pytest.skip("the all-in-one scenarios run this (one host: a quick run)")
    output = run_playbooks("site.yml", options=["--check", "--diff", "-vv"]).stdout
    recap = [line.split() for line in output.splitlines() if " ok=" in line and " changed=" in line]
    assert recap, output[-3000:]
    changed = [fields[0] for fields in recap if "changed=0" not in fields or "failed=0" not in fields]
    found = secrets_in(output, hosts("all"), "secrets in site.yml --check --diff -vv on the converged host")
    tasks = [block.split("]", 1)[0] for block in output.split("TASK [")[1:] if "\nchanged: [" in block]
    assert changed == [], f"tasks that report a change on the converged host: {tasks}"
    assert found == set()


@pytest.mark.last
@pytest.mark.parametrize("name", hosts("all"))
def test_no_secret_in_processes_journal_or_readable_files(name):
    found = secrets_seen_on(name, secrets(name))
    SUMMARY.append((f"secrets sweep on {name}", json.dumps(found)))
    assert found == {"ps": [], "journal": [], "files": {}}
