"""Validation at the door and dead letters: every kind of bad input gets its code (never a crash),
valid events of any minor pass, and every dead letter is a valid, producible DLQ record."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.datasets import ag_articles, fox_comments
from devtools.paths import SCHEMA_EXAMPLES as EXAMPLES_DIR
from pipeline import __version__, contracts
from pipeline.contracts import validate_record
from pipeline.deadletter import DLQ_PAYLOAD_JSON_BYTES, dead_letter
from pipeline.errors import ERROR_CODES, Rejected
from pipeline.settings import Settings
from pipeline.validate import MAX_KEY_BYTES, DoorValidator

DOOR = DoorValidator(Settings())
ARTICLE = {
    "schema_version": "1.0",
    "source": "test",
    "url": "https://example.com/news/1",
    "title": "Valid article",
    "body": "A perfectly ordinary body paragraph.",
}
COMMENT = {
    "schema_version": "1.0",
    "source": "test",
    "article_url": "https://example.com/news/1",
    "source_comment_id": "1",
    "author": "reader1",
    "text": "An ordinary reader comment, with a few words.",
}


def dumps(obj) -> bytes:
    return orjson.dumps(obj)


def rejected(stream: str, payload, door: DoorValidator = DOOR) -> Rejected:
    with pytest.raises(Rejected) as info:
        door.decode(stream, payload)
    assert info.value.stage == "validate"
    assert info.value.code in ERROR_CODES
    assert info.value.message
    return info.value


BAD = [
    # (id, stream, payload, expected code)
    ("not-json", "articles", b"this is not json", "not_json"),
    (
        "truncated-json",
        "articles",
        b'{"schema_version": "1.0", "source": "x", "title": "tru',
        "not_json",
    ),
    ("trailing-garbage", "comments", dumps(COMMENT) + b"}", "not_json"),
    ("byte-order-mark", "comments", b"\xef\xbb\xbf" + dumps(COMMENT), "not_json"),
    (
        "lone-surrogate-escape",
        "comments",
        dumps(COMMENT).replace(b"An ordinary", b"\\ud800"),
        "not_json",
    ),
    ("invalid-utf8", "comments", b'{"text": "\xff\xfe broken utf8"}', "not_utf8"),
    ("invalid-utf8-not-json-either", "comments", b"\xff\xfe\x00", "not_utf8"),
    ("encoded-surrogate", "comments", dumps(COMMENT).replace(b"An", b"\xed\xa0\x80"), "not_utf8"),
    ("array", "articles", b"[1, 2, 3]", "not_object"),
    ("number", "articles", b"42", "not_object"),
    ("null", "comments", b"null", "not_object"),
    ("string", "comments", b'"a string"', "not_object"),
    ("empty", "articles", b"", "empty"),
    ("none", "articles", None, "empty"),
    ("whitespace-only", "articles", b"   \n\t  \r ", "empty"),
    ("oversized", "articles", dumps({**ARTICLE, "body": "x" * (1024 * 1024 + 10)}), "too_large"),
    ("deep-arrays-10000", "articles", b"[" * 10_000 + b"]" * 10_000, "json.too_deep"),
    ("deep-objects-10000", "comments", b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "json.too_deep"),
    ("deep-unclosed", "comments", b"[" * 10_000, "json.too_deep"),
    (
        "deep-65-inside-an-event",
        "comments",
        dumps(COMMENT)[:-1] + b',"extra":' + b"[" * 64 + b"]" * 64 + b"}",
        "json.too_deep",
    ),
    (
        "duplicate-key",
        "comments",
        b'{"schema_version": "1.0", "source": "t", "text": "a", "text": "b"}',
        "json.duplicate_key",
    ),
    (
        "duplicate-key-nested",
        "articles",
        b'{"schema_version":"1.0","source":"t","title":"a","pagination":{"page":1,"page":2}}',
        "json.duplicate_key",
    ),
    ("duplicate-key-in-list", "comments", b'[{"a":1},{"b":"x:y","b":2}]', "json.duplicate_key"),
    (
        "duplicate-key-escaped-colon",
        "comments",
        b'{"schema_version":"1.0","source":"t","text":"a","k\\u003a":1,"k:":2}',
        "json.duplicate_key",
    ),
    (
        "duplicate-key-spelled-with-escape",
        "comments",
        b'{"schema_version":"1.0","source":"t","text":"a","\\u0074ext":"b"}',
        "json.duplicate_key",
    ),
    (
        "missing-schema-version",
        "comments",
        dumps({k: v for k, v in COMMENT.items() if k != "schema_version"}),
        "schema.missing_field",
    ),
    (
        "null-schema-version",
        "comments",
        dumps({**COMMENT, "schema_version": None}),
        "schema.wrong_type",
    ),
    (
        "number-schema-version",
        "comments",
        dumps({**COMMENT, "schema_version": 1.0}),
        "schema.wrong_type",
    ),
    (
        "malformed-schema-version",
        "comments",
        dumps({**COMMENT, "schema_version": "1.0.0"}),
        "schema.invalid_value",
    ),
    (
        "unknown-major",
        "articles",
        dumps({**ARTICLE, "schema_version": "9.0"}),
        "unknown_schema_major",
    ),
    ("major-2", "comments", dumps({**COMMENT, "schema_version": "2.0"}), "unknown_schema_major"),
    ("major-0", "comments", dumps({**COMMENT, "schema_version": "0.9"}), "unknown_schema_major"),
    (
        "missing-text",
        "comments",
        dumps({k: v for k, v in COMMENT.items() if k != "text"}),
        "schema.missing_field",
    ),
    (
        "missing-source",
        "articles",
        dumps({k: v for k, v in ARTICLE.items() if k != "source"}),
        "schema.missing_field",
    ),
    (
        "no-title-body-or-html",
        "articles",
        dumps({"schema_version": "1.0", "source": "t", "url": "https://x"}),
        "schema.missing_field",
    ),
    ("number-is-a-string", "comments", dumps({**COMMENT, "number": "seven"}), "schema.wrong_type"),
    ("text-is-a-number", "comments", dumps({**COMMENT, "text": 7}), "schema.wrong_type"),
    ("number-is-bool", "comments", dumps({**COMMENT, "number": True}), "schema.wrong_type"),
    (
        "mentions-not-strings",
        "comments",
        dumps({**COMMENT, "mentions": ["a", 3]}),
        "schema.wrong_type",
    ),
    ("negative-number", "comments", dumps({**COMMENT, "number": -1}), "schema.invalid_value"),
    ("empty-source", "comments", dumps({**COMMENT, "source": ""}), "schema.invalid_value"),
    (
        "page-zero",
        "articles",
        dumps({**ARTICLE, "pagination": {"page": 0, "pages": 1}}),
        "schema.invalid_value",
    ),
    ("field-too-long", "articles", dumps({**ARTICLE, "body": "x" * 200_001}), "field.too_long"),
    (
        "nul-in-text",
        "comments",
        dumps({**COMMENT, "text": "nul \x00 inside"}),
        "field.control_chars",
    ),
    (
        "nul-in-mentions",
        "comments",
        dumps({**COMMENT, "mentions": ["ok", "a\x00"]}),
        "field.control_chars",
    ),
    (
        "nul-in-unknown-field",
        "comments",
        dumps({**COMMENT, "extra": {"x": ["\x00"]}}),
        "field.control_chars",
    ),
    ("nul-in-a-key", "comments", dumps({**COMMENT, "bad\x00key": 1}), "field.control_chars"),
]


@pytest.mark.parametrize(("stream", "payload", "code"), [b[1:] for b in BAD],
                         ids=[b[0] for b in BAD])  # fmt: skip
def test_bad_input_is_rejected_with_its_code(stream, payload, code):
    assert rejected(stream, payload).code == code


@pytest.mark.parametrize(("stream", "payload", "code"), [b[1:] for b in BAD],
                         ids=[b[0] for b in BAD])  # fmt: skip
def test_every_bad_input_makes_a_valid_dead_letter(stream, payload, code):
    error = rejected(stream, payload)
    topic = f"raw.{stream}"
    letter = dead_letter(payload, error=error, topic=topic, partition=0, offset=12, key=b"k",
                         headers=[("test-seq", b"3")])  # fmt: skip
    validate_record("dead-letter", letter)
    assert letter["error_code"] == code
    assert letter["original_topic"] == topic
    assert dict(letter["headers"])["test-seq"] == "3"
    assert len(orjson.dumps(letter)) < 900_000


def test_deep_payloads_are_rejected_fast():
    for payload in (b"[" * 10_000 + b"]" * 10_000, b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
                    b"[" * 100_000 + b"]" * 100_000, b'{"a":[' * 60 + b"]}" * 60):  # fmt: skip
        t0 = time.perf_counter()
        assert rejected("comments", payload).code == "json.too_deep"
        assert time.perf_counter() - t0 < 0.05


def test_nesting_up_to_the_limit_is_accepted_and_one_more_is_not():
    door = DoorValidator(replace(Settings(), max_json_depth=8))
    # the event object is level 1, so "extra" may nest 7 more levels
    ok = dumps(COMMENT)[:-1] + b',"extra":' + b"[" * 7 + b"]" * 7 + b"}"
    assert door.raw_comment(ok)["extra"] == [[[[[[[]]]]]]]
    too_deep = dumps(COMMENT)[:-1] + b',"extra":' + b"[" * 8 + b"]" * 8 + b"}"
    assert rejected("comments", too_deep, door).code == "json.too_deep"
    objects = dumps(COMMENT)[:-1] + b',"extra":' + b'{"a":' * 8 + b"1" + b"}" * 8 + b"}"
    assert rejected("comments", objects, door).code == "json.too_deep"


def test_oversized_payload_is_rejected_before_parsing():
    door = DoorValidator(replace(Settings(), max_event_bytes=100))
    error = rejected("comments", b"{" + b" " * 200, door)  # not JSON, but too big first
    assert error.code == "too_large"
    assert "201 bytes" in error.message


def test_the_size_limit_is_inclusive():
    payload = dumps(COMMENT)
    door = DoorValidator(replace(Settings(), max_event_bytes=len(payload)))
    assert door.raw_comment(payload)["text"] == COMMENT["text"]
    assert rejected("comments", payload + b" ", DoorValidator(
        replace(Settings(), max_event_bytes=len(payload)))).code == "too_large"  # fmt: skip


def test_error_messages_name_the_field():
    missing = rejected("comments", dumps({k: v for k, v in COMMENT.items() if k != "text"}))
    assert missing.field == "text"
    assert "field 'text' is required" in missing.message
    wrong = rejected("comments", dumps({**COMMENT, "number": "seven"}))
    assert wrong.field == "number"
    assert "field 'number' must be integer" in wrong.message
    too_long = rejected("articles", dumps({**ARTICLE, "captions": ["ok", "x" * 200_001]}))
    assert too_long.code == "field.too_long"
    assert too_long.field == "captions[1]"
    nul = rejected("comments", dumps({**COMMENT, "text": "a\x00b"}))
    assert nul.field == "text"
    dup = rejected("comments", b'{"schema_version":"1.0","source":"t","text":"a","text":"b"}')
    assert dup.field == "text"
    assert "'text'" in dup.message


@pytest.mark.parametrize("version", [[], ["1.0"], {}, {"major": 1}])
def test_a_schema_version_that_is_a_list_or_an_object_is_a_wrong_type(version):
    error = rejected("comments", dumps({**COMMENT, "schema_version": version}))
    assert error.code == "schema.wrong_type"
    assert error.field == "schema_version"


def test_field_limit_follows_settings():
    door = DoorValidator(replace(Settings(), max_field_chars=60))
    assert door.raw_comment(dumps({**COMMENT, "text": "x" * 60}))["text"] == "x" * 60
    error = rejected("comments", dumps({**COMMENT, "text": "x" * 61}), door)
    assert error.code == "field.too_long"
    assert error.field == "text"


def test_control_characters_other_than_nul_become_spaces_and_tab_newline_stay():
    text = "a\x01b\x08c\x0bd\x0ce\x1bf\x1fg\th\ni\rj\x7fk"
    event = DOOR.raw_comment(dumps({**COMMENT, "text": text, "mentions": ["x\x02y"]}))
    assert event["text"] == "a b c d e f g\th\ni\rj\x7fk"
    assert event["mentions"] == ["x y"]


def test_short_escapes_for_backspace_and_form_feed_are_caught_too():
    payload = b'{"schema_version":"1.0","source":"t","text":"a\\bb\\fc\\\\bd"}'
    assert DOOR.raw_comment(payload)["text"] == "a b c\\bd"


def test_nul_is_rejected_even_with_other_controls_and_leaves_the_input_alone():
    event = {**COMMENT, "text": "a\x01b", "author": "x\x00"}
    error = rejected("comments", dumps(event))
    assert error.code == "field.control_chars"
    assert error.field == "author"


VALID_EXAMPLES = sorted(
    [("articles", p) for p in (EXAMPLES_DIR / "raw-article").glob("*.json")]
    + [("articles", p) for p in (EXAMPLES_DIR / "compat" / "raw-article").glob("*.json")]
    + [("comments", p) for p in (EXAMPLES_DIR / "raw-comment").glob("*.json")]
    + [("comments", p) for p in (EXAMPLES_DIR / "compat" / "raw-comment").glob("*.json")]
)


@pytest.mark.parametrize(
    ("stream", "path"),
    VALID_EXAMPLES,
    ids=[str(p.relative_to(EXAMPLES_DIR)) for _, p in VALID_EXAMPLES],
)
def test_raw_examples_pass_the_door_unchanged(stream, path):
    payload = path.read_bytes()
    assert DOOR.decode(stream, payload) == json.loads(payload)


def test_an_event_of_the_oldest_minor_with_only_required_fields_is_accepted():
    event = {"schema_version": "1.0", "source": "foxnews", "text": "Merkel would never say NO"}
    assert DOOR.raw_comment(dumps(event)) == event


def test_a_future_minor_with_unknown_fields_is_accepted_and_the_fields_kept():
    event = {**ARTICLE, "schema_version": "1.7", "section": "Asia", "authors": [{"name": "x"}],
             "word_count_hint": 5, "paywall": None}  # fmt: skip
    assert DOOR.raw_article(dumps(event)) == event


def test_every_real_fox_news_comment_and_ag_news_item_passes_the_door():
    for event in fox_comments():
        assert DOOR.raw_comment(dumps(event)) == event
    for event in ag_articles():
        assert DOOR.raw_article(dumps(event)) == event


def test_pretty_printed_json_with_colons_in_text_is_not_a_duplicate():
    event = {**ARTICLE, "title": "Breaking: a:b::c", "published_at": "2026-11-26T10:15:00Z",
             "pagination": {"page": 1, "pages": 2}, "fact_boxes": [{"title": "k:", "items": []}],
             "a:b": "key with a colon"}  # fmt: skip
    for payload in (json.dumps(event).encode(), json.dumps(event, indent=2).encode(),
                    json.dumps(event, ensure_ascii=True).encode(), dumps(event)):  # fmt: skip
        assert DOOR.raw_article(payload) == event


def test_key_absent_is_fine_but_empty_or_huge_is_invalid():
    DOOR.check_key(None)
    DOOR.check_key(b"a-0123456789abcdef")
    DOOR.check_key(b"k" * MAX_KEY_BYTES)
    for key in (b"", b"k" * (MAX_KEY_BYTES + 1), b"k" * 5000):
        with pytest.raises(Rejected) as info:
            DOOR.check_key(key)
        assert info.value.code == "key.invalid"
        assert info.value.field == "key"


def test_decode_refuses_an_unknown_stream_name():
    with pytest.raises(ValueError, match="unknown stream"):
        DOOR.decode("raw.articles", dumps(ARTICLE))


# ---- properties

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=20,
)  # fmt: skip


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=st.binary(max_size=300), stream=st.sampled_from(["articles", "comments"]))
def test_arbitrary_bytes_raise_nothing_but_rejected(payload, stream):
    try:
        out = DOOR.decode(stream, payload)
    except Rejected as exc:
        assert exc.code in ERROR_CODES
    else:
        assert isinstance(out, dict)


@settings(max_examples=300, deadline=None)
@given(value=json_values, stream=st.sampled_from(["articles", "comments"]))
def test_arbitrary_json_raises_nothing_but_rejected(value, stream):
    try:
        DOOR.decode(stream, dumps(value))
    except Rejected as exc:
        assert exc.code in ERROR_CODES


# extra = fields the schema does not know (a known field with a wrong type is a schema error)
SCHEMA_FILE = Path(__file__).parent.parent / "schemas" / "raw-comment.schema.json"
RAW_COMMENT_FIELDS = set(json.loads(SCHEMA_FILE.read_text())["properties"])


@settings(max_examples=300, deadline=None)
@given(extra=st.dictionaries(st.text(max_size=8).filter(lambda k: k not in RAW_COMMENT_FIELDS),
                             json_values, max_size=5),
       text=st.text(max_size=50))  # fmt: skip
def test_valid_comments_with_arbitrary_extra_fields_pass_or_fail_only_on_controls(extra, text):
    event = {**COMMENT, "text": text, **extra}
    for payload in (dumps(event), json.dumps(event, indent=1).encode()):
        try:
            out = DOOR.raw_comment(payload)
        except Rejected as exc:
            assert exc.code == "field.control_chars"
            assert "\\u0000" in json.dumps(event)
        else:
            assert set(out) == set(event)


@settings(max_examples=300, deadline=None)
@given(obj=st.dictionaries(st.text(max_size=6), json_values, min_size=1, max_size=6),
       value=json_values)  # fmt: skip
def test_a_repeated_key_is_always_found(obj, value):
    key = next(iter(obj))
    payload = b"{" + dumps(key) + b":" + dumps(value) + b"," + dumps(obj)[1:]
    assert rejected("comments", payload).code == "json.duplicate_key"


# ---- dead letters


def letter_for(payload, **kw):
    args = {"error": Rejected("not_json", "the payload is not JSON"), "topic": "raw.comments",
            "partition": 1, "offset": 99, "key": b"a-1", "headers": []}  # fmt: skip
    args.update(kw)
    letter = dead_letter(payload, **args)
    validate_record("dead-letter", letter)
    assert len(orjson.dumps(letter)) < 900_000
    return letter


def test_dead_letter_keeps_text_as_text_and_binary_as_base64():
    text = letter_for(b'{"a": "caf\xc3\xa9"}')
    assert text["payload"] == '{"a": "café"}' and text["payload_b64"] is None
    binary = letter_for(b"\xff\xfe\x00", key=b"\xff")
    assert binary["payload"] is None
    assert base64.b64decode(binary["payload_b64"]) == b"\xff\xfe\x00"
    assert binary["key"] is None and base64.b64decode(binary["key_b64"]) == b"\xff"
    assert binary["payload_bytes"] == 3


def test_dead_letter_of_a_null_payload_and_no_key():
    letter = letter_for(None, key=None, headers=None, error=Rejected("empty", "no payload"))
    assert letter["payload"] is None and letter["payload_b64"] is None
    assert letter["payload_bytes"] == 0 and letter["key"] is None and letter["headers"] == []


def test_dead_letter_headers_are_pairs_with_binary_values_in_base64():
    letter = letter_for(b"x", headers=[("seq", b"7"), ("sig", b"\xff\xfe"), ("none", None)])
    assert letter["headers"] == [["seq", "7"], ["sig", base64.b64encode(b"\xff\xfe").decode()],
                                 ["none", None]]  # fmt: skip
    assert letter["headers_b64"] == [1]


def test_dead_letter_records_the_error_and_where_the_record_came_from():
    error = Rejected("schema.wrong_type", "field 'number' must be integer", "number")
    letter = letter_for(b"{}", error=error, now="2026-11-26T10:15:00Z")
    assert letter["error_code"] == "schema.wrong_type"
    assert letter["field"] == "number"
    assert letter["stage"] == "validate"
    assert letter["failed_at"] == "2026-11-26T10:15:00Z"
    assert letter["pipeline_version"] == __version__
    assert (letter["original_topic"], letter["partition"], letter["offset"]) == ("raw.comments", 1,
                                                                                99)  # fmt: skip
    assert letter_for(b"{}")["failed_at"].endswith("Z")


def test_an_internal_error_from_the_core_makes_a_valid_dead_letter():
    letter = letter_for(b"{}", error=Rejected("internal", "KeyError: 'x'", stage="core"),
                        max_payload_bytes=1024 * 1024)  # fmt: skip
    assert letter["stage"] == "core"


@pytest.mark.parametrize(
    "payload",
    [
        b"x" * (3 * 1024 * 1024),
        "é".encode() * (1024 * 1024),
        b'"' * (1024 * 1024),
        dumps({"text": "\x00" * 1024 * 1024}),  # escapes as \u0000: 6 bytes per input byte
        b"\x01" * (1024 * 1024),  # JSON-escaped as \u0001 in the DLQ record
        b"\xff" * (2 * 1024 * 1024),
    ],
    ids=["ascii-3mib", "two-byte-chars", "quotes", "nul-escapes", "raw-controls", "binary-2mib"],
)
def test_a_huge_payload_is_truncated_so_the_dead_letter_fits_in_one_kafka_message(payload):
    letter = letter_for(payload, error=Rejected("too_large", "too big"))
    assert letter["payload_truncated"] is True
    assert letter["payload_bytes"] == len(payload)
    stored = (letter["payload"].encode() if letter["payload"] is not None
              else base64.b64decode(letter["payload_b64"]))  # fmt: skip
    assert payload.startswith(stored)
    assert len(stored) > 100_000
    assert len(orjson.dumps(letter["payload"] or letter["payload_b64"])) <= DLQ_PAYLOAD_JSON_BYTES


def test_a_payload_under_the_limit_is_kept_whole():
    payload = dumps({**COMMENT, "text": "y" * 500_000})
    letter = letter_for(payload)
    assert letter["payload_truncated"] is False and letter["payload"] == payload.decode()


def test_max_payload_bytes_only_lowers_the_cut():
    letter = letter_for(b"x" * 5000, max_payload_bytes=1000)
    assert letter["payload"] == "x" * 1000 and letter["payload_truncated"] is True


def test_huge_keys_and_many_headers_are_cut_and_flagged():
    letter = letter_for(
        b"{}", key=b"k" * 5000, headers=[(f"h{i}", b"v" * 10_000) for i in range(100)]
    )
    assert letter["key"] == "k" * 4096 and letter["key_truncated"] is True
    assert len(letter["headers"]) == 64 and letter["headers_truncated"] is True
    assert all(len(v) == 4096 for _, v in letter["headers"])


@settings(max_examples=200, deadline=None)
@given(payload=st.none() | st.binary(max_size=200), key=st.none() | st.binary(max_size=50),
       headers=st.lists(st.tuples(st.text(max_size=10), st.none() | st.binary(max_size=20)),
                        max_size=4),
       code=st.sampled_from(sorted(ERROR_CODES)))  # fmt: skip
def test_every_dead_letter_validates_and_keeps_the_original_bytes(payload, key, headers, code):
    letter = letter_for(payload, key=key, headers=headers, error=Rejected(code, "why"))

    def restore(text, b64):
        return b64decode_or_text(text, b64)

    assert restore(letter["payload"], letter["payload_b64"]) == payload
    assert restore(letter["key"], letter["key_b64"]) == key
    for i, (name, value) in enumerate(letter["headers"]):
        original = headers[i][1]
        got = None if value is None else (base64.b64decode(value) if i in letter["headers_b64"]
                                          else value.encode())  # fmt: skip
        assert (name, got) == (headers[i][0], original)


def b64decode_or_text(text: str | None, b64: str | None) -> bytes | None:
    if b64 is not None:
        return base64.b64decode(b64)
    return None if text is None else text.encode()


# -- the quick check (jsonschema-rs) never lets through what fastjsonschema refuses --------------
RAW_SCHEMAS = {
    name: json.loads((SCHEMA_FILE.parent / f"{name}.schema.json").read_text())
    for name in ("raw-comment", "raw-article")
}
edge_values = json_values | st.sampled_from([
    1.0, -0.0, 2.5, 2**53, 2**63, 2**64 - 1, -(2**63), True, False, "", "1.0\n", " 1.0",
    "x" * 16, "x" * 17, "𝕏" * 64, "𝕏" * 65, "\u00e9" * 256, "\u00e9" * 257, [], {}, [None],
])  # fmt: skip


@settings(max_examples=600, deadline=None)
@given(name=st.sampled_from(sorted(RAW_SCHEMAS)), data=st.data())
def test_the_quick_schema_check_accepts_nothing_fastjsonschema_refuses(name, data):
    """Known fields set to edge values (types, integral floats, lengths in code points around
    the limits, a pattern's `$` before a final newline): where jsonschema-rs says valid,
    fastjsonschema must too, since only a no from the quick check is looked at again."""
    base = dict(COMMENT if name == "raw-comment" else ARTICLE)
    fields = sorted(RAW_SCHEMAS[name]["properties"])
    for field in data.draw(st.lists(st.sampled_from(fields), min_size=1, max_size=3)):
        base[field] = data.draw(edge_values)
    if contracts.quick_check(name)(base):
        contracts.validator(name)(base)  # raises if it refuses


def test_the_quick_schema_check_accepts_every_real_event():
    quick_comment, quick_article = (
        contracts.quick_check(n) for n in ("raw-comment", "raw-article")
    )
    assert all(quick_comment(event) for event in fox_comments())
    assert all(quick_article(event) for event in ag_articles())
