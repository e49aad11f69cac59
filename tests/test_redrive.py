"""Dead letters back into the records they were (pipeline/replay/deadletters.py), no broker."""

from __future__ import annotations

import orjson
import pytest

from pipeline.deadletter import dead_letter
from pipeline.errors import Rejected
from pipeline.replay.deadletters import (
    NOT_A_DEAD_LETTER,
    NOT_CODE,
    NOT_RAW,
    TRUNCATED,
    identity,
    unwrap,
)

RAW = {"articles": "p.raw.articles", "comments": "p.raw.comments"}


def letter(payload: bytes, *, topic: str = "p.raw.comments", key: bytes | None = b"k1",
           headers: list | None = None, code: str = "not_json", **kw) -> bytes:  # fmt: skip
    record = dead_letter(payload, error=Rejected(code, "why"), topic=topic, partition=2,
                         offset=41, key=key, headers=headers, **kw)  # fmt: skip
    return orjson.dumps(record)


@pytest.mark.parametrize(
    "payload", [b'{"text": "caf\xc3\xa9"}', b"\xff\xfe not utf-8", b"   ", b'{"a": "\\u0000"}']
)
def test_the_original_bytes_key_and_headers_come_back_exactly(payload: bytes) -> None:
    headers = [("trace", b"abc"), ("bin", b"\x00\xff"), ("replayed", b"")]
    out = unwrap(letter(payload, key=b"\xffkey", headers=headers), "kafka:p.dlq:0", 7, RAW)
    assert out.skipped is None and out.code == "not_json"
    event = out.event
    assert event is not None
    assert (event.value, event.key, event.headers) == (payload, b"\xffkey", headers)
    assert (event.stream, event.topic, event.origin, event.position) == (
        "comments",
        "p.raw.comments",
        "kafka:p.dlq:0",
        7,
    )


def test_a_letter_goes_back_only_to_this_deployments_raw_topic() -> None:
    for topic in ("other.raw.comments", "p.articles.neardup", "p.trend.events"):
        assert unwrap(letter(b"{}", topic=topic), "o", 1, RAW).skipped == NOT_RAW


def test_a_truncated_payload_is_evidence_and_is_not_sent() -> None:
    out = unwrap(letter(b"x" * 100, max_payload_bytes=10), "o", 1, RAW)
    assert out.skipped == TRUNCATED and out.event is None


def test_codes_not_asked_for_are_skipped_with_their_code() -> None:
    out = unwrap(letter(b"{}", code="not_json"), "o", 1, RAW, frozenset({"field.too_long"}))
    assert (out.code, out.skipped) == ("not_json", NOT_CODE)
    kept = unwrap(letter(b"{}", code="field.too_long"), "o", 1, RAW, frozenset({"field.too_long"}))
    assert kept.event is not None


@pytest.mark.parametrize("value", [b"", b"not json", b"[1]", b'{"payload": "x"}', None])
def test_a_record_that_is_not_a_dead_letter_is_skipped(value: bytes | None) -> None:
    assert unwrap(value, "o", 1, RAW).skipped == NOT_A_DEAD_LETTER


def test_two_letters_of_one_input_share_an_identity_and_other_inputs_do_not() -> None:
    def event(payload: bytes, key: bytes | None = b"k"):
        found = unwrap(letter(payload, key=key), "o", 1, RAW).event
        assert found is not None
        return found

    assert identity(event(b"{1")) == identity(event(b"{1"))
    assert identity(event(b"{1")) != identity(event(b"{2"))
    assert identity(event(b"{1", b"k")) != identity(event(b"{1", None))
