"""Validation at the door: raw bytes in, a raw event dict out, or `Rejected` with a DLQ code.

Checks run once per event, cheapest first, and each expensive one only when a cheap test on the
bytes says it could fail:

1. None / empty / whitespace only             -> empty
2. size > max_event_bytes                     -> too_large
   (a raw article may add max_html_bytes for its `html`, a whole page: after parsing, an article
   over max_event_bytes must owe the excess to `html`, and `html` itself must be within
   max_html_bytes; both are `too_large`, so the dead letter says what was too big)
3. orjson.loads; on failure: bad UTF-8        -> not_utf8, orjson's depth limit -> json.too_deep,
   anything else (incl. truncated, BOM, lone surrogate escapes) -> not_json
4. nesting > max_json_depth                   -> json.too_deep
   (orjson itself stops at depth 1024, so a 10,000-deep payload costs microseconds and never
   recurses in Python; the parsed value is walked, iteratively, only when the bytes allow more
   depth than the limit: depth <= count('[') + count(':') + 1, since in a chain of nested objects
   each one but the innermost holds a key, and each key has its own ':')
5. a key repeated in one object               -> json.duplicate_key
   (orjson keeps the last silently. A ':' follows every key and cannot appear outside strings
   otherwise, so with no `\\u003a` escape in the payload: duplicates exist iff the payload holds
   more ':' bytes than orjson's re-serialization of what it parsed. An object whose key count
   equals the payload's ':' count, the common case, skips even that. Payloads with an escaped
   colon, and any payload found to hold a duplicate, are re-checked with the stdlib parser, which
   names the key.)
6. not a JSON object                          -> not_object
7. schema_version missing / not a string / not MAJOR.MINOR -> schema.missing_field / wrong_type /
   invalid_value; a major this worker does not know -> unknown_schema_major
8. the raw schema (fastjsonschema, compiled)  -> schema.missing_field / wrong_type / invalid_value
9. a string value (any depth) over max_field_chars -> field.too_long (a raw article's top-level
   `html` has the byte limit of step 2 instead)
   (walked only when the payload is larger than max_field_chars bytes)
10. control characters. Raw C0 bytes are not valid JSON (orjson rejects them: not_json), so the
   only ways in are the escapes \\u0000-\\u001f, \\b and \\f; the strings are walked only when
   the payload has a backslash and one of those escapes:
   NUL anywhere (value or key)                -> field.control_chars (rejected: NUL is never text,
   it truncates C strings downstream and usually means binary data or a broken producer);
   every other C0 control except TAB, LF, CR in a value is replaced by a space (words on either
   side stay apart; normalization collapses whitespace). DEL and C1 controls are left to
   normalization (C1 is mostly mojibake that ftfy repairs).

Timestamps are not checked here: normalization owns time.invalid / time.out_of_range.

The steps above are `_py_decode`, the reference. Every event first meets the compiled door
(`newspipe_native.Door`, native/src/door.rs): one pass over the bytes that builds the dict orjson
would and checks 3-10 on the way (the schema is the same schema file, read by the Rust side;
fastjsonschema's own compiled patterns and this module's version check answer for strings).
It only says yes; for anything it does not accept, and for every case it does not model
(control escapes, payloads over max_field_chars, numbers beyond i64/f64, ...), it answers None
and `_py_decode` decides and names the error, so what is accepted and every error are the
reference's.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
from fastjsonschema import JsonSchemaValueException
from newspipe_native import Door

from pipeline import contracts
from pipeline.errors import Rejected
from pipeline.settings import Settings
from pipeline.topics import ARTICLES, COMMENTS

MAX_KEY_BYTES = 1024

_loads = orjson.loads
_dumps = orjson.dumps
_JSONDecodeError = orjson.JSONDecodeError
# C0 controls other than TAB, LF, CR (NUL is handled before this is used).
_CTRL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
# The only ways a C0 control gets into a JSON string: \u0000-\u001f, \b, \f (raw ones are not JSON).
_CTRL_ESCAPE = re.compile(rb"\\(?:u00[01]|[bf])")
_CTRL_TO_SPACE = {c: " " for c in (*range(0x01, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20))}


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def _deeper_than(obj: Any, limit: int) -> bool:
    """True when containers nest more than `limit` levels (the top object is level 1). Iterative."""
    stack = [(obj, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        if depth > limit:
            return True
        for child in node.values() if type(node) is dict else node:
            kind = type(child)
            if kind is dict or kind is list:
                push((child, depth + 1))
    return False


def _label(path: str) -> str:
    return repr(path[:200]) if path else "the record"


class _Schema:
    """A raw schema at the door: `door` (compiled, native) takes the bytes of a valid event to
    its dict and is what nearly every event pays; on the Python path `quick` answers valid or
    not (jsonschema-rs) and `check` (fastjsonschema) names the error, or accepts a record the
    quick check was stricter about than Python's regular expressions are."""

    __slots__ = ("check_fn", "door", "quick")

    def __init__(self, name: str, max_bytes: int, max_depth: int) -> None:
        self.quick = contracts.quick_check(name)
        self.check_fn = contracts.validator(name)
        # fastjsonschema's compiled patterns, by the schema's text: the Rust side asks them, so
        # a pattern means exactly what it means to fastjsonschema (which rewrites `$` as `\Z`).
        # A fastjsonschema that stops generating this table fails here, loudly, rather than
        # sending every event down the Python path.
        patterns = self.check_fn.__globals__["REGEX_PATTERNS"]  # type: ignore[attr-defined]
        self.door = Door(
            contracts.load_schema(name),
            patterns,
            "schema_version",
            _version_ok,
            max_bytes,
            max_depth,
        ).decode

    def check(self, obj: dict[str, Any]) -> None:
        """Raises Rejected with the schema error's code, field and message."""
        try:
            self.check_fn(obj)
        except JsonSchemaValueException as exc:
            code, field, message = contracts.describe_error(exc)
            raise Rejected(code, message, field) from None


