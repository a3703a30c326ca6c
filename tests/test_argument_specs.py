"""Each role's meta/argument_specs.yml is its contract: defaults/main.yml sets
exactly the options it gives a default, with the same value where the default
is a literal or a Jinja expression, and docs/REFERENCE.md is generated from
the specs (`make docs`) and lists every option."""

import difflib
import importlib.util
import re

import pytest
import yaml
from conftest import ROOT

ROLES = sorted(path.name for path in (ROOT / "roles").iterdir() if (path / "meta" / "argument_specs.yml").exists())
REFERENCE = ROOT / "docs" / "REFERENCE.md"


def generator():
    spec = importlib.util.spec_from_file_location("role_reference", ROOT / "files" / "role_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load(role):
    defaults = yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text()) or {}
    specs = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())
    return defaults, specs["argument_specs"]["main"]["options"]


@pytest.mark.parametrize("role", ROLES)
def test_defaults_and_argument_specs_agree(role):
    defaults, options = load(role)
    assert set(defaults) - set(options) == set(), "set in defaults/main.yml, missing from the argument specs"
    with_default = {name for name, option in options.items() if "default" in option}
    assert with_default - set(defaults) == set(), "a default in the argument specs, none in defaults/main.yml"
    # A computed default may be described in words in the specs (the
    # reference shows the expression next to them); a literal default, or a
    # Jinja expression written in the specs, must be the same as the role's.
    compared = {name for name in with_default
                if "{{" not in str(defaults[name]) or "{{" in str(options[name]["default"])}
    assert {name: (defaults[name], options[name]["default"]) for name in compared
            if defaults[name] != options[name]["default"]} == {}


def test_reference_is_generated_from_the_specs():
    module = generator()
    assert set(module.ROLES) == set(ROLES), "files/role_reference.py: ROLES must name every role with argument specs"
    expected = module.render()
    current = REFERENCE.read_text() if REFERENCE.exists() else ""
    diff = "".join(difflib.unified_diff(current.splitlines(True), expected.splitlines(True),
                                        "docs/REFERENCE.md", "generated from the argument specs", n=1))
    assert not diff, f"docs/REFERENCE.md differs from the argument specs: run make docs\n{diff[:3000]}"


def sections(text, level):
    """{heading line: its text up to the next heading of this level or above}."""
    parts = re.split(rf"^(#{{1,{level}}} .*)$", text, flags=re.MULTILINE)
    return {heading: body for heading, body in zip(parts[1::2], parts[2::2], strict=True)}


def unlisted(options, tables, path=""):
    """Options (and suboptions, in their parent's table) without a row."""
    missing = [f"{path}{name}" for name in options if f"\n| `{name}` |" not in tables.get(path, "")]
    for name, option in options.items():
        if option.get("options"):
            missing += unlisted(option["options"], tables, f"{path}{name}.")
    return missing


@pytest.mark.parametrize("role", ROLES)
def test_reference_lists_every_option(role):
    _, options = load(role)
    roles = {heading.split()[1]: body for heading, body in sections(REFERENCE.read_text(), 2).items()
             if heading.startswith("## ")}
    assert role in roles, f"docs/REFERENCE.md has no section for {role}: run make docs"
    # The role's own table comes before its first "### `parent`: ..." table.
    parts = sections(roles[role], 3)
    tables = {"": roles[role].split("\n### ", 1)[0]}
    tables |= {re.match(r"### `([^`]+)`", heading)[1] + ".": body for heading, body in parts.items()}
    assert unlisted(options, tables) == [], "options missing from docs/REFERENCE.md: run make docs"
