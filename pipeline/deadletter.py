"""Dead-letter records: why a record failed, plus its original bytes so it can be replayed.

The record matches schemas/dead-letter.schema.json. Bytes are kept as text when they are valid
UTF-8 (`payload`, `key`, header values) and as base64 otherwise (`payload_b64`, `key_b64`,
header values whose index is listed in `headers_b64`), so a consumer never guesses an encoding.

Size rule: the DLQ record must itself fit in one Kafka message (1 MiB by default, and the worker's
producer keeps the default), whatever arrived. So:
- the stored payload keeps at most DLQ_PAYLOAD_BYTES (768 KiB) of the original bytes (or fewer
  when the caller passes a smaller `max_payload_bytes`), cut at a UTF-8 character boundary, and is
  cut further until its JSON-encoded form is at most DLQ_PAYLOAD_JSON_BYTES (800,000 bytes:
  escapes such as `\\u0000` take 6 bytes, base64 takes 4 per 3);
- the key keeps at most 4 KiB, each header value 4 KiB, and at most 64 headers;
- each cut sets `payload_truncated` / `key_truncated` / `headers_truncated`, and `payload_bytes`
  always gives the original size. A truncated payload cannot be replayed as is: it is evidence.
The whole record stays under ~850 KB.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import orjson

from pipeline import __version__
from pipeline.contracts import SCHEMA_VERSION
from pipeline.errors import Rejected

DLQ_PAYLOAD_BYTES = 768 * 1024
DLQ_PAYLOAD_JSON_BYTES = 800_000
KEY_KEEP_BYTES = 4096
HEADER_VALUE_KEEP_BYTES = 4096
MAX_HEADERS = 64
MAX_MESSAGE_CHARS = 2000
MAX_FIELD_CHARS = 256


def utc_now() -> str:
    """Now as UTC ISO-8601 with milliseconds and a Z."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _utf8_prefix(data: bytes, limit: int) -> bytes:
    """At most `limit` bytes of valid UTF-8 `data`, not splitting a character."""
    if len(data) <= limit:
        return data
    cut = limit
    while cut > 0 and (data[cut] & 0xC0) == 0x80:  # data[cut] starts the first dropped char
        cut -= 1
    return data[:cut]


def _text_or_b64(data: bytes, limit: int) -> tuple[str | None, str | None, bool]:
    """(text, b64, truncated) for bytes kept up to `limit` bytes."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        kept = data[:limit]
        return None, _b64(kept), len(kept) < len(data)
    kept = _utf8_prefix(data, limit)
    return kept.decode("utf-8"), None, len(kept) < len(data)


def _store_payload(payload: bytes, limit: int) -> tuple[str | None, str | None, bool]:
    try:
        payload.decode("utf-8")
        is_text = True
    except UnicodeDecodeError:
        is_text = False
    if not is_text:
        kept = payload[: min(limit, (DLQ_PAYLOAD_JSON_BYTES - 2) // 4 * 3)]  # + 2 quotes
        return None, _b64(kept), len(kept) < len(payload)
    kept = _utf8_prefix(payload, limit)
    # JSON escapes can grow text up to 6x: measure only when that could pass the budget.
    while len(kept) * 6 > DLQ_PAYLOAD_JSON_BYTES:
        encoded = len(orjson.dumps(kept.decode("utf-8")))
        if encoded <= DLQ_PAYLOAD_JSON_BYTES:
            break
        kept = _utf8_prefix(kept, int(len(kept) * DLQ_PAYLOAD_JSON_BYTES / encoded * 0.98))
    return kept.decode("utf-8"), None, len(kept) < len(payload)


def _headers(
    headers: list[tuple[str, bytes]] | None,
) -> tuple[list[list[str | None]], list[int], bool]:
    out: list[list[str | None]] = []
    b64_indexes: list[int] = []
    truncated = False
    items = list(headers or ())
    if len(items) > MAX_HEADERS:
        items, truncated = items[:MAX_HEADERS], True
    for i, (name, value) in enumerate(items):
        if isinstance(name, bytes | bytearray):
            name = bytes(name).decode("utf-8", "replace")
        name = str(name)
        if len(name) > HEADER_VALUE_KEEP_BYTES:
            name, truncated = name[:HEADER_VALUE_KEEP_BYTES], True
        if value is None:
            out.append([name, None])
            continue
        if isinstance(value, str):
            value = value.encode("utf-8", "surrogatepass")
        text, b64, cut = _text_or_b64(bytes(value), HEADER_VALUE_KEEP_BYTES)
        truncated = truncated or cut
        if b64 is not None:
            b64_indexes.append(i)
            out.append([name, b64])
        else:
            out.append([name, text])
    return out, b64_indexes, truncated


def dead_letter(
    payload: bytes | None,
    *,
    error: Rejected,
    topic: str,
    partition: int | None,
    offset: int | None,
    key: bytes | None,
    headers: list[tuple[str, bytes]] | None,
    now: str | None = None,
    max_payload_bytes: int | None = None,
) -> dict[str, Any]:
    """The DLQ record for one failed input (see the module doc for what is kept of big inputs)."""
    limit = DLQ_PAYLOAD_BYTES
    if max_payload_bytes is not None:
        limit = max(0, min(limit, max_payload_bytes))
    if payload is not None and not isinstance(payload, bytes):
        payload = (
            payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else bytes(payload)
        )
    if payload is None:
        text, b64, payload_cut = None, None, False
    else:
        text, b64, payload_cut = _store_payload(payload, limit)
    if key is None:
        key_text, key_b64, key_cut = None, None, False
    else:
        key_text, key_b64, key_cut = _text_or_b64(bytes(key), KEY_KEEP_BYTES)
    header_list, header_b64, headers_cut = _headers(headers)
    field = error.field
    return {
        "schema_version": SCHEMA_VERSION,
        "error_code": error.code,
        "error_message": (str(error.message) or error.code)[:MAX_MESSAGE_CHARS],
        "field": None if field is None else str(field)[:MAX_FIELD_CHARS],
        "stage": error.stage,
        "original_topic": topic,
        "partition": partition,
        "offset": offset,
        "key": key_text,
        "key_b64": key_b64,
        "key_truncated": key_cut,
        "headers": header_list,
        "headers_b64": header_b64,
        "headers_truncated": headers_cut,
        "payload": text,
        "payload_b64": b64,
        "payload_bytes": 0 if payload is None else len(payload),
        "payload_truncated": payload_cut,
        "failed_at": now or utc_now(),
        "pipeline_version": __version__,
    }