class DoorValidator:
    """Decodes and checks raw events; one per worker (holds the compiled schemas and limits)."""

    def __init__(self, settings: Settings | None = None) -> None:
        settings = settings if settings is not None else Settings()
        self.max_event_bytes = settings.max_event_bytes
        self.max_html_bytes = settings.max_html_bytes
        self.max_field_chars = settings.max_field_chars
        self.max_json_depth = settings.max_json_depth
        # Payloads over either limit take the Python path (which checks `html` and lengths).
        fast_bytes = min(self.max_event_bytes, self.max_field_chars)
        self._article_schema = _Schema("raw-article", fast_bytes, self.max_json_depth)
        self._comment_schema = _Schema("raw-comment", fast_bytes, self.max_json_depth)
        self._article_door = self._article_schema.door
        self._comment_door = self._comment_schema.door
        self._good_versions: set[str] = set()

    # ---- public API

    def raw_article(self, payload: bytes | None) -> dict[str, Any]:
        """The raw article as a dict; raises Rejected(code, message, field, stage="validate")."""
        obj = self._article_door(payload)
        return obj if obj is not None else self._py_decode(payload, self._article_schema, True)

    def raw_comment(self, payload: bytes | None) -> dict[str, Any]:
        """The raw comment as a dict; raises Rejected(code, message, field, stage="validate")."""
        obj = self._comment_door(payload)
        return obj if obj is not None else self._py_decode(payload, self._comment_schema)

    def decode(self, stream: str, payload: bytes | None) -> dict[str, Any]:
        """`stream` is 'articles' or 'comments'."""
        if stream == ARTICLES:
            return self.raw_article(payload)
        if stream == COMMENTS:
            return self.raw_comment(payload)
        raise ValueError(f"unknown stream {stream!r}")

    @staticmethod
    def check_key(key: bytes | None) -> None:
        """No key is fine; a key that is present must be 1..1024 bytes -> else key.invalid."""
        if key is None:
            return
        if len(key) == 0:
            raise Rejected("key.invalid", "the Kafka key is present but empty", "key")
        if len(key) > MAX_KEY_BYTES:
            raise Rejected(
                "key.invalid",
                f"the Kafka key is {len(key)} bytes, over the limit of {MAX_KEY_BYTES}",
                "key",
            )

    # ---- the checks

    def _py_decode(
        self, payload: bytes | None, schema: _Schema, html: bool = False
    ) -> dict[str, Any]:
        """The reference: every check in Python (after orjson.loads), each error named."""
        if payload is None:
            raise Rejected("empty", "the record has no payload (null value)")
        if type(payload) is not bytes:
            payload = self._as_bytes(payload)
        size = len(payload)
        if size == 0 or payload.isspace():
            raise Rejected(
                "empty", "the payload is empty" if size == 0 else "the payload is only whitespace"
            )
        limit = self.max_event_bytes + (self.max_html_bytes if html else 0)
        if size > limit:
            raise Rejected(
                "too_large",
                f"the payload is {size} bytes, over the limit of {limit}"
                + (" (an article with a whole page in `html`)" if html else ""),
                "html" if html and b'"html"' in payload else None,
            )
        try:
            obj = _loads(payload)
        except _JSONDecodeError as exc:
            raise self._not_json(payload, exc) from None

        kind = type(obj)
        if kind is dict or kind is list:
            # Depth <= count('[') + colons + 1: in a chain of nested objects every object but the
            # innermost holds a key, and every key is followed by its own ':' byte.
            colons = payload.count(b":")
            limit = self.max_json_depth
            if payload.count(b"[") + colons >= limit and _deeper_than(obj, limit):
                raise Rejected("json.too_deep", f"JSON nesting is deeper than {limit} levels")
            if colons and not (kind is dict and colons == len(obj)):
                self._check_duplicates(payload, obj, colons)

        if kind is not dict:
            raise Rejected(
                "not_object", f"the JSON value is {contracts._json_type(obj)}, not an object"
            )

        version = obj.get("schema_version")
        if type(version) is not str or version not in self._good_versions:  # a list: unhashable
            self._check_version(obj, version)

        if not schema.quick(obj):
            schema.check(obj)

        if size > self.max_event_bytes:
            self._check_html_size(obj, size)
        if size > self.max_field_chars:
            self._check_lengths(obj, skip="html" if html else None)
        if payload.find(b"\\") >= 0 and _CTRL_ESCAPE.search(payload):
            self._check_controls(obj)
        return obj

    @staticmethod
    def _as_bytes(payload: Any) -> bytes:
        if isinstance(payload, str):
            return payload.encode("utf-8", "surrogatepass")
        return bytes(payload)

    def _not_json(self, payload: bytes, exc: Exception) -> Rejected:
        try:
            payload.decode("utf-8")
        except UnicodeDecodeError as err:
            return Rejected("not_utf8", f"the payload is not valid UTF-8 (byte {err.start})")
        text = str(exc)
        if "depth" in text or "recursion" in text:
            return Rejected(
                "json.too_deep", f"JSON nesting is deeper than {self.max_json_depth} levels"
            )
        return Rejected("not_json", f"the payload is not JSON: {text}"[:300])

    def _check_duplicates(self, payload: bytes, obj: Any, colons: int) -> None:
        if b"\\u003a" in payload or b"\\u003A" in payload:
            self._exact_duplicates(payload)
            return
        try:
            reserialized = _dumps(obj).count(b":")
        except (TypeError, ValueError):  # pragma: no cover - orjson round-trips what it parsed
            self._exact_duplicates(payload)
            return
        if colons > reserialized:
            self._exact_duplicates(payload)  # names the key; always raises here
            raise Rejected("json.duplicate_key", "a JSON object repeats a key")

    @staticmethod
    def _exact_duplicates(payload: bytes) -> None:
        try:
            json.loads(payload, object_pairs_hook=_no_duplicates)
        except _DuplicateKey as dup:
            raise Rejected(
                "json.duplicate_key",
                f"a JSON object repeats the key {dup.key[:100]!r}",
                dup.key[:256],
            ) from None
        except (ValueError, RecursionError):  # orjson accepted it; the stdlib cannot judge it
            return

    def _check_version(self, obj: dict[str, Any], version: Any) -> None:
        _check_version(obj, version)
        self._good_versions.add(version)

    def _check_html_size(self, obj: dict[str, Any], size: int) -> None:
        """An article over max_event_bytes: only its `html` may take it there."""
        page = obj.get("html")
        page_bytes = len(page.encode("utf-8", "surrogatepass")) if type(page) is str else 0
        if page_bytes > self.max_html_bytes:
            raise Rejected(
                "too_large",
                f"field 'html' is {page_bytes} bytes, over the limit of {self.max_html_bytes}",
                "html",
            )
        if size - page_bytes > self.max_event_bytes:
            raise Rejected(
                "too_large",
                f"the payload is {size} bytes, over the limit of {self.max_event_bytes}"
                + (f" ({page_bytes} of them in 'html', which may take more)" if page_bytes else ""),
            )

    def _check_lengths(self, obj: Any, skip: str | None = None) -> None:
        limit = self.max_field_chars
        for path, text, is_key in _strings(obj):
            if len(text) > limit and not is_key and path != skip:
                raise Rejected(
                    "field.too_long",
                    f"field {_label(path)} is {len(text)} characters, over the limit of {limit}",
                    path[:256] or None,
                )

    def _check_controls(self, obj: Any) -> None:
        # First pass rejects NUL anywhere (nothing is changed before we know the record is kept).
        for path, text, is_key in _strings(obj):
            if "\x00" in text:
                what = "key" if is_key else "field"
                raise Rejected(
                    "field.control_chars",
                    f"{what} {_label(path)} contains NUL (\\u0000), which cannot be text",
                    path[:256] or None,
                )
        # Then other C0 controls in values become spaces.
        stack: list[Any] = [obj]
        while stack:
            node = stack.pop()
            items = node.items() if type(node) is dict else enumerate(node)
            for k, v in items:
                kind = type(v)
                if kind is str:
                    if _CTRL_RE.search(v):
                        node[k] = v.translate(_CTRL_TO_SPACE)
                elif kind is dict or kind is list:
                    stack.append(v)


