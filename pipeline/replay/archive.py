"""`newspipe archive`: copy the raw topics to dated, rotated JSON-lines files to replay from.

Layout: `<dir>/<topic>/<YYYY-MM-DD>/part-NNNN.jsonl.gz`, the date being the event's own time
(published_at/posted_at/captured_at) or else its Kafka timestamp, in UTC. One line per record:
`{"topic","partition","offset","timestamp","key","headers","value_bytes","value"}` (see
docs/backfills.md). A value that is JSON on one line is written as the very bytes that were on the
topic, last in the line, with its length in `value_bytes`: replay slices those bytes back out, so
payloads are byte-identical without re-serializing, and the archive is no larger than its input
plus the record's metadata. Anything else is kept as `value_text` or `value_b64`. Each run also
writes a manifest (`pipeline.replay.manifest`).

Offsets are committed only after the lines are flushed and fsynced: a crash repeats records in
the archive (harmless, replay goes through dedup) but never loses one.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import os
import re
import signal
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from pipeline import kafka_io
from pipeline.replay.events import record_time_ms
from pipeline.replay.manifest import FileEntry, RunManifest
from pipeline.settings import Settings
from pipeline.topics import RAW, TopicNames

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
_PART = re.compile(r"part-(\d+)\.jsonl")


def archive_line(
    topic: str, partition: int, offset: int, timestamp_ms: int | None,
    key: bytes | None, headers: Any, value: bytes | None,
) -> tuple[bytes, int | None]:  # fmt: skip
    """One archive line and the event time (ms) used to pick its date folder."""
    out: dict[str, Any] = {"topic": topic, "partition": partition, "offset": offset,
                           "timestamp": timestamp_ms}  # fmt: skip
    if key is None:
        out["key"] = None
    else:
        try:
            out["key"] = key.decode("utf-8")
        except UnicodeDecodeError:
            out["key"] = None
            out["key_b64"] = base64.b64encode(key).decode()
    out["headers"] = [_header(k, v) for k, v in (headers or ())]
    event_ms = None
    if value is None:
        out["value"] = None
        return orjson.dumps(out) + b"\n", timestamp_ms
    parsed: Any = None
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        pass
    else:
        if isinstance(parsed, dict):
            event_ms = record_time_ms(parsed)
        if b"\n" not in value and b"\r" not in value:
            # The raw bytes, spliced in last: valid JSON, and sliceable by length on replay.
            out["value_bytes"] = len(value)
            head = orjson.dumps(out)
            line = b"".join((head[:-1], b',"value":', value, b"}\n"))
            return line, event_ms if event_ms is not None else timestamp_ms
    try:
        out["value_text"] = value.decode("utf-8")
    except UnicodeDecodeError:
        out["value_b64"] = base64.b64encode(value).decode()
    return orjson.dumps(out) + b"\n", event_ms if event_ms is not None else timestamp_ms


def _header(name: Any, value: bytes | None) -> list[Any]:
    key = name if isinstance(name, str) else name.decode("utf-8", "replace")
    if value is None:
        return [key, None]
    try:
        return [key, value.decode("utf-8")]
    except UnicodeDecodeError:
        return [key, None, base64.b64encode(value).decode()]


def date_of(ms: int | None) -> str:
    if ms is None or ms <= 0:
        return "undated"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d")


@dataclass
class _Part:
    path: Path
    raw: IO[bytes]
    fh: IO[bytes]
    lines: int = 0
    entry: FileEntry | None = None


@dataclass
class ArchiveWriter:
    """Open part files per (topic, date); rotates at `max_bytes` of compressed output.

    A run never appends to an existing part (it takes the next free number), so a crash can only
    leave one truncated file per folder, which replay reads up to its last flush.
    """

    root: Path
    max_bytes: int = DEFAULT_MAX_BYTES
    compress: bool = True
    manifest: RunManifest | None = None  # saved at every flush, files checksummed when closed
    parts: dict[tuple[str, str], _Part] = field(default_factory=dict)
    written: int = 0
    files: list[Path] = field(default_factory=list)

    def write(self, topic: str, line: bytes, event_ms: int | None, partition: int | None = None,
              offset: int | None = None, timestamp_ms: int | None = None) -> None:  # fmt: skip
        slot = (topic, date_of(event_ms))
        part = self.parts.get(slot)
        if part is None:
            part = self.parts[slot] = self._open(*slot)
        part.fh.write(line)
        part.lines += 1
        self.written += 1
        if part.entry is not None:
            part.entry.add(event_ms if event_ms and event_ms > 0 else None, partition, offset,
                           timestamp_ms)  # fmt: skip
        if part.raw.tell() >= self.max_bytes:
            self._close(part)
            del self.parts[slot]

    def _open(self, topic: str, day: str) -> _Part:
        folder = self.root / topic / day
        folder.mkdir(parents=True, exist_ok=True)
        numbers = [int(m.group(1)) for p in folder.iterdir() if (m := _PART.match(p.name))]
        suffix = ".jsonl.gz" if self.compress else ".jsonl"
        path = folder / f"part-{max(numbers, default=-1) + 1:04d}{suffix}"
        raw = open(path, "xb")
        fh: IO[bytes] = raw
        if self.compress:
            fh = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0)  # type: ignore[assignment]
        self.files.append(path)
        entry = self.manifest.entry(path, topic, day) if self.manifest is not None else None
        return _Part(path, raw, fh, entry=entry)

    def flush(self) -> None:
        """Make every written line durable, then the manifest: the caller commits offsets only
        after this, so a manifest always covers at least what was committed."""
        for part in self.parts.values():
            part.fh.flush()  # GzipFile.flush is a zlib sync flush: readable up to here
            part.raw.flush()
            os.fsync(part.raw.fileno())
        if self.manifest is not None:
            self.manifest.save()

    def _close(self, part: _Part) -> None:
        if part.fh is not part.raw:
            part.fh.close()
        part.raw.flush()
        os.fsync(part.raw.fileno())
        part.raw.close()
        if part.entry is not None:
            part.entry.close(part.path)

    def close(self, status: str | None = None) -> None:
        """Close every part; with `status`, the manifest is saved with it ("complete")."""
        for part in self.parts.values():
            self._close(part)
        self.parts.clear()
        manifest = self.manifest
        if (
            manifest is not None
            and status is not None
            and (manifest.files or manifest.path.exists())
        ):
            manifest.status = status
            manifest.save()


@dataclass
class ArchiveReport:
    records: int
    files: list[Path]
    seconds: float
    manifest: Path | None = None


async def run_archive(
    settings: Settings,
    root: Path,
    topics: list[str] | None = None,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    idle_exit: float | None = None,
    from_beginning: bool = False,
    compress: bool = True,
    stop: asyncio.Event | None = None,
) -> ArchiveReport:
    """Consume `topics` (default: the raw topics) and archive until idle, stopped or signalled.

    With a consumer group (`<app_id>-archive`) each run continues where the last one committed;
    `from_beginning` reads everything without a group and commits nothing.
    """

    from pipeline.kafka_io import assign_from_beginning

    names = TopicNames(settings.topic_prefix)
    topics = topics or [names.name(t) for t in RAW]
    stop = stop or asyncio.Event()
    group = None if from_beginning else f"{settings.app_id}-archive"
    consumer = kafka_io.consumer(
        settings,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    loop = asyncio.get_running_loop()
    installed = install_signals(loop, stop)
    manifest = RunManifest(root, topics=sorted(topics), group=group)
    writer = ArchiveWriter(root, max_bytes=max_bytes, compress=compress, manifest=manifest)
    started = time.monotonic()
    starts: dict[Any, int] = {}  # where each partition's reading began: the run's coverage
    await consumer.start()
    status = "failed"
    try:
        if group is None:
            await assign_from_beginning(consumer, topics)
        else:
            consumer.subscribe(topics)
        last_new: float | None = None
        while not stop.is_set():
            for tp in consumer.assignment():
                if tp not in starts:
                    starts[tp] = await consumer.position(tp)
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            now = time.monotonic()
            if consumer.assignment() and last_new is None:
                last_new = now  # the idle clock starts once partitions are assigned
            offsets = {}
            for tp, messages in batch.items():
                for msg in messages:
                    line, event_ms = archive_line(
                        tp.topic,
                        tp.partition,
                        msg.offset,
                        msg.timestamp,
                        msg.key,
                        msg.headers,
                        msg.value,
                    )
                    writer.write(tp.topic, line, event_ms, tp.partition, msg.offset,
                                 msg.timestamp)  # fmt: skip
                if messages:
                    offsets[tp] = messages[-1].offset + 1
                    starts.setdefault(tp, messages[0].offset)
                    manifest.cover(tp.topic, tp.partition, starts[tp], offsets[tp])
                    last_new = now
            if offsets:
                writer.flush()
                if group is not None:
                    await consumer.commit(offsets)
            if idle_exit is not None and last_new is not None and now - last_new >= idle_exit:
                break
        status = "complete"
    finally:
        writer.close(status)
        await consumer.stop()
        for sig in installed:
            loop.remove_signal_handler(sig)
    return ArchiveReport(writer.written, writer.files, time.monotonic() - started,
                         manifest.path)  # fmt: skip


def install_signals(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> list[int]:
    """Ctrl-C / SIGTERM set `stop` (a clean stop with a checkpoint); returns what was installed.

    Event loops without signal support raise NotImplementedError: the tool then runs without.
    """
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
    return installed
