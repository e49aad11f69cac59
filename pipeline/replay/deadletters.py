"""Dead letters back into raw events, for `newspipe replay --from-dlq` (the redrive).

A dead letter (schemas/dead-letter.schema.json, built by pipeline/deadletter.py) keeps the
original record's bytes, key and headers as text or base64. `unwrap` rebuilds them exactly, or
says why the letter cannot be redriven: a truncated payload is evidence, not input, and a letter
from an internal topic does not hold a raw event.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import orjson
import xxhash

from pipeline.replay.events import Event, guess_stream, stream_of_topic

# why a dead letter is not sent, as the summary shows it
TRUNCATED = "truncated when dead-lettered (evidence only)"
NO_PAYLOAD = "no payload (a tombstone)"
NOT_A_DEAD_LETTER = "not a dead-letter record"
NOT_RAW = "from a topic that is not this deployment's raw topic"
NOT_CODE = "error code not asked for (--code)"
REPEATED = "the same record again (sent once per run)"


@dataclass(frozen=True, slots=True)
class Unwrapped:
    """One dead letter: its code, and the event to send or the reason it is skipped."""

    code: str | None
    event: Event | None = None
    skipped: str | None = None


def unwrap(
    value: bytes | None,
    origin: str,
    position: int,
    raw_topics: dict[str, str],
    codes: frozenset[str] = frozenset(),
) -> Unwrapped:
    """The original record of the dead letter `value` (read from `origin` at `position`).

    `raw_topics` maps each stream to this deployment's raw topic: a letter is sent back only to
    the topic it came from, and only when that is one of them. `codes`, when given, keeps only
    those error codes.
    """
    try:
        letter = orjson.loads(value) if value else None
    except orjson.JSONDecodeError:
        letter = None
    if not isinstance(letter, dict) or "error_code" not in letter:
        return Unwrapped(None, skipped=NOT_A_DEAD_LETTER)
    code = str(letter["error_code"])
    if codes and code not in codes:
        return Unwrapped(code, skipped=NOT_CODE)
    topic = str(letter.get("original_topic") or "")
    stream = stream_of_topic(topic)
    if stream is None or raw_topics.get(stream) != topic:
        return Unwrapped(code, skipped=NOT_RAW)
    if (
        letter.get("payload_truncated")
        or letter.get("key_truncated")
        or letter.get("headers_truncated")
    ):
        return Unwrapped(code, skipped=TRUNCATED)
    try:
        payload = _bytes(letter.get("payload"), letter.get("payload_b64"))
        key = _bytes(letter.get("key"), letter.get("key_b64"))
        headers = _headers(letter.get("headers") or [], set(letter.get("headers_b64") or []))
    except (binascii.Error, ValueError, TypeError) as exc:
        return Unwrapped(code, skipped=f"{NOT_A_DEAD_LETTER}: {exc}"[:120])
    if payload is None:
        return Unwrapped(code, skipped=NO_PAYLOAD)
    record = _object(payload)
    event = Event(stream or guess_stream(record or {}), payload, key, None, origin, position,
                  record, headers, topic)  # fmt: skip
    return Unwrapped(code, event=event)


def identity(event: Event) -> int:
    """What makes two dead letters the same input: topic, key and bytes. A record that failed
    again after a redrive is dead-lettered again; both letters are sent once, not twice."""
    h = xxhash.xxh3_64()
    h.update((event.topic or "").encode())
    h.update(b"\0")
    h.update(event.key or b"\xff")
    h.update(b"\0")
    h.update(event.value)
    return h.intdigest()


def _bytes(text: Any, b64: Any) -> bytes | None:
    if isinstance(text, str):
        return text.encode("utf-8", "surrogatepass")
    if isinstance(b64, str):
        return base64.b64decode(b64, validate=True)
    return None


def _headers(items: list[Any], b64_indexes: set[int]) -> list[tuple[str, bytes]]:
    out = []
    for i, (name, value) in enumerate(items):
        if value is None:
            out.append((str(name), b""))
        elif i in b64_indexes:
            out.append((str(name), base64.b64decode(value, validate=True)))
        else:
            out.append((str(name), str(value).encode("utf-8", "surrogatepass")))
    return out


def _object(payload: bytes) -> dict[str, Any] | None:
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None
