"""The docs cannot drift from the code: every variable settings read is in operations.md's table.

``docs/operations.md`` has one table of every environment variable. The variables are found by
reading ``triggerhub/settings.py`` as Python (its syntax tree, not its comments): the first
argument of every call to ``env`` and its typed forms (``env.int``, ``env.bool``, ``env.list``,
``env.db``, ...), to ``os.environ``/``os.getenv``, and to any function settings define or
import (so a helper such as one that also reads ``<NAME>_FILE`` is followed); names that settings
pass through by prefix (``name.startswith("ANYMAIL_")``) must be documented as ``ANYMAIL_*``.
So that a way of reading the reader does not know cannot hide a variable, settings are also
imported in a fresh interpreter (development, PostgreSQL + Redis, production) with an
``os.environ`` that records each name looked up from settings.py, and every one must be found.
Each page of ``docs/`` is for one reader, and says who in its first line; the README is the
door, at most 8 KB.
"""

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ROOT / "triggerhub" / "settings.py"
OPERATIONS = ROOT / "docs" / "operations.md"
VARIABLE_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
ENVIRONMENT_ROOTS = {"env", "os", "environ", "getenv"}


def called_name(func: ast.expr) -> list[str]:
    """``env.int`` -> ["env", "int"]; ``os.environ.get`` -> ["os", "environ", "get"]."""
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    return parts[::-1]


def variables_read_by(source: str) -> set[str]:
    """The environment variables a settings module reads; a prefix passed through is ``PREFIX*``."""
    tree = ast.parse(source)
    helpers = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    helpers |= {
        alias.asname or alias.name for node in tree.body if isinstance(node, ast.ImportFrom) for alias in node.names
    }
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            first = node.args[0]
            name = called_name(node.func)
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                continue
            if name and name[-1] == "startswith" and first.value.endswith("_"):
                if VARIABLE_NAME.fullmatch(first.value):
                    found.add(first.value + "*")
            elif name and (name[0] in ENVIRONMENT_ROOTS or (len(name) == 1 and name[0] in helpers)):
                if VARIABLE_NAME.fullmatch(first.value) and name[-1] != "setdefault":
                    found.add(first.value)
        elif isinstance(node, ast.Subscript) and called_name(node.value)[-1:] in (["environ"], ["ENVIRON"]):
            key = node.slice
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                found.add(key.value)
    return found


# Run in a fresh interpreter: os.environ records every name looked up on the way from settings.py
# (not what libraries read while settings import them, not the items() walk of the ANYMAIL_ pass-through).
RECORD_READS = r"""
import importlib, json, os, sys
settings_file, path, module = sys.argv[1:4]
seen = set()

class Recording(type(os.environ)):
    def __getitem__(self, key):
        note(key)
        return super().__getitem__(key)

    def __contains__(self, key):
        note(key)
        return super().__contains__(key)

def note(key):
    frame = sys._getframe(2)
    while frame is not None:
        code = frame.f_code
        if "importlib" in code.co_filename or code.co_name in ("__iter__", "setdefault", "read_env"):
            return
        if code.co_filename == settings_file:
            seen.add(key)
            return
        frame = frame.f_back

os.environ.__class__ = Recording
sys.path.insert(0, path)
importlib.import_module(module)
print(json.dumps(sorted(seen)))
"""


def variables_settings_look_up(
    environment: dict[str, str], *, root: Path = ROOT, module: str = "triggerhub.settings"
) -> set[str]:
    settings_file = root.joinpath(*module.split(".")).with_suffix(".py")
    answer = subprocess.run(
        [sys.executable, "-c", RECORD_READS, str(settings_file), str(root), module],
        env={"PATH": os.environ.get("PATH", ""), **environment},
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert answer.returncode == 0, answer.stderr
    return set(json.loads(answer.stdout.strip().splitlines()[-1]))


def test_the_recorder_catches_a_variable_read_through_a_module_the_reader_does_not_follow(tmp_path):
    (tmp_path / "somewhere.py").write_text("import os\ndef read(name):\n    return os.environ.get(name, '')\n")
    (tmp_path / "fake_settings.py").write_text(
        "import json, os\nimport somewhere\nA = somewhere.read('HIDDEN_BEHIND_A_MODULE')\n"
        "B = os.environ.get('PLAIN_READ')\nfor k, v in os.environ.items():\n    pass\n"
    )
    source = (tmp_path / "fake_settings.py").read_text()
    looked_up = variables_settings_look_up({"SOMETHING_ELSE": "1"}, root=tmp_path, module="fake_settings")
    assert looked_up == {"HIDDEN_BEHIND_A_MODULE", "PLAIN_READ"}
    assert variables_read_by(source) == {"PLAIN_READ"}  # what the test below would then report as missed


def test_the_settings_reader_misses_nothing_settings_look_up_when_they_run(tmp_path):
    """However settings come to read a variable (a helper the reader does not know), it is caught here."""
    found = variables_read_by(SETTINGS.read_text(encoding="utf-8"))
    var = {"TRIGGERHUB_VAR_DIR": str(tmp_path)}
    looked_up = (
        variables_settings_look_up(var)
        | variables_settings_look_up(
            {**var, "DATABASE_URL": "postgres://u:p@127.0.0.1:1/x", "REDIS_URL": "redis://127.0.0.1:1/0"}
        )
        | variables_settings_look_up(
            {
                **var,
                "TRIGGERHUB_MODE": "production",
                "DJANGO_SECRET_KEY": "k" * 50,
                "DJANGO_ALLOWED_HOSTS": "example.com",
                "ANYMAIL_REQUESTS_TIMEOUT": "30",
            }
        )
    )
    assert {"TRIGGERHUB_MODE", "DJANGO_HSTS_SECONDS", "DJANGO_CONN_MAX_AGE"} <= looked_up  # the recorder records
    missed = {name for name in looked_up - found if not any(name.startswith(p[:-1]) for p in found if p.endswith("*"))}
    assert not missed, f"settings look up {sorted(missed)}, which the reader of settings.py does not find"


def documented_in_operations() -> set[str]:
    """The names in the first column of the table under "## Environment variables"."""
    text = OPERATIONS.read_text(encoding="utf-8")
    assert "\n## Environment variables\n" in text, "docs/operations.md has no '## Environment variables' section"
    section = text.split("\n## Environment variables\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]*\*?)`", row.split("|")[1])}


