"""The compiled door (newspipe_native.Door) against the Python reference (`_py_decode`): where it
takes an event, the dict is the one orjson makes and the reference accepts, value for value and
type for type; everything else goes to the reference, so the public answer (dict, or Rejected
with its code, message and field) is always the reference's."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.datasets import ag_articles, fox_comments
from devtools.paths import SCHEMA_EXAMPLES, SEED
from pipeline import contracts
from pipeline.errors import Rejected
from pipeline.extract import extract_file
from pipeline.settings import Settings
from pipeline.validate import DoorValidator
from tests.test_validate import ARTICLE, COMMENT

DOOR = DoorValidator(Settings())
# small limits, so payloads around them stay small
SMALL = DoorValidator(
    replace(Settings(), max_field_chars=300, max_event_bytes=600, max_json_depth=6)
)
BASE = {"comments": COMMENT, "articles": ARTICLE}
SCHEMA_NAME = {"comments": "raw-comment", "articles": "raw-article"}
PROPERTIES = {
    stream: sorted(contracts.load_schema(name)["properties"])
    for stream, name in SCHEMA_NAME.items()
}


def same(a: Any, b: Any) -> bool:
    """Equal with the same types all the way down (1 is not 1.0, -0.0 is not 0.0) and the same
    key order."""
    if type(a) is not type(b):
        return False
    if type(a) is dict:
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if type(a) is list:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is float:
        return repr(a) == repr(b)
    return a == b


def reference(door: DoorValidator, stream: str, payload: Any) -> dict | Rejected:
    schema = door._article_schema if stream == "articles" else door._comment_schema
    try:
        return door._py_decode(payload, schema, stream == "articles")
    except Rejected as exc:
        return exc


def public(door: DoorValidator, stream: str, payload: Any) -> dict | Rejected:
    try:
        return door.decode(stream, payload)
    except Rejected as exc:
        return exc


def compiled(door: DoorValidator, stream: str, payload: Any) -> dict | None:
    return (door._article_door if stream == "articles" else door._comment_door)(payload)


def check(stream: str, payload: Any, door: DoorValidator = DOOR) -> dict | None:
    """The compiled answer (None or a dict) agrees with the reference, as does the public one."""
    fast = compiled(door, stream, payload)
    ref = reference(door, stream, payload)
    if fast is not None:
        assert isinstance(ref, dict), (payload, ref)
        assert same(fast, ref), (payload, fast, ref)
    out = public(door, stream, payload)
    if isinstance(ref, Rejected):
        assert isinstance(out, Rejected), (payload, out)
        assert (out.code, out.message, out.field, out.stage) == (
            ref.code, ref.message, ref.field, ref.stage,
        )  # fmt: skip
    else:
        assert same(out, ref), (payload, out, ref)
    return fast


# ---- the real data sets take the compiled path, unchanged


def test_every_real_comment_and_article_takes_the_compiled_door_with_the_reference_dict():
    for stream, events in (("comments", fox_comments()), ("articles", ag_articles())):
        for event in events:
            for payload in (orjson.dumps(event), json.dumps(event).encode()):
                assert check(stream, payload) is not None, event


def test_the_seed_page_and_the_schema_examples_get_the_reference_answers():
    page = extract_file(SEED)
    for comment in page.comments:
        assert check("comments", orjson.dumps(comment)) is not None
    check("articles", orjson.dumps(page.article))
    for stream, name in SCHEMA_NAME.items():
        for path in sorted((SCHEMA_EXAMPLES / name).glob("*.json")):
            check(stream, path.read_bytes())


# ---- generated payloads

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=20,
)  # fmt: skip
edge_values = json_values | st.sampled_from([
    1.0, -0.0, 2.5, 1e300, 5e-324, 2**53, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63),
    -(2**63) - 1, -1, 0, True, False, "", "1.0\n", " 1.0", "1.2", "1.10000", "2.0", "01.0",
    "x" * 16, "x" * 17, "𝕏" * 64, "𝕏" * 65, "\u00e9" * 256, "\u00e9" * 257, [], {}, [None],
    ["a", 1], {"page": 1, "pages": 0}, {"page": 1, "pages": 2}, {"page": 1}, [{"items": []}],
    [{"items": ["a"], "title": None}], [{"title": "t"}], "a\x00b", "a\x01b", "a\tb\x7f\x85",
])  # fmt: skip
# every way a C0 control, a surrogate or a quote gets into a JSON string
SPECIAL_CHARS = '\x00\x01\x08\t\n\x0b\x0c\r\x1f\x7f\x85"\\/\u2028\ufeff\U0001f600'
text_chars = st.text(
    alphabet=st.characters(codec="utf-8") | st.sampled_from(list(SPECIAL_CHARS)), max_size=40
)
encodings = st.sampled_from(["orjson", "ascii", "indent", "spaced"])
STREAMS = st.sampled_from(["comments", "articles"])


def encode(obj: Any, how: str) -> bytes:
    if how == "orjson":
        try:
            return orjson.dumps(obj)
        except TypeError:  # an int beyond 64 bits
            return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
    if how == "ascii":  # \uXXXX escapes, surrogate pairs
        return json.dumps(obj, ensure_ascii=True).encode()
    if how == "indent":
        return json.dumps(obj, ensure_ascii=False, indent=2).encode()
    return json.dumps(obj, ensure_ascii=False, separators=(" ,\r\n", " :\t")).encode()


@settings(max_examples=300, deadline=None)
@given(stream=STREAMS, data=st.data(), how=encodings)
def test_valid_and_near_valid_events_get_the_reference_answers(stream, data, how):
    """Known fields set to edge values (types, lengths around the limits, integral floats,
    versions), fields dropped, unknown fields of any JSON."""
    event = dict(BASE[stream])
    for field in data.draw(st.lists(st.sampled_from(PROPERTIES[stream]), max_size=3)):
        event[field] = data.draw(edge_values)
    for field in data.draw(st.lists(st.sampled_from(sorted(event)), max_size=1)):
        del event[field]
    event.update(data.draw(st.dictionaries(st.text(max_size=8), json_values, max_size=3)))
    check(stream, encode(event, how))
    check(stream, encode(event, how), SMALL)


@settings(max_examples=400, deadline=None)
@given(stream=STREAMS, text=text_chars, key=text_chars, how=encodings)
def test_control_characters_surrogates_and_escapes_get_the_reference_answers(
    stream, text, key, how
):
    event = {**BASE[stream], "text": text, "title": text, "mentions": [text], key: {key: text}}
    check(stream, encode(event, how))


@settings(max_examples=300, deadline=None)
@given(stream=STREAMS, raw=st.sampled_from([
    "\\ud800", "\\udc00", "\\ud83d\\ude00", "\\ud83d", "\\ud83dx", "\\ud83d\\u0041",
    "\\udfff\\ud800", "\\u0000", "\\u001f", "\\u0020", "\\u007f", "\\b", "\\f", "\\t", "\\n",
    "\\r", "\\/", "\\\\", "\\\"", "\\u00e9", "\\u00E9", "\\uDBFF\\uDFFF", "\\x41", "\\u12",
    "\\u12g4", "\\", "\\U0041", "\\'", "\\a", "\x7f", "\u2028",
]), prefix=st.text(max_size=5), where=st.sampled_from(["value", "key"]))  # fmt: skip
def test_escapes_written_by_hand_get_the_reference_answers(stream, raw, prefix, where):
    """Escapes no encoder writes: lone and reversed surrogates, short, invalid ones."""
    quoted = orjson.dumps(prefix)[:-1] + raw.encode() + b'"'
    head = orjson.dumps(BASE[stream])[:-1]
    if where == "value":
        payload = head + b',"text":' + quoted + b"}"
    else:
        payload = head + b"," + quoted + b":1}"
    check(stream, payload)


@settings(max_examples=300, deadline=None)
@given(stream=STREAMS, number=st.one_of(
    st.from_regex(r"\A-?(0|[1-9][0-9]{0,25})(\.[0-9]{1,20})?([eE][+-]?[0-9]{1,3})?\Z"),
    st.integers().map(str),
    st.floats(allow_nan=False).map(repr),
    st.sampled_from(["01", "-", "1.", ".5", "1e", "+1", "-01", "1.e5", "Infinity", "NaN",
                     "-0", "-0.0", "0e0", "1E400", "4.9e-324", "2.4703282292062327e-324",
                     "9223372036854775807", "9223372036854775808", "-9223372036854775808",
                     "-9223372036854775809", "18446744073709551615", "18446744073709551616"]),
), field=st.sampled_from(["number", "extra", "comment_count"]))  # fmt: skip
def test_numbers_are_the_values_orjson_makes(stream, number, field):
    payload = orjson.dumps(BASE[stream])[:-1] + f',"{field}":{number}'.encode() + b"}"
    check(stream, payload)
    check(stream, orjson.dumps(BASE[stream])[:-1] + f',"l":[{number}, {number}]'.encode() + b"}")


@settings(max_examples=150, deadline=None)
@given(stream=STREAMS, data=st.data(), how=encodings)
def test_duplicate_keys_anywhere_get_the_reference_answers(stream, data, how):
    event = {**BASE[stream], **data.draw(st.dictionaries(st.text(max_size=4), json_values,
                                                          max_size=20))}  # fmt: skip
    body = encode(event, how)
    key = orjson.dumps(data.draw(st.sampled_from(sorted(event))))
    value = encode(data.draw(json_values), "orjson")
    nested = data.draw(st.booleans())
    if nested:  # a repeat inside a nested object of a free field
        many = data.draw(st.integers(1, 40))
        inner = b"{" + b",".join(orjson.dumps(f"k{i}") + b":1" for i in range(many))
        payload = body[:-1] + b',"nested":' + inner + b"," + orjson.dumps(
            f"k{data.draw(st.integers(0, many))}") + b":" + value + b"}}"  # fmt: skip
    else:
        payload = b"{" + key + b":" + value + b"," + body.lstrip()[1:]
    check(stream, payload)


@settings(max_examples=200, deadline=None)
@given(stream=STREAMS, depth=st.integers(1, 80), kind=st.sampled_from(["[", "{"]))
def test_nesting_around_the_limits_gets_the_reference_answers(stream, depth, kind):
    if kind == "[":
        inner = b"[" * depth + b"]" * depth
    else:
        inner = b'{"a":' * depth + b"1" + b"}" * depth
    payload = orjson.dumps(BASE[stream])[:-1] + b',"deep":' + inner + b"}"
    check(stream, payload)
    check(stream, payload, SMALL)


@settings(max_examples=200, deadline=None)
@given(
    stream=STREAMS,
    size=st.integers(0, 700),
    field=st.sampled_from(["text", "body", "html", "extra", "notes"]),
)
def test_fields_and_payloads_around_the_size_limits_get_the_reference_answers(stream, size, field):
    value: Any = "é" * size if size % 2 else "x" * size
    if field == "notes":
        value = [value]
    payload = orjson.dumps({**BASE[stream], field: value})
    check(stream, payload, SMALL)
    check(stream, payload)


SPECIAL = [b'"', b"\\", b"{", b"}", b"[", b"]", b",", b":", b" ", b"\x00", b"\xff", b"\xc3",
           b"\xed\xa0\x80", b"u", b"0", b"-", b".", b"e", b"n", b"\xef\xbb\xbf"]  # fmt: skip


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=STREAMS, data=st.data(), how=encodings)
def test_mutated_payloads_and_non_utf8_get_the_reference_answers(stream, data, how):
    """Valid payloads with bytes inserted, replaced, deleted or cut off: truncated JSON, bad
    UTF-8, a BOM, stray structure."""
    event = {**BASE[stream], **data.draw(st.dictionaries(st.text(max_size=4), json_values,
                                                          max_size=3))}  # fmt: skip
    payload = bytearray(encode(event, how))
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(payload)))
        op = data.draw(st.sampled_from(["insert", "replace", "delete", "cut"]))
        piece = data.draw(st.sampled_from(SPECIAL) | st.binary(min_size=1, max_size=2))
        if op == "insert":
            payload[at:at] = piece
        elif op == "replace":
            payload[at : at + len(piece)] = piece
        elif op == "delete":
            del payload[at : at + 1]
        else:
            del payload[at:]
    check(stream, bytes(payload))


@settings(max_examples=300, deadline=None)
@given(stream=STREAMS, payload=st.binary(max_size=200) | st.sampled_from(
    [None, b"", b" ", b"{}", b"[]", b"1", b'"x"', b"null", b" {} ", b"{} x"]))  # fmt: skip
def test_arbitrary_bytes_get_the_reference_answers(stream, payload):
    check(stream, payload)


def test_str_bytearray_and_memoryview_payloads_take_the_python_path_with_its_answers():
    payload = orjson.dumps(COMMENT)
    for other in (payload.decode(), bytearray(payload), memoryview(payload)):
        assert compiled(DOOR, "comments", other) is None
        assert check("comments", other) is None


# ---- the compiled schema: what it does not evaluate, it never accepts


def door_for(schema: dict, patterns: dict | None = None) -> Any:
    from newspipe_native import Door

    return Door(schema, patterns or {}, "schema_version", lambda v: v == "1.0", 1000, 10).decode


@pytest.mark.parametrize("extra", [
    {"format": "date-time"}, {"enum": ["a"]}, {"const": "a"}, {"maxItems": 1},
    {"additionalProperties": {"type": "string"}}, {"anyOf": [{"type": "string"}]},
    {"items": [{"type": "string"}]}, {"minimum": 1.5}, {"pattern": "^a"},
    {"$ref": "#/$defs/missing"}, {"not": {}}, {"if": {}},
])  # fmt: skip
def test_a_schema_keyword_the_door_does_not_evaluate_makes_it_answer_none(extra):
    event = b'{"schema_version":"1.0","a":"a"}'
    assert door_for({"type": "object", "properties": {"a": {}}})(event) is not None
    assert door_for({"type": "object", "properties": {"a": extra}})(event) is None


def test_a_recursive_ref_is_followed_and_a_cycle_of_refs_answers_none():
    kids = {"kids": {"type": "array", "items": {"$ref": "#/$defs/t"}}}
    tree = {"type": "object", "properties": kids,
            "$defs": {"t": {"type": "object", "properties": kids}}}  # fmt: skip
    door = door_for(tree)
    assert door(b'{"schema_version":"1.0","kids":[{"kids":[{"kids":[]}]}]}') is not None
    assert door(b'{"schema_version":"1.0","kids":[{"kids":[{"kids":1}]}]}') is None
    loop = {"type": "object", "properties": {"a": {"$ref": "#/$defs/x"}},
            "$defs": {"x": {"$ref": "#/$defs/y"}, "y": {"$ref": "#/$defs/x"}}}  # fmt: skip
    assert door_for(loop)(b'{"schema_version":"1.0","a":1}') is None
    assert door_for(loop)(b'{"schema_version":"1.0"}') is not None


def test_the_version_check_and_patterns_are_asked_of_python():
    door = door_for({"type": "object"})
    assert door(b'{"schema_version":"1.0"}') is not None
    assert door(b'{"schema_version":"1.1"}') is None
    assert door(b'{"schema_version":1.0}') is None
    assert door(b"{}") is None
    import re

    patterned = {"type": "object", "properties": {"a": {"pattern": "^a"}}}
    door = door_for(patterned, {"^a": re.compile("^a")})
    assert door(b'{"schema_version":"1.0","a":"ab"}') is not None
    assert door(b'{"schema_version":"1.0","a":"ba"}') is None
    assert door(b'{"schema_version":"1.0","a":1}') is not None  # a pattern only binds strings


def test_twenty_thousand_number_literals_are_the_values_orjson_makes():
    """Random doubles' shortest and long (15-40 digit, near-halfway) spellings, long mantissas
    with exponents at both ends of the range, ints past 64 bits: each value and type where the
    door takes it (floats both sides round correctly, so they are equal, not merely close)."""
    import random
    import struct

    from newspipe_native import Door

    door = Door({"type": "object"}, {}, "v", lambda v: True, 10**6, 64).decode
    rng = random.Random(7)
    taken = 0
    for i in range(20_000):
        f = struct.unpack("d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        if f != f or f in (float("inf"), float("-inf")):
            f = 0.5
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 30)))
        literal = [
            repr(f),
            f"{f:.{rng.randint(15, 40)}e}",
            f"-{digits.lstrip('0') or '0'}.{digits}e{rng.randint(-340, 310)}",
            str(rng.randint(-(2**70), 2**70)),
        ][i % 4]
        payload = b'{"v":"1","x":' + literal.encode() + b"}"
        got = door(payload)
        if got is not None:
            taken += 1
            want = orjson.loads(payload)["x"]
            assert type(got["x"]) is type(want) and repr(got["x"]) == repr(want), literal
    assert taken > 12_000  # ints past 64 bits and overflowing exponents take the Python path
