"""Source readers: archive files, plain JSON lines of raw events, captured pages.

Each reader yields `Event` or `BadLine` for every line, in file order, so one bad line is
reported (file:line, reason) and the rest of the file is still read. Kafka topic ranges are read
by `runner.read_topic_range` because they need a client.
"""

from __future__ import annotations

import base64
import binascii
import glob
import gzip
import io
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from pipeline.replay.events import (
    ARTICLES,
    COMMENTS,
    BadLine,
    Event,
    guess_stream,
    key_for,
    stream_of_topic,
)

# What a folder scan picks up; a file named explicitly (or by a glob) is read whatever its name,
# so a checkpoint or notes kept beside an archive are never mistaken for events.
LINE_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".ndjson", ".ndjson.gz")
PAGE_SUFFIXES = (".txt", ".html", ".htm")
ARCHIVE_FIELDS = frozenset({"topic", "partition", "offset"})

Item = Event | BadLine


class CountingReader(io.RawIOBase):
    """Counts compressed bytes consumed, so progress and ETA work on .gz files too."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self.raw.readinto(buffer)  # type: ignore[attr-defined]
        self.count += n or 0
        return n

    def close(self) -> None:
        self.raw.close()
        super().close()


def expand_sources(patterns: list[str]) -> tuple[list[Path], list[str]]:
    """Files for globs, folders (recursively, sorted) and plain paths; also the patterns that
    matched nothing, so a typo is an error rather than an empty replay. Paths are absolute: they
    name the origins a checkpoint records, which must not depend on the working folder."""
    files: list[Path] = []
    missing: list[str] = []
    for pattern in patterns:
        matches = [pattern]
        if glob.has_magic(pattern):
            matches = sorted(glob.glob(pattern, recursive=True))
        found = False
        for match in matches:
            path = Path(os.path.abspath(match))
            if path.is_dir():
                inner = sorted(p for p in path.rglob("*") if p.is_file() and _readable(p))
                files.extend(inner)
                found = found or bool(inner)
            elif path.is_file():
                files.append(path)
                found = True
        if not found:
            missing.append(pattern)
    seen: set[Path] = set()
    unique = []
    for f in files:
        if f.resolve() not in seen:
            seen.add(f.resolve())
            unique.append(f)
    return unique, missing


def passed_over(patterns: list[str]) -> list[Path]:
    """Files inside the source folders that a folder scan does not read (not named like event
    files), so the summary can say so instead of ignoring them; the archive's own manifests
    (`_manifests/`) are expected there and not listed."""
    out: list[Path] = []
    for pattern in patterns:
        for match in (
            sorted(glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else [pattern]
        ):
            path = Path(os.path.abspath(match))
            if path.is_dir():
                out.extend(
                    p for p in sorted(path.rglob("*"))
                    if p.is_file() and not _readable(p) and "_manifests" not in p.parts
                )  # fmt: skip
    return out


def _readable(path: Path) -> bool:
    name = path.name
    return name.endswith(LINE_SUFFIXES + PAGE_SUFFIXES) and not name.startswith(".")


def open_lines(path: Path, counter: CountingReader | None = None) -> IO[bytes]:
    """A binary line stream for .jsonl, .gz or .zst (zstandard, when installed)."""
    raw: IO[bytes] = counter if counter is not None else open(path, "rb")
    name = path.name
    if name.endswith(".gz"):
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if name.endswith(".zst"):
        try:
            import zstandard
        except ImportError:
            raise OSError("reading .zst needs the zstandard package") from None
        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw))  # type: ignore[arg-type]
    return io.BufferedReader(raw) if counter is not None else raw  # type: ignore[arg-type]


def read_file(
    path: Path, stream: str | None = None, source: str | None = None,
    counter: CountingReader | None = None,
) -> Iterator[Item]:  # fmt: skip
    """Every event of one source file; pages go through pipeline.extract like `newspipe ingest`."""
    if path.name.endswith(PAGE_SUFFIXES):
        yield from read_page(path, source)
        return
    origin = str(path)
    try:
        fh = open_lines(path, counter)
    except OSError as exc:
        yield BadLine(origin, 0, f"unreadable: {exc}")
        return
    n = 0
    try:
        with fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                yield parse_line(line, origin, n, stream)
    except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
        # A crashed archiver leaves a gzip stream without its trailer: all flushed lines are read.
        yield BadLine(origin, n + 1, f"truncated: {type(exc).__name__}: {exc}")


def parse_line(line: bytes, origin: str, n: int, stream: str | None = None) -> Item:
    """One line: an archive record (has topic/partition/offset) or a plain raw event."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return BadLine(origin, n, f"not_json: {exc}")
    if not isinstance(obj, dict):
        return BadLine(origin, n, f"not_object: a JSON {type(obj).__name__}")
    if ARCHIVE_FIELDS <= obj.keys():
        return parse_archive_record(obj, origin, n, stream, line)
    chosen = stream or guess_stream(obj)
    # The line's own bytes are sent, so what the worker validates is exactly what was written.
    return Event(chosen, line.strip(), key_for(chosen, obj), None, origin, n, obj)


