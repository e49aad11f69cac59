"""The schema files are valid draft 2020-12, every example matches its schema, and the contract
rules hold: raw records are open (unknown fields allowed), emitted records are closed and complete,
every record carries schema_version, and the DLQ's error codes are exactly pipeline.errors'."""

from __future__ import annotations

import json
from pathlib import Path

import fastjsonschema
import pytest
from jsonschema import Draft202012Validator

from devtools.paths import SCHEMA_EXAMPLES as EXAMPLES_DIR
from devtools.paths import SCHEMAS as SCHEMA_DIR
from pipeline import contracts
from pipeline.contracts import (
    SCHEMA_NAMES,
    ContractError,
    load_schema,
    validate_record,
    validator,
)
from pipeline.errors import ERROR_CODES

RAW = ("raw-article", "raw-comment")
EMITTED = ("clean-article", "clean-comment", "dead-letter", "trend")


def examples() -> list[tuple[str, Path]]:
    """(schema name, file) for schemas/examples/<schema>/*.json and examples/compat/<schema>/."""
    out = []
    for base in (EXAMPLES_DIR, EXAMPLES_DIR / "compat"):
        for name in SCHEMA_NAMES:
            out += [(name, p) for p in sorted((base / name).glob("*.json"))]
    return out


def example_id(item: tuple[str, Path]) -> str:
    return str(item[1].relative_to(EXAMPLES_DIR))


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_every_schema_file_on_disk_is_a_known_schema_name():
    on_disk = {p.name.removesuffix(".schema.json") for p in SCHEMA_DIR.glob("*.schema.json")}
    assert on_disk == set(SCHEMA_NAMES)


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_schema_is_valid_draft_2020_12_and_compiles(name):
    schema = load_schema(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    assert callable(validator(name))


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_every_schema_has_at_least_one_example(name):
    assert list((EXAMPLES_DIR / name).glob("*.json")), f"no example in schemas/examples/{name}/"


@pytest.mark.parametrize("item", examples(), ids=example_id)
def test_example_validates_with_fastjsonschema_and_jsonschema(item):
    name, path = item
    record = load(path)
    validate_record(name, record)
    errors = list(Draft202012Validator(load_schema(name)).iter_errors(record))
    assert not errors, [e.message for e in errors]


def test_compat_examples_cover_the_oldest_minor_and_a_future_minor_with_extra_fields():
    compat = [(name, load(p)) for name, p in examples() if "compat" in p.parts]
    versions = {r["schema_version"] for _, r in compat}
    assert {"1.0", "1.7"} <= versions
    for name, record in compat:
        known = set(load_schema(name)["properties"])
        if record["schema_version"] == "1.7":
            assert set(record) - known, "a future-minor example should carry unknown fields"


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_every_record_carries_a_major_minor_schema_version(name):
    schema = load_schema(name)
    assert "schema_version" in schema["required"]
    check = fastjsonschema.compile(schema["properties"]["schema_version"])
    for good in ("1.0", "1.7", "1.12"):
        check(good)
    for bad in ("2.0", "1", "1.0.0", "v1.0", "", "1.x", 1.0):
        with pytest.raises(fastjsonschema.JsonSchemaValueException):
            check(bad)


@pytest.mark.parametrize("name", RAW)
def test_raw_schemas_accept_unknown_fields(name):
    assert load_schema(name)["additionalProperties"] is True


@pytest.mark.parametrize("name", EMITTED)
def test_emitted_schemas_are_closed_and_require_every_field(name):
    schema = load_schema(name)
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == set(schema["properties"])


@pytest.mark.parametrize("name", EMITTED)
def test_emitted_record_with_an_extra_field_is_caught_by_name(name):
    record = load(next((EXAMPLES_DIR / name).glob("*.json")))
    record["surprise"] = 1
    with pytest.raises(ContractError) as info:
        validate_record(name, record)
    assert "surprise" in str(info.value)
    assert info.value.code == "schema.invalid_value"


@pytest.mark.parametrize("item", [e for e in examples() if "compat" not in e[1].parts],
                         ids=example_id)  # fmt: skip
def test_dropping_any_required_field_fails_in_both_validators(item):
    name, path = item
    record = load(path)
    py_validator = Draft202012Validator(load_schema(name))
    for field in load_schema(name)["required"]:
        broken = {k: v for k, v in record.items() if k != field}
        with pytest.raises(ContractError) as info:
            validate_record(name, broken)
        assert info.value.code == "schema.missing_field"
        assert info.value.field == field
        assert f"field {field!r} is required" in str(info.value)
        assert not py_validator.is_valid(broken)


def test_raw_article_needs_one_of_title_body_or_html():
    base = {"schema_version": "1.0", "source": "x"}
    with pytest.raises(ContractError) as info:
        validate_record("raw-article", base)
    assert info.value.code == "schema.missing_field"
    assert "'title', 'body', 'html'" in str(info.value)
    for field in ("title", "body", "html"):
        validate_record("raw-article", {**base, field: "something"})


def test_wrong_type_names_the_field_and_the_type():
    record = load(EXAMPLES_DIR / "raw-comment" / "foxnews-mention.json")
    with pytest.raises(ContractError) as info:
        validate_record("raw-comment", {**record, "number": "seven"})
    assert info.value.code == "schema.wrong_type"
    assert info.value.field == "number"
    assert "field 'number' must be integer" in str(info.value)


def test_nested_errors_name_the_nested_field():
    record = load(EXAMPLES_DIR / "clean-article" / "bbc-seed.json")
    record["tags"][0]["score"] = "high"
    with pytest.raises(ContractError) as info:
        validate_record("clean-article", record)
    assert info.value.field == "tags[0].score"


def test_dead_letter_error_code_enum_is_exactly_the_error_codes():
    enum = load_schema("dead-letter")["properties"]["error_code"]["enum"]
    assert enum == list(ERROR_CODES)


def test_dead_letter_stage_enum_covers_every_stage_the_core_raises_in():
    stages = set(load_schema("dead-letter")["properties"]["stage"]["enum"])
    assert {"validate", "normalize", "dedup", "tag", "emit", "core"} <= stages


def test_readme_lists_every_error_code_and_schema_file():
    readme = (SCHEMA_DIR / "README.md").read_text(encoding="utf-8")
    for code in ERROR_CODES:
        assert f"`{code}`" in readme, code
    for name in SCHEMA_NAMES:
        assert f"`{name}.schema.json`" in readme, name


def test_times_must_be_utc_iso_8601_with_z_in_emitted_records():
    record = load(EXAMPLES_DIR / "trend" / "comments-1m.json")
    for good in ("2026-11-26T10:15:00Z", "2026-11-26T10:15:00.123Z", "2026-11-26T10:15:00.123456Z"):
        validate_record("trend", {**record, "emitted_at": good})
    for bad in ("2026-11-26T10:15:00+00:00", "2026-11-26 10:15:00Z", "2026-11-26", "yesterday",
                "2026-13-01T00:00:00Z", "2026-11-26T24:00:00Z"):  # fmt: skip
        with pytest.raises(ContractError):
            validate_record("trend", {**record, "emitted_at": bad})


def test_unknown_schema_name_is_a_clear_error():
    with pytest.raises(KeyError, match="unknown schema"):
        contracts.load_schema("raw-articles")


def test_validator_is_compiled_once_and_load_schema_returns_a_copy():
    assert validator("trend") is validator("trend")
    a = load_schema("trend")
    a["required"].append("x")
    assert "x" not in load_schema("trend")["required"]
