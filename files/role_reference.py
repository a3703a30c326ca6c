"""Write docs/REFERENCE.md, the role variable reference, from every role's
meta/argument_specs.yml (entry point main) and defaults/main.yml.

`make docs` runs it. `--check` writes nothing and exits 1 when the file is
out of date; `--stdout` prints the reference instead of writing it.
tests/test_argument_specs.py fails when the file differs from what this
script writes, so the reference cannot drift from the specs.
"""

import argparse
import difflib
import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "REFERENCE.md"

# Every role with argument specs, in the order site.yml deploys them, and
# where it runs. A role missing here stops the script rather than going
# undocumented.
ROLES = {
    "redis": "group `redis`",
    "postgresql": "group `postgresql`",
    "app": "every host in `web`, `celery_workers`, `celery_beat`, `flower`",
    "gunicorn": "group `web`",
    "celery_worker": "group `celery_workers`",
    "celery_beat": "group `celery_beat`, exactly one host",
    "flower": "group `flower`",
    "server_certificate": "internal",
}
INTERNAL = {
    "server_certificate": "Internal: used by the redis and postgresql roles through `include_role`, "
    "never set in an inventory (they pass their `redis_tls_*` and `postgresql_tls_*` values).",
}
ANSIBLE_DOC = ".venv/bin/ansible-doc -t role -r roles -e main"

# Ansible's documentation markup: C(code), I(italic), B(bold), U(url),
# L(text,url), R(text,anchor), M(module), O(option), V(value), E(env var).
# As in ansible-core, a link's text runs to the last comma.
MARKUP = re.compile(
    r"\b(?:(?P<code>[CMOVE])\((?P<code_text>[^)]*)\)"
    r"|I\((?P<italic>[^)]*)\)"
    r"|B\((?P<bold>[^)]*)\)"
    r"|U\((?P<url>[^)]*)\)"
    r"|L\((?P<link_text>[^)]*),\s*(?P<link_url>[^)]*)\)"
    r"|R\((?P<ref_text>[^)]*),\s*(?P<ref>[^)]*)\))"
)


def code(text):
    """A Markdown code span, however many backticks the text holds."""
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def escape(text):
    """Plain text that Markdown and HTML take literally."""
    text = text.replace("\\", "\\\\").replace("<", "&lt;").replace(">", "&gt;")
    text = re.sub(r"([*`\[\]])", r"\\\1", text)
    # An underscore inside a word (app_name) is literal in GFM; others could start emphasis.
    return re.sub(r"(?<!\w)_|_(?!\w)", r"\_", text)


def markup(text):
    """One paragraph of Ansible markup as Markdown, on one line."""
    text = " ".join(str(text).split())
    out, pos = [], 0
    for match in MARKUP.finditer(text):
        out.append(escape(text[pos:match.start()]))
        pos = match.end()
        if match["code"]:
            out.append(code(match["code_text"]))
        elif match["italic"] is not None:
            out.append(f"*{escape(match['italic'])}*")
        elif match["bold"] is not None:
            out.append(f"**{escape(match['bold'])}**")
        elif match["url"] is not None:
            out.append(f"<{match['url']}>")
        elif match["link_text"] is not None:
            out.append(f"[{escape(match['link_text'])}]({match['link_url']})")
        else:
            out.append(escape(match["ref_text"]))
    out.append(escape(text[pos:]))
    return "".join(out)


def paragraphs(description):
    """A description (a string or a list of strings) as a list of Markdown paragraphs."""
    if description is None:
        return []
    items = description if isinstance(description, list) else [description]
    return [markup(item) for item in items]


def cell(text):
    """Text for one table cell: one line, pipes escaped (also inside code spans, as GFM wants)."""
    return text.replace("|", "\\|")


def value(raw):
    """A default as the inventory would spell it: strings as they are (a Jinja
    expression shows exactly what the role computes), others as JSON."""
    if isinstance(raw, str):
        try:
            reads_back = yaml.safe_load(raw) == raw
        except yaml.YAMLError:
            reads_back = True  # "{{ ... }}" and the like: only ever read as a string
        if raw and "\n" not in raw and (reads_back or "{{" in raw):
            return code(raw)
    return code(json.dumps(raw, ensure_ascii=False))


def type_of(option):
    kind = option.get("type", "str")
    if "elements" in option:
        kind = f"{kind} of {option['elements']}"
    if "choices" in option:
        kind += ", one of " + ", ".join(code(str(choice)) for choice in option["choices"])
    if option.get("no_log"):
        kind += ", secret"
    return kind


def default_of(name, option, defaults):
    """The spec's default; where the spec describes a computed default in
    words, also the expression defaults/main.yml holds. Without a spec
    default, defaults/main.yml's value; else "required" or nothing."""
    if "default" in option:
        spec = option["default"]
        if name in defaults and defaults[name] != spec and isinstance(spec, str) and "{{" not in spec:
            return f"{markup(spec)}<br>{value(defaults[name])}"
        return value(spec)
    if name in defaults:
        return value(defaults[name])
    return "required" if option.get("required") else ""


