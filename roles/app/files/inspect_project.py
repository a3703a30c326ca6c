"""What decides the app's virtualenv, read on the host before anything is
installed (run by the app role with its tools virtualenv, which has
`packaging`):

    inspect_project.py PYTHON VENV CODE_DIR MODE REQUIREMENTS_FILE

MODE is auto, uv or requirements (auto: uv when CODE_DIR has uv.lock).
Prints JSON:
    python      PYTHON's version ("" when it does not run)
    venv_python the version the virtualenv was made with ("" when there is none)
    venv_stale  whether that is another minor version than PYTHON's
    requires    the project's requires-python (pyproject.toml), or null
    python_ok   whether PYTHON satisfies it
    mode        uv or requirements
    inputs      every file that decides what is installed, with its SHA-256:
                uv.lock and pyproject.toml, or the requirements file and every
                local file it includes (-r) or constrains with (-c), recursively
                (not local packages it names: bump the requirements file then)
    missing     the files among them that do not exist
    packages    the names of the packages the project installs (normalized):
                uv.lock's closure of the project's dependencies without the dev
                groups, or the requirements the requirements files name (not
                constraint files); a requirement whose environment marker is
                false for PYTHON, or cannot be evaluated, is left out with what
                only it brings; workspace members, editable or local paths and
                URLs are not followed
"""

import hashlib
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.markers import InvalidMarker, Marker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

INCLUDE = re.compile(r"^\s*(-r|--requirement|-c|--constraint)(?:\s*=\s*|\s+)(\S+)")


# PEP 508's marker environment (packaging's default_environment()), printed
# by the app's interpreter: it may be another Python than this script's, and
# has no `packaging`. No f-strings, so an old interpreter still reports its
# version (and is refused for it).
ENVIRONMENT = """
import json, os, platform, sys
info = sys.implementation.version
version = "%d.%d.%d" % (info.major, info.minor, info.micro)
if info.releaselevel != "final":
    version += info.releaselevel[0] + str(info.serial)
print(json.dumps({
    "implementation_name": sys.implementation.name, "implementation_version": version,
    "os_name": os.name, "platform_machine": platform.machine(), "platform_release": platform.release(),
    "platform_system": platform.system(), "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "platform_python_implementation": platform.python_implementation(),
    "python_version": ".".join(platform.python_version_tuple()[:2]), "sys_platform": sys.platform,
}))
"""


def environment_of(python):
    """PYTHON's marker environment, {} when it does not run (-I: no module of
    the working directory can stand in for json or platform)."""
    try:
        return json.loads(subprocess.run([python, "-I", "-c", ENVIRONMENT], capture_output=True, text=True,
                                         check=True).stdout)
    except (OSError, subprocess.CalledProcessError, ValueError):
        return {}


def applies(marker, environment):
    """Whether a requirement with this marker (a Marker, its text or None) is
    installed in environment; one that cannot be evaluated, or with no
    environment (the interpreter did not run), is counted out."""
    if marker is None:
        return True
    if not environment:
        return False
    try:
        return (marker if isinstance(marker, Marker) else Marker(marker)).evaluate(environment)
    except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
        return False


def venv_version(venv):
    """The version a virtualenv was made with (its pyvenv.cfg), "" when there
    is none: its bin/python links to an interpreter that may since be another
    version (a distribution upgrade) while its packages are not."""
    config = Path(venv) / "pyvenv.cfg"
    if not config.exists():
        return ""
    for line in config.read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() in ("version", "version_info"):
            return value.strip()
    return ""


def requirement_files(path, seen, constraints, constraint=False):
    """path and every local file it includes, in the order pip reads them
    (URLs are left to pip); constraints gets the files that only constrain
    (-c, and what they include)."""
    if path in seen:
        return
    seen.append(path)
    if constraint:
        constraints.add(path)
    if not path.exists():
        return
    for line in path.read_text().splitlines():
        match = INCLUDE.match(line)
        if match and "://" not in match.group(2):
            requirement_files((path.parent / match.group(2)).resolve(), seen, constraints,
                              constraint or match.group(1) in ("-c", "--constraint"))


def locked_packages(lock, project_name, environment):
    """What `uv sync --no-dev --no-install-project` installs from uv.lock in
    environment: the project's dependencies, theirs, and the extras each asks
    for, where their markers apply."""
    entries = {}
    for package in lock.get("package", []):
        entries.setdefault(package["name"], []).append(package)
    root = canonicalize_name(project_name)
    seen, todo = set(), [(root, ())]
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        for package in entries.get(name, []):
            groups = [package.get("dependencies", [])]
            groups += [package.get("optional-dependencies", {}).get(extra, []) for extra in extras]
            todo += [(d["name"], tuple(d.get("extra", ()))) for group in groups for d in group
                     if applies(d.get("marker"), environment)]
    return {name for name, _ in seen} - {root}


def logical_lines(text):
    """pip's: a line ending in a backslash goes on with the next one, unless it
    is a comment; comments (a # at the start or after a space) are dropped."""
    lines, pending = [], ""
    for line in text.splitlines():
        if line.endswith("\\") and not line.lstrip().startswith("#"):
            pending += line[:-1] + " "
            continue
        lines.append(re.sub(r"(^|\s)#.*", "", pending + line).strip())
        pending = ""
    return lines + [pending.strip()]


def required_packages(files, environment):
    """The names the requirements files list whose markers apply in
    environment, with the options that follow a requirement (--hash)
    dropped. Not counted: includes, editable or local paths and URLs (pip
    installs what those name)."""
    names = set()
    for path in files:
        for line in logical_lines(path.read_text()) if path.exists() else []:
            line = re.split(r"\s+-", line)[0]
            if not line or line.startswith("-"):
                continue
            try:
                requirement = Requirement(line)
            except InvalidRequirement:
                continue
            if applies(requirement.marker, environment):
                names.add(canonicalize_name(requirement.name))
    return names


def main(python, venv, code_dir, mode, requirements_file):
    code = Path(code_dir)
    if mode == "auto":
        mode = "uv" if (code / "uv.lock").exists() else "requirements"
    pyproject = code / "pyproject.toml"
    project = tomllib.loads(pyproject.read_text()).get("project", {}) if pyproject.exists() else {}
    environment = environment_of(python)
    if mode == "uv":
        lock = code / "uv.lock"
        files = [lock, pyproject]
        packages = (locked_packages(tomllib.loads(lock.read_text()), project.get("name", ""), environment)
                    if lock.exists() else set())
    else:
        files, constraints = [], set()
        requirement_files((code / requirements_file).resolve(), files, constraints)
        packages = required_packages([f for f in files if f not in constraints], environment)
    requires = project.get("requires-python")
    version = environment.get("python_full_version", "")
    venv_python = venv_version(venv)
    print(json.dumps({
        "python": version,
        "venv_python": venv_python,
        "venv_stale": bool(venv_python) and venv_python.split(".")[:2] != version.split(".")[:2],
        "requires": requires,
        "python_ok": bool(version) and (requires is None or SpecifierSet(requires).contains(version, True)),
        "mode": mode,
        "inputs": {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in files if f.exists()},
        "missing": [str(f) for f in files if not f.exists()],
        "packages": sorted(packages),
    }))


if __name__ == "__main__":
    main(*sys.argv[1:])
