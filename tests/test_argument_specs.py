"""Each role's meta/argument_specs.yml is its contract: defaults/main.yml sets
exactly the options it gives a default, with the same value where the default
is a literal, and README.md names every option an operator sets."""

import re

import pytest
import yaml
from conftest import ROOT

ROLES = sorted(path.name for path in (ROOT / "roles").iterdir() if (path / "meta" / "argument_specs.yml").exists())
# Used by other roles (include_role), never set in an inventory: its options
# are documented in its argument specs only.
INTERNAL = {"server_certificate"}
README = (ROOT / "README.md").read_text()


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
    # A templated default is described in words in the specs.
    literal = {name for name in with_default if "{{" not in str(defaults[name])}
    assert {name: (defaults[name], options[name]["default"]) for name in literal
            if defaults[name] != options[name]["default"]} == {}


@pytest.mark.parametrize("role", sorted(set(ROLES) - INTERNAL))
def test_readme_names_every_option(role):
    _, options = load(role)
    assert [name for name in options if not re.search(rf"`[^`\n]*\b{name}\b[^`\n]*`", README)] == []