def _check_version(obj: dict[str, Any], version: Any) -> None:
    """schema_version: present, a string, MAJOR.MINOR, of a major this worker reads."""
    if version is None:
        if "schema_version" in obj:
            raise Rejected(
                "schema.wrong_type", "field 'schema_version' must be string, not null",
                "schema_version",
            )  # fmt: skip
        raise Rejected(
            "schema.missing_field", "field 'schema_version' is required", "schema_version"
        )
    if type(version) is not str:
        raise Rejected(
            "schema.wrong_type",
            f"field 'schema_version' must be string, not {contracts._json_type(version)}",
            "schema_version",
        )
    match = contracts.VERSION_RE.match(version)
    if match is None:
        raise Rejected(
            "schema.invalid_value",
            f"field 'schema_version' must be 'MAJOR.MINOR', not {version[:40]!r}",
            "schema_version",
        )
    if match.group(1) not in contracts.KNOWN_MAJORS:
        known = ", ".join(sorted(contracts.KNOWN_MAJORS))
        raise Rejected(
            "unknown_schema_major",
            f"schema_version {version!r} has major {match.group(1)}; this worker reads {known}",
            "schema_version",
        )


def _version_ok(version: str) -> bool:
    """The version check as a yes/no (the compiled door asks it once per distinct version)."""
    try:
        _check_version({}, version)
    except Rejected:
        return False
    return True


def _strings(obj: Any):  # -> Iterator[tuple[str, str, bool]]
    """(path, string, is_key) for every string value and key, iteratively (slow path only)."""
    stack: list[tuple[str, Any]] = [("", obj)]
    while stack:
        path, node = stack.pop()
        if type(node) is dict:
            for k, v in node.items():
                sub = f"{path}.{k}" if path else k
                yield sub, k, True
                if type(v) is str:
                    yield sub, v, False
                elif type(v) is dict or type(v) is list:
                    stack.append((sub, v))
        elif type(node) is list:
            for i, v in enumerate(node):
                sub = f"{path}[{i}]"
                if type(v) is str:
                    yield sub, v, False
                elif type(v) is dict or type(v) is list:
                    stack.append((sub, v))
        elif type(node) is str:
            yield path, node, False