def test_the_settings_reader_finds_every_way_settings_read_a_variable():
    source = """
import os
from environ import Env
from django.core.exceptions import ImproperlyConfigured
from triggerhub.envvars import secret as read_secret
env = Env()
def flag(name, default=False):
    return env.bool(name, default=default)
A = env("PLAIN")
B = env.int("AN_INT", default=1)
C = env.db("A_DATABASE_URL")
D = os.environ.get("FROM_OS")
E = os.getenv("FROM_GETENV")
F = os.environ["SUBSCRIPTED"]
G = flag("THROUGH_A_HELPER")
H = read_secret("THROUGH_AN_IMPORTED_HELPER")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "triggerhub.settings")
raise ImproperlyConfigured("NOT_A_READ is required")  # a message, not a variable name
for name, value in env.ENVIRON.items():
    if name.startswith("PASSED_"):
        pass
"""
    assert variables_read_by(source) == {
        "PLAIN",
        "AN_INT",
        "A_DATABASE_URL",
        "FROM_OS",
        "FROM_GETENV",
        "SUBSCRIPTED",
        "THROUGH_A_HELPER",
        "THROUGH_AN_IMPORTED_HELPER",
        "PASSED_*",
    }


def test_the_settings_reader_finds_what_settings_are_known_to_read():
    found = variables_read_by(SETTINGS.read_text(encoding="utf-8"))
    assert {"TRIGGERHUB_MODE", "DATABASE_URL", "REDIS_URL", "DJANGO_SECRET_KEY", "ANYMAIL_*"} <= found
    assert len(found) >= 40


def test_operations_documents_every_environment_variable_settings_read():
    undocumented = sorted(variables_read_by(SETTINGS.read_text(encoding="utf-8")) - documented_in_operations())
    assert not undocumented, (
        "triggerhub/settings.py reads variables that docs/operations.md's table "
        f"(## Environment variables) does not document: {', '.join(undocumented)}"
    )


DOC_PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "bench" / "README.md"]
FIRST_LINE = re.compile(r"# For [a-z]+(?:(?:, | and )[a-z]+)*: \S")


@pytest.mark.parametrize("page", DOC_PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_docs_page_says_who_it_is_for_in_its_first_line(page):
    first_line = page.read_text(encoding="utf-8").split("\n", 1)[0]
    assert FIRST_LINE.match(first_line), (
        f"{page.relative_to(ROOT)} opens with {first_line!r}, not '# For <readers>: <task>'"
    )


@pytest.mark.parametrize("page", DOC_PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_the_readme_indexes_every_docs_page(page):
    assert f"]({page.relative_to(ROOT).as_posix()})" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_is_at_most_8_kb():
    assert len((ROOT / "README.md").read_bytes()) <= 8 * 1024


def test_the_readmes_first_screen_holds_the_two_commands():
    first_screen = "\n".join((ROOT / "README.md").read_text(encoding="utf-8").splitlines()[:40])
    assert ".venv/bin/python manage.py demo" in first_screen
    assert (
        '<!-- test-command -->\n```sh\npython3 -m venv .venv && .venv/bin/pip install -e ".[dev]" && .venv/bin/pytest\n```'
        in first_screen
    )


def every_link_in(page: Path) -> list[tuple[str, str]]:
    """Markdown links to other files and headings; code (fenced or inline) shows links, it has none."""
    text = re.sub(r"(?s)```.*?```|`[^`\n]*`", "", page.read_text(encoding="utf-8"))
    return [
        (target, anchor)
        for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)", text)
        if not target.startswith(("http:", "https:", "mailto:"))
    ]


def anchors_of(page: Path) -> set[str]:
    """GitHub's anchors: headings lower-cased, punctuation dropped, spaces to dashes."""
    headings = re.findall(r"(?m)^#+ (.+)$", page.read_text(encoding="utf-8"))
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


@pytest.mark.parametrize("page", [ROOT / "README.md", *DOC_PAGES], ids=lambda page: str(page.relative_to(ROOT)))
def test_every_link_between_pages_leads_to_a_page_and_a_heading_that_exist(page):
    for target, anchor in every_link_in(page):
        linked = (page.parent / target).resolve() if target else page
        assert linked.exists(), f"{page.relative_to(ROOT)} links to {target}, which does not exist"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors_of(linked), f"{page.relative_to(ROOT)} links to {target}#{anchor}: no such heading"
