"""Activity files on disk and in uploads: JSON or YAML text in, ``spec.load``, text out.

The commands ``import_activity`` / ``export_activity`` and the admin's import page and
export button call these; ``spec`` checks, loads and dumps the data itself.
"""

import json
import re
from collections.abc import Hashable
from dataclasses import dataclass

import yaml
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from . import spec
from .models import Activity

YAML_SUFFIXES = (".yaml", ".yml")
FILE_SUFFIXES = (".json", *YAML_SUFFIXES)


class FileFormat(models.TextChoices):
    JSON = "json", "JSON"
    YAML = "yaml", "YAML"


def format_of(filename: str) -> FileFormat:
    """The format a file's name says it is in; refuses a name that says neither."""
    name = filename.lower()
    if name.endswith(YAML_SUFFIXES):
        return FileFormat.YAML
    if name.endswith(".json"):
        return FileFormat.JSON
    raise spec.SpecError([f"name the file .json, .yaml or .yml so its format is known, not {filename!r}"])


def parse(content: bytes | str, *, file_format: FileFormat) -> object:
    """The data in an activity file; a syntax error is a ``SpecError`` naming its line."""
    if isinstance(content, bytes):
        try:
            content = content.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise spec.SpecError([f"the file is not UTF-8 text (byte {exc.start + 1} cannot be read)"]) from None
    if file_format == FileFormat.YAML:
        return _parse_yaml(content)
    return _parse_json(content)


def _parse_json(text: str) -> object:
    try:
        return json.loads(text, object_pairs_hook=_object_without_twin_keys)
    except json.JSONDecodeError as exc:
        raise spec.SpecError([f"line {exc.lineno}, column {exc.colno}: JSON syntax error: {exc.msg}"]) from None
    except _TwinKey as exc:
        raise spec.SpecError([f"JSON: the key {exc.key!r} appears twice in one object; keep one"]) from None


class _TwinKey(ValueError):
    def __init__(self, key, line=None):
        super().__init__(key)
        self.key, self.line = key, line


def _object_without_twin_keys(pairs) -> dict:
    # A second "steps" would silently replace the first: refuse it instead.
    result = {}
    for key, value in pairs:
        if key in result:
            raise _TwinKey(key)
        result[key] = value
    return result


class _PlainYamlLoader(yaml.SafeLoader):
    """YAML read like JSON: only true/false are booleans, only plain decimals are numbers.

    PyYAML follows YAML 1.1, where ``at: 10:00`` is the number 600 (base 60), the
    country ``NO`` is false and ``2026-05-01`` a date object; an activity file means
    the text in each case, as its JSON twin would.
    """

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                continue  # SafeLoader refuses it, with its line
            if key in seen:
                raise _TwinKey(key, line=key_node.start_mark.line + 1)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_PlainYamlLoader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("int", r"^[-+]?(?:0|[1-9][0-9]*)$", "-+0123456789"),
    ("float", r"^[-+]?(?:0|[1-9][0-9]*)(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?$|^[-+]?\.[0-9]+$", "-+0123456789."),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
):
    _PlainYamlLoader.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", re.compile(_pattern), list(_first))


def _parse_yaml(text: str) -> object:
    try:
        return yaml.load(text, Loader=_PlainYamlLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = " ".join(part for part in (exc.context, exc.problem) if part)
        raise spec.SpecError([f"{where}YAML syntax error: {what}"]) from None
    except yaml.YAMLError as exc:
        raise spec.SpecError([f"YAML syntax error: {exc}"]) from None
    except _TwinKey as exc:
        raise spec.SpecError([f"line {exc.line}: the key {exc.key!r} appears twice in one mapping; keep one"]) from None


def render(activity: Activity, *, file_format: FileFormat = FileFormat.JSON) -> str:
    """The activity as the text of a file that ``parse`` and ``spec.load`` read back."""
    data = json.loads(json.dumps(spec.dump(activity), cls=DjangoJSONEncoder))
    if file_format == FileFormat.YAML:
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def filename_for(activity: Activity, file_format: FileFormat = FileFormat.JSON) -> str:
    stem = re.sub(r"[^a-z0-9]+", "-", activity.name.lower()).strip("-") or f"activity-{activity.pk}"
    return f"{stem}.{file_format.value}"


class ImportOutcome(models.TextChoices):
    CREATED = "created", "created"
    UPDATED = "updated", "updated"
    UNCHANGED = "unchanged", "unchanged"


@dataclass(frozen=True)
class Imported:
    activity: Activity
    outcome: ImportOutcome
    new_version: bool

    def summary(self) -> str:
        """What happened, in the words the command and the admin show."""
        version = self.activity.version
        if self.outcome == ImportOutcome.CREATED:
            return f"{self.activity.name}: created, version {version}"
        if self.outcome == ImportOutcome.UNCHANGED:
            return f"{self.activity.name}: unchanged, version {version}"
        if self.new_version:
            return f"{self.activity.name}: updated, now version {version}"
        return f"{self.activity.name}: updated (the definition is the same), still version {version}"


def import_data(data) -> Imported:
    """``spec.load(data)``, telling whether it created, updated (a new version?) or changed nothing."""
    name = data.get("name") if isinstance(data, dict) else None
    existing = Activity.objects.filter(name=name).first() if isinstance(name, str) else None
    before = spec.dump(existing) if existing else None
    activity = Activity.objects.get(pk=spec.load(data).pk)
    if existing is None:
        return Imported(activity, ImportOutcome.CREATED, new_version=True)
    if spec.dump(activity) == before:
        return Imported(activity, ImportOutcome.UNCHANGED, new_version=False)
    return Imported(activity, ImportOutcome.UPDATED, new_version=activity.version != existing.version)
