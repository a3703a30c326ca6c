"""The checks the app role runs on a host against a real project: what
decides its virtualenv (roles/app/files/inspect_project.py) and its
effective Celery settings (lib/celery_config_check.py)."""

import importlib.util
import json
import subprocess
import sys

import pytest
import yaml
from conftest import ROOT, ansible
from packaging.markers import default_environment

INSPECT = ROOT / "roles" / "app" / "files" / "inspect_project.py"
_spec = importlib.util.spec_from_file_location(
    "celery_config_check", ROOT / "roles" / "app" / "files" / "opt" / "djangoapp" / "lib" / "celery_config_check.py")
check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check)


def inspect(code, mode="auto", python=sys.executable):
    result = subprocess.run([sys.executable, INSPECT, python, str(code / "venv"), str(code), mode, "requirements.txt"],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def test_a_change_in_an_included_requirements_file_changes_the_inputs(tmp_path):
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements.txt").write_text("-r requirements/base.txt\n--constraint=constraints.txt\n")
    (tmp_path / "requirements" / "base.txt").write_text("-r common.txt\ncelery==5.7.0\n")
    (tmp_path / "requirements" / "common.txt").write_text("six==1.17.0\n")
    (tmp_path / "constraints.txt").write_text("")
    before = inspect(tmp_path)
    assert (before["mode"], before["missing"]) == ("requirements", [])
    assert len(before["inputs"]) == 4, before["inputs"]
    (tmp_path / "requirements" / "common.txt").write_text("six==1.16.0\n")
    assert inspect(tmp_path)["inputs"] != before["inputs"]


def test_a_uv_lock_is_preferred_and_decided_by_lock_and_pyproject(tmp_path):
    (tmp_path / "requirements.txt").write_text("six==1.17.0\n")
    (tmp_path / "uv.lock").write_text("version = 1\n")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nrequires-python = ">=3.8"\n')
    found = inspect(tmp_path)
    assert found["mode"] == "uv"
    assert sorted(found["inputs"]) == sorted(str(tmp_path / name) for name in ("uv.lock", "pyproject.toml"))
    assert inspect(tmp_path, mode="requirements")["mode"] == "requirements"


def test_the_packages_a_lock_installs_leave_out_dev_groups_and_follow_extras(tmp_path):
    """The catalog fixture's uv.lock: `celery[redis]` brings kombu's `redis`
    extra (packaging), which kombu without the extra does not; pytest is in
    the dev group only. The names `uv export --no-dev` prints, less those
    whose markers are false here (gevent's cffi is for Windows)."""
    catalog = ROOT / "tests" / "fixtures" / "catalog"
    packages = inspect(catalog)["packages"]
    assert {"gevent", "greenlet", "kombu", "packaging", "psycopg-c", "zope-interface"} <= set(packages), packages
    # pytest and what only it needs; the project itself (--no-install-project).
    assert not {"pytest", "iniconfig", "pluggy", "catalog"} & set(packages), packages
    assert "cffi" not in packages, packages


def test_the_packages_requirements_files_name(tmp_path):
    (tmp_path / "requirements.txt").write_text(
        "-r base.txt\n--index-url https://example.org/simple\nDjango==5.2.19  # web\n"
        "zope.interface==8.7 ; python_version >= '3.11'\n./vendor/thing\n-e .\n")
    (tmp_path / "base.txt").write_text("# gevent comes from here\ngevent[recommended]==26.8.0\n")
    assert inspect(tmp_path)["packages"] == ["django", "gevent", "zope-interface"]
    # pip-compile --generate-hashes writes each requirement over several lines.
    (tmp_path / "base.txt").write_text("gevent==26.8.0 \\\n    --hash=sha256:00ff \\\n    --hash=sha256:11ee\n"
                                       "    # via -r requirements.in\ngreenlet==3.5.6 --hash=sha256:22dd\n")
    assert inspect(tmp_path)["packages"] == ["django", "gevent", "greenlet", "zope-interface"]
    # A constraint file installs nothing; a comment ending in a backslash continues nothing.
    (tmp_path / "base.txt").write_text("-c constraints.txt\n# see below \\\ngreenlet==3.5.6\n")
    (tmp_path / "constraints.txt").write_text("gevent==26.8.0\n")
    assert inspect(tmp_path)["packages"] == ["django", "greenlet", "zope-interface"]


def test_requirements_whose_markers_are_false_for_the_apps_python_are_left_out(tmp_path):
    """Markers are evaluated for the app's interpreter (app_python), which
    may be another Python than the one that runs the script."""
    (tmp_path / "requirements.txt").write_text(
        "django==5.2.19\ngevent==26.8.0 ; python_version < '3.0'\ngreenlet==3.5.6 ; os_name == 'posix'\n"
        "zope.interface==8.7 ; python_version >= '3.11'\n")
    assert inspect(tmp_path)["packages"] == ["django", "greenlet", "zope-interface"]
    older = tmp_path / "python3.9"
    older.write_text("#!/bin/sh\necho '{\"python_version\": \"3.9\", \"python_full_version\": \"3.9.2\"}'\n")
    older.chmod(0o755)
    found = inspect(tmp_path, python=str(older))
    assert (found["python"], found["packages"]) == ("3.9.2", ["django", "greenlet"])


def test_the_marker_environment_is_packagings():
    """The app interpreter's environment, printed without packaging, has every
    key packaging would use, with the same values (a key missing or misspelt
    would silently take the script's interpreter's value)."""
    spec = importlib.util.spec_from_file_location("inspect_project", INSPECT)
    inspect_project = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(inspect_project)
    assert inspect_project.environment_of(sys.executable) == dict(default_environment())


def test_a_locks_dependencies_follow_only_the_markers_that_apply(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "shop"\nversion = "1"\n')
    (tmp_path / "uv.lock").write_text(
        'version = 1\n'
        '[[package]]\nname = "shop"\nversion = "1"\nsource = { editable = "." }\n'
        'dependencies = [\n  { name = "gevent", marker = "python_version < \'3.0\'" },\n'
        '  { name = "celery", marker = "sys_platform == \'linux\'" },\n]\n'
        '[[package]]\nname = "gevent"\nversion = "26.8.0"\nsource = { registry = "https://pypi.org/simple" }\n'
        'dependencies = [{ name = "greenlet" }]\n'
        '[[package]]\nname = "greenlet"\nversion = "3.5.6"\nsource = { registry = "https://pypi.org/simple" }\n'
        '[[package]]\nname = "celery"\nversion = "5.7.0"\nsource = { registry = "https://pypi.org/simple" }\n'
        'dependencies = [{ name = "colorama", marker = "sys_platform == \'win32\'" }, { name = "kombu" }]\n'
        '[[package]]\nname = "kombu"\nversion = "5.7.0"\nsource = { registry = "https://pypi.org/simple" }\n'
        '[[package]]\nname = "colorama"\nversion = "0.4.6"\nsource = { registry = "https://pypi.org/simple" }\n')
    assert inspect(tmp_path)["packages"] == ["celery", "kombu"]


def test_a_missing_lock_is_reported(tmp_path):
    assert inspect(tmp_path, mode="uv")["missing"] == [str(tmp_path / "uv.lock"), str(tmp_path / "pyproject.toml")]


@pytest.mark.parametrize(("requires", "ok"), [(">=3.8", True), (">=3.99", False), ("<3", False), (None, True)])
def test_requires_python_is_checked_against_the_interpreter(tmp_path, requires, ok):
    line = f'requires-python = "{requires}"\n' if requires else ""
    (tmp_path / "pyproject.toml").write_text(f'[project]\nname = "x"\n{line}')
    found = inspect(tmp_path)
    assert (found["python_ok"], found["requires"]) == (ok, requires)
    assert found["python"] == ".".join(map(str, sys.version_info[:3]))


def test_an_interpreter_that_does_not_run_is_reported(tmp_path):
    found = inspect(tmp_path, python="/nonexistent/python3")
    assert (found["python"], found["python_ok"]) == ("", False)


GOOD = {
    "default_queue": "celery", "routes": [["books.*", "reports"]], "opaque_routes": False,
    "time_limit": 120, "soft_time_limit": 100, "visibility_timeout": 3600,
    "task_serializer": "json", "result_serializer": "json", "accept_content": ["json"],
    "result_accept_content": ["json"], "result_backend": True, "result_expires": 86400.0,
    "timezone": "UTC", "static_root": "/srv/static",
}
POOLS = [{"name": "default", "queues": ["celery"], "time_limit": 0, "soft_time_limit": 0},
         {"name": "reports", "queues": ["reports"], "time_limit": 0, "soft_time_limit": 0}]
EXPECT = {"pools": POOLS, "stop_time_limit": 360, "max_countdown": 300, "visibility_timeout": 3600,
          "static_root": "/srv/static", "time_zone": "UTC"}


def test_a_consistent_project_passes():
    assert check.problems(GOOD, EXPECT) == ([], [])


@pytest.mark.parametrize(("config", "expect", "message"), [
    ({"default_queue": "default"}, {}, "default queue 'default'"),
    ({"routes": [["books.*", "pdf"]]}, {}, "queues: [pdf]"),
    ({"time_limit": None}, {}, "no hard time limit"),
    ({"time_limit": 4000}, {"stop_time_limit": 5000}, "visibility_timeout 3600"),
    ({"visibility_timeout": 200, "time_limit": 300}, {"max_countdown": 0, "visibility_timeout": 200,
                                                       "stop_time_limit": 300}, "unacknowledged for 300 s"),
    # 4 x 120 + 300 + 120: four reserved per slot, and a countdown.
    ({"visibility_timeout": 800}, {"visibility_timeout": 800, "pools": [dict(POOLS[0], prefetch_multiplier=4)]},
     "pool 'default' can hold a task unacknowledged for 900 s"),
    ({"visibility_timeout": 600}, {}, "set app_visibility_timeout: 600"),
    ({"soft_time_limit": 130}, {}, "soft time limit (130 s) is not below"),
    ({"static_root": None}, {}, "The project sets no STATIC_ROOT"),
    ({"time_limit": 600}, {}, "Set app_task_time_limit: 600"),
    ({}, {"max_countdown": 3600}, "app_max_countdown (3600 s)"),
    ({"accept_content": ["json", "pickle"]}, {}, "accepts pickle"),
    ({"task_serializer": "yaml"}, {}, "accepts yaml"),
    ({"result_expires": None}, {}, "results never expire"),
    ({"static_root": "/opt/app/src/static"}, {}, "app_static_root: /opt/app/src/static"),
])
def test_what_would_lose_repeat_or_strand_tasks_is_refused(config, expect, message):
    errors, _ = check.problems(dict(GOOD, **config), dict(EXPECT, **expect))
    assert any(message in error for error in errors), errors


def test_a_pool_limit_replacing_the_projects_is_a_warning():
    pools = [dict(POOLS[0], time_limit=300), POOLS[1]]
    errors, warnings = check.problems(GOOD, dict(EXPECT, pools=pools))
    assert errors == []
    assert warnings == ["pool 'default' sets time_limit 300 s, which replaces the project's task_time_limit "
                        "(120 s) for its tasks."]


@pytest.mark.parametrize(("kind", "warned"), [("prefork", False), ("threads", True), ("solo", True), ("gevent", True)])
def test_pools_that_do_not_enforce_time_limits_are_reported(kind, warned):
    pools = [dict(POOLS[0], pool=kind), POOLS[1]]
    errors, warnings = check.problems(GOOD, dict(EXPECT, pools=pools))
    assert errors == []
    assert any("does not enforce" in warning for warning in warnings) == warned, warnings


def test_routes_are_read_from_dicts_strings_and_queue_objects():
    class Queue:
        name = "q3"

    routes = [{"a": {"queue": "q1"}, "b": "q2"}, {"c": {"queue": Queue()}}, lambda *args: None]
    assert check._routed_queues(routes) == ([("a", "q1"), ("b", "q2"), ("c", "q3")], True)
    assert check._routed_queues(None) == ([], False)


@pytest.mark.parametrize(("files", "dependencies", "refused"), [
    (["manage.py", "requirements.txt"], "auto", False),
    (["manage.py", "uv.lock"], "auto", False),
    (["manage.py", "uv.lock"], "requirements", True),
    (["manage.py", "requirements.txt"], "uv", True),
    (["manage.py"], "auto", True),
    (["requirements.txt", "uv.lock"], "auto", True),
])
def test_a_directory_that_is_not_a_django_project_is_refused(tmp_path, files, dependencies, refused):
    """The app role's first task for a local source (code_local.yml), run as
    it is written, on the controller against a project directory."""
    project = tmp_path / "project"
    project.mkdir()
    for name in files:
        (project / name).write_text("")
    tasks = yaml.safe_load((ROOT / "roles" / "app" / "tasks" / "code_local.yml").read_text())
    assert tasks[0]["name"] == "Refuse a directory that is not a Django project"
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": tasks[:1],
             "vars": {"app_src_dir": str(project), "app_dependencies": dependencies,
                      "app_requirements_file": "requirements.txt"}}]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play))
    result = ansible("ansible-playbook", str(tmp_path / "play.yml"), "-i", "localhost,", "-c", "local")
    assert (result.returncode != 0) == refused, result.stdout + result.stderr
    if refused:
        assert "does not look like a Django project" in result.stdout, result.stdout