def parse_archive_record(
    obj: dict[str, Any], origin: str, n: int, stream: str | None = None, line: bytes = b""
) -> Item:
    """Rebuild the archived Kafka record byte for byte (see docs/backfills.md for the layout).

    Written for speed (type() checks, a per-topic stream cache): it runs once per replayed record.
    `line` (the archive line's bytes) is needed for values stored raw (`value_bytes`); archives
    written before that keep a re-serializable object in `value`, or `value_text`/`value_b64`.
    """
    try:
        record = obj.get("value")
        size = obj.get("value_bytes")
        if size is not None:
            value = _raw_value(line, size)
            if value is None:
                return BadLine(origin, n, "archive.bad_field: value_bytes does not fit the line")
            if type(record) is not dict:
                record = None  # sent as it was; the worker rejects what is not an object
        elif type(record) is dict:
            value = orjson.dumps(record)
        elif record is not None:
            return BadLine(origin, n, "archive.bad_value: value is not a JSON object")
        elif "value_text" in obj:
            value = str(obj["value_text"]).encode("utf-8")
            record = _loads_object(value)
        elif "value_b64" in obj:
            value = base64.b64decode(obj["value_b64"], validate=True)
        else:
            return BadLine(origin, n, "archive.no_value: tombstone or missing value")
        raw_key = obj.get("key")
        if type(raw_key) is str:
            key: bytes | None = raw_key.encode("utf-8")
        elif obj.get("key_b64"):
            key = base64.b64decode(obj["key_b64"], validate=True)
        else:
            key = None
        raw_headers = obj.get("headers")
        headers = [_header(h) for h in raw_headers] if raw_headers else []
        ts = obj.get("timestamp")
        timestamp = ts if type(ts) is int and ts > 0 else None
    except (binascii.Error, ValueError, TypeError, IndexError) as exc:
        return BadLine(origin, n, f"archive.bad_field: {exc}")
    # The archived topic decides the stream; `stream` only stands in when the topic cannot
    # (so `--stream comments` on an archive filters comments, never relabels articles).
    topic = obj["topic"]
    chosen = _TOPIC_STREAM.get(topic)
    if chosen is None:
        topic = str(topic)
        chosen = stream_of_topic(topic)
        if chosen is not None:
            _TOPIC_STREAM[topic] = chosen
        else:
            chosen = stream or (guess_stream(record) if record is not None else ARTICLES)
    if key is None and record is not None:
        key = key_for(chosen, record)
    return Event(chosen, value, key, timestamp, origin, n, record, headers, topic)


_TOPIC_STREAM: dict[str, str] = {}
_VALUE_TAG = b'"value":'


def _raw_value(line: bytes, size: Any) -> bytes | None:
    """The `size` bytes before the line's closing brace, checked to follow `"value":`."""
    if type(size) is not int or size <= 0:
        return None
    body = line.rstrip(b"\r\n")
    end = len(body) - 1
    start = end - size
    if start < len(_VALUE_TAG) or body[start - len(_VALUE_TAG) : start] != _VALUE_TAG:
        return None
    return body[start:end]


def _loads_object(value: bytes) -> dict[str, Any] | None:
    """The event as an object when it is one (for filters and keys); None otherwise."""
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return obj if type(obj) is dict else None


def _header(item: Any) -> tuple[str, bytes]:
    """`[name, text]`, or `[name, null, base64]` when the value was not UTF-8."""
    name, value = str(item[0]), item[1]
    if value is None and len(item) > 2:
        return name, base64.b64decode(item[2], validate=True)
    return name, b"" if value is None else str(value).encode("utf-8")


def read_page(path: Path, source: str | None = None) -> Iterator[Item]:
    """A captured page as `newspipe ingest` sends it: position 1 the article, 2.. its comments."""
    from pipeline.extract import extract_file
    from pipeline.ingest import page_events

    origin = str(path)
    try:
        page = extract_file(path, source=source)
        aid, article, comments = page_events(page)
    except Exception as exc:
        yield BadLine(origin, 1, f"page.unreadable: {type(exc).__name__}: {exc}"[:300])
        return
    key = aid.encode()
    yield Event(ARTICLES, orjson.dumps(article), key, None, origin, 1, article)
    for i, comment in enumerate(comments, 2):
        yield Event(COMMENTS, orjson.dumps(comment), key, None, origin, i, comment)
