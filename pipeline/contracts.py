"""The event contracts: the one place the JSON Schema files in `schemas/` are read and compiled.

`validator(name)` compiles a schema once with fastjsonschema (cached per process); `quick_check`
is the same schema compiled by jsonschema-rs, a yes/no answer several times cheaper. The door
(`pipeline.validate`) uses the raw schemas on every event; tests call `validate_record` on every
record the pipeline emits, so a field added, renamed or retyped without the schema fails a test.

Schema names are the file names without `.schema.json`: raw-article, raw-comment, clean-article,
clean-comment, dead-letter, trend.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import fastjsonschema

# Package data of the wheel (pyproject maps the repository's `schemas/` to `pipeline.schemas`).
SCHEMAS: Traversable = resources.files("pipeline.schemas")
SCHEMA_NAMES = (
    "raw-article",
    "raw-comment",
    "clean-article",
    "clean-comment",
    "dead-letter",
    "trend",
)
# The version this code emits, and the majors it reads (any minor of a known major is accepted).
SCHEMA_VERSION = "1.2"
KNOWN_MAJORS = frozenset({"1"})
VERSION_RE = re.compile(r"^(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})$")


class ContractError(ValueError):
    """A record does not match its schema; `code` is a pipeline.errors code, `field` a path."""

    def __init__(self, schema: str, code: str, field: str | None, message: str) -> None:
        super().__init__(f"{schema}: {message}")
        self.schema = schema
        self.code = code
        self.field = field
        self.message = message


def schema_path(name: str) -> Traversable:
    if name not in SCHEMA_NAMES:
        raise KeyError(f"unknown schema {name!r}; known: {', '.join(SCHEMA_NAMES)}")
    return SCHEMAS / f"{name}.schema.json"


@functools.cache
def _load(name: str) -> str:
    return schema_path(name).read_text(encoding="utf-8")


def load_schema(name: str) -> dict[str, Any]:
    """A fresh copy of the schema as a dict (callers may change it freely)."""
    return json.loads(_load(name))


@functools.cache
def validator(name: str) -> Callable[[Any], Any]:
    """The compiled validator: call it with a record; raises fastjsonschema's exception on error.

    `handlers={}` keeps $ref resolution inside the file (never fetches a URL).
    """
    return fastjsonschema.compile(load_schema(name), handlers={}, use_default=False)


@functools.cache
def quick_check(name: str) -> Callable[[Any], bool]:
    """A compiled yes/no check of the same schema (jsonschema-rs, Rust): the door asks it first
    and asks `validator` only on a no, for the exact error. fastjsonschema stays the authority:
    a record the quick check refuses but fastjsonschema accepts is accepted, and the tests check
    that nothing the quick check accepts is refused by fastjsonschema."""
    import jsonschema_rs

    return jsonschema_rs.validator_for(load_schema(name)).is_valid


def field_path(name: str | None) -> str | None:
    """fastjsonschema's 'data.fact_boxes[0].title' -> 'fact_boxes[0].title' (None for the root)."""
    if not name or name == "data":
        return None
    return name[5:] if name.startswith("data.") else name


def describe_error(exc: fastjsonschema.JsonSchemaValueException) -> tuple[str, str | None, str]:
    """(error code, field, message) for a schema failure, naming the field in the message."""
    rule = exc.rule
    field = field_path(exc.name)
    definition = exc.rule_definition
    value = exc.value
    if rule == "required" and isinstance(value, dict) and isinstance(definition, list):
        missing = [f for f in definition if f not in value] or list(definition)
        name = f"{field}.{missing[0]}" if field else str(missing[0])
        return "schema.missing_field", name, f"field {name!r} is required"
    if rule == "anyOf" and isinstance(value, dict) and isinstance(exc.definition, dict):
        options = exc.definition.get("anyOf") or []
        names = [o["required"][0] for o in options if isinstance(o, dict) and o.get("required")]
        if names and len(names) == len(options) and not any(n in value for n in names):
            listed = ", ".join(repr(n) for n in names)
            return "schema.missing_field", names[0], f"one of the fields {listed} is required"
    if rule == "type":
        kinds = definition if isinstance(definition, list) else [definition]
        wanted = " or ".join(str(k) for k in kinds)
        got = _json_type(value)
        label = repr(field) if field else "the record"
        return "schema.wrong_type", field, f"field {label} must be {wanted}, not {got}"
    detail = exc.message
    if detail.startswith("data"):
        detail = detail.split(" ", 1)[-1]
    label = repr(field) if field else "the record"
    return "schema.invalid_value", field, f"field {label} {detail}"[:500]


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def check(name: str, record: Any) -> None:
    """Validate; raises ContractError with a pipeline.errors code, the field and a message."""
    try:
        validator(name)(record)
    except fastjsonschema.JsonSchemaValueException as exc:
        code, field, message = describe_error(exc)
        raise ContractError(name, code, field, message) from None


def validate_record(name: str, record: Any) -> None:
    """Check one record against schemas/<name>.schema.json; raises ContractError when it differs."""
    check(name, record)