def slug(heading, seen):
    """GitHub's anchor for a Markdown heading line."""
    anchor = re.sub(r"[^\w\- ]", "", heading.lstrip("#").strip().lower()).replace(" ", "-")
    count = seen.get(anchor, 0)
    seen[anchor] = count + 1
    return f"{anchor}-{count}" if count else anchor


def table(options, defaults, first_column):
    rows = [f"| {first_column} | type | default | description |", "| --- | --- | --- | --- |"]
    for name, option in options.items():
        description = "<br>".join(paragraphs(option.get("description")))
        row = [code(name), type_of(option), default_of(name, option, defaults), description]
        rows.append("| " + " | ".join(cell(text) for text in row) + " |")
    return rows


def option_tables(options, parent=""):
    """(heading, rows) of a table per option with suboptions, each named
    after its parent (`a.b` when nested), nested ones after their parent."""
    sections = []
    for name, option in options.items():
        if not option.get("options"):
            continue
        path = f"{parent}{name}"
        what = "each item's fields" if option.get("type") == "list" else "fields"
        sections.append((f"### `{path}`: {what}", table(option["options"], {}, "field")))
        sections += option_tables(option["options"], f"{path}.")
    return sections


def load(role):
    directory = ROOT / "roles" / role
    specs = yaml.safe_load((directory / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    defaults = yaml.safe_load((directory / "defaults" / "main.yml").read_text()) or {}
    return specs, defaults


def heading_of(role):
    return f"## {role} ({ROLES[role]})"


def role_section(role, seen):
    specs, defaults = load(role)
    main = specs["main"]
    options = main.get("options") or {}
    lines = [heading_of(role), ""]
    if role in INTERNAL:
        lines += [INTERNAL[role], ""]
    short = markup(main["short_description"])
    lines += [short if short.endswith(".") else f"{short}.", ""]
    for paragraph in paragraphs(main.get("description")):
        lines += [paragraph, ""]
    others = [name for name in specs if name != "main"]
    if others:
        lines += ["Other entry points:", ""]
        for name in others:
            entry = specs[name]
            if entry == main:
                lines.append(f"- {code(name)}: the same options as `main`.")
                continue
            names = ", ".join(code(option) for option in entry.get("options") or {}) or "none"
            lines.append(f"- {code(name)}: {markup(entry.get('short_description', ''))}; options: {names}.")
        lines.append("")
    lines += table(options, defaults, "variable") + [""]
    for heading, rows in option_tables(options):
        slug(heading, seen)
        lines += [heading, "", *rows, ""]
    return lines


def roles_with_specs():
    return sorted(path.parent.parent.name for path in (ROOT / "roles").glob("*/meta/argument_specs.yml"))


def render():
    missing = set(roles_with_specs()) - set(ROLES)
    if missing:
        raise SystemExit(f"files/role_reference.py: add {', '.join(sorted(missing))} to ROLES")
    seen = {}
    lines = [
        "<!-- Generated by `make docs` (files/role_reference.py) from roles/*/meta/argument_specs.yml."
        " Do not edit by hand: edit the argument specs and run `make docs`. -->",
        "",
        "# Role variables",
        "",
        "Every input of every role, from the role's `meta/argument_specs.yml` (entry point `main`), the typed",
        "contract the preflight play validates on every host before any host changes. This file is generated",
        "by `make docs`; `make unit` fails when it differs from the specs. Defaults come from the specs; where",
        "a default is computed, the spec says it in words and the expression `defaults/main.yml` holds follows.",
        "",
        "The same specs in a terminal, from the repository's top directory (elsewhere ansible-doc finds",
        "no role and prints nothing):",
        "",
        "```",
        f"{ANSIBLE_DOC} redis",
        "```",
        "",
    ]
    headings = [heading_of(role) for role in ROLES]
    lines += [f"- [{role}](#{slug(heading, seen)})" for role, heading in zip(ROLES, headings, strict=True)]
    lines.append("")
    for role in ROLES:
        lines += role_section(role, seen)
    return "\n".join(lines).rstrip("\n") + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="exit 1 when docs/REFERENCE.md is out of date")
    mode.add_argument("--stdout", action="store_true", help="print the reference instead of writing it")
    args = parser.parse_args()
    text = render()
    if args.stdout:
        sys.stdout.write(text)
    elif args.check:
        current = OUTPUT.read_text() if OUTPUT.exists() else ""
        diff = list(difflib.unified_diff(current.splitlines(True), text.splitlines(True),
                                         "docs/REFERENCE.md", "generated"))
        if diff:
            sys.stdout.writelines(diff)
            raise SystemExit("docs/REFERENCE.md is out of date: run make docs")
    else:
        OUTPUT.write_text(text)


if __name__ == "__main__":
    main()
