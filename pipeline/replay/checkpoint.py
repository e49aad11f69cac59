"""`--resume`: per source, the last position up to which every produce was acknowledged.

Acks can arrive out of order across partitions, so the saved position is a watermark: the line
before the oldest one still in flight. A restarted run skips positions at or below it and sends
everything after, so nothing acknowledged is lost and nothing before the watermark is sent twice.
The file is replaced atomically (tmp + fsync + rename), so a crash leaves the old or the new one.

A checkpoint also records what its backfill covers (absolute sources, filters, window, targets)
and its run id: positions only mean "done" for that same backfill, so resuming with other options
is refused (`Mismatch`) instead of silently skipping data that was never sent.
"""

from __future__ import annotations

import heapq
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VERSION = 2
READABLE = (1, 2)  # version 1 had no `covers`: read with a warning, its origins made absolute


class Mismatch(ValueError):
    """A checkpoint written for another backfill than the one asked for now."""


def differences(saved: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs between two `covers` (one readable phrase each), in a stable order."""
    out = []
    for name in sorted(saved.keys() | now.keys()):
        old, new = saved.get(name), now.get(name)
        if old != new:
            out.append(f"{name}: checkpoint {_show(old)}, now {_show(new)}")
    return out


def _show(value: Any) -> str:
    if value is None or value == []:
        return "none"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


@dataclass
class _Track:
    inflight: list[int] = field(default_factory=list)  # heap of positions sent, not yet acked
    acked: set[int] = field(default_factory=set)  # acked positions still above the watermark
    seen: int | None = None  # highest position handed to the runner

    def watermark(self) -> int | None:
        heap = self.inflight
        while heap and heap[0] in self.acked:
            self.acked.discard(heapq.heappop(heap))
        if heap:
            return heap[0] - 1
        return self.seen


class CheckpointError(ValueError):
    """A --resume file that is not a checkpoint this tool wrote: named, with what is wrong."""


def _read_checkpoint(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"checkpoint {path} cannot be read: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("done", {}), dict):
        raise CheckpointError(
            f"checkpoint {path} is not a replay checkpoint (a JSON object with 'version' and "
            "'done'); give another --resume file, or remove it to start over"
        )
    return data


class Checkpoint:
    """Tracks sends and acks per origin (a file, or kafka:topic:partition) and saves watermarks."""

    def __init__(self, path: Path | None, run_id: str = "", every: int = 1000,
                 covers: dict[str, Any] | None = None) -> None:  # fmt: skip
        self.path = path
        self.run_id = run_id
        self.every = every
        self.covers = covers or {}
        self.loaded: dict[str, int] = {}
        self.tracks: dict[str, _Track] = {}
        self._since_save = 0
        self.saved_covers: dict[str, Any] | None = None  # None: no file, or version 1
        self.saved_run_id: str | None = None
        self.old_version = False
        if path is not None and path.exists():
            data = _read_checkpoint(path)
            if data.get("version") not in READABLE:
                raise ValueError(f"{path}: unknown checkpoint version {data.get('version')!r}")
            self.saved_run_id = data.get("run_id") or None
            done = {k: int(v) for k, v in data.get("done", {}).items()}
            if data["version"] == 1:
                self.old_version = True  # origins were the paths as typed: make them absolute
                done = {k if k.startswith("kafka:") else os.path.abspath(k): v
                        for k, v in done.items()}  # fmt: skip
            else:
                self.saved_covers = data.get("covers") or {}
            self.loaded = done

    def check_same_backfill(self) -> None:
        """Refuse to resume a checkpoint written for other sources, filters, targets or run."""
        if self.path is None or not self.path.exists():
            return
        found = []
        if self.saved_covers is not None:
            found = differences(self.saved_covers, self.covers)
        if self.saved_run_id and self.run_id and self.saved_run_id != self.run_id:
            found.append(f"run id: checkpoint {self.saved_run_id}, now {self.run_id}")
        if found:
            raise Mismatch(
                f"checkpoint {self.path} belongs to another backfill ({'; '.join(found)}): "
                "resume with the same sources and options, or add --new-run to start over "
                "(the checkpoint is then replaced)"
            )

    def start_over(self) -> None:
        """`--new-run`: forget what the file says; the next save replaces it."""
        self.loaded = {}
        self.saved_covers = None
        self.saved_run_id = None

    def done_through(self, origin: str) -> int | None:
        """Position up to which `origin` is finished (loaded or reached in this run)."""
        track = self.tracks.get(origin)
        mark = track.watermark() if track else None
        old = self.loaded.get(origin)
        if mark is None:
            return old
        return mark if old is None else max(mark, old)

    def already_done(self, origin: str, position: int) -> bool:
        old = self.loaded.get(origin)
        return old is not None and position <= old

    def _track(self, origin: str) -> _Track:
        track = self.tracks.get(origin)
        if track is None:
            track = self.tracks[origin] = _Track()
        return track

    def passed(self, origin: str, position: int) -> None:
        """A position needing no ack (filtered, invalid, resumed past): it never holds the mark."""
        track = self._track(origin)
        if track.seen is None or position > track.seen:
            track.seen = position

    def sent(self, origin: str, position: int) -> None:
        track = self._track(origin)
        heapq.heappush(track.inflight, position)
        if track.seen is None or position > track.seen:
            track.seen = position

    def acked(self, origin: str, position: int) -> bool:
        """Record an ack; returns True when it is time for a periodic save."""
        self._track(origin).acked.add(position)
        self._since_save += 1
        return self.path is not None and self._since_save >= self.every

    def snapshot(self) -> dict[str, int]:
        out = dict(self.loaded)
        for origin in self.tracks:
            mark = self.done_through(origin)
            if mark is not None:
                out[origin] = mark
        return out

    def save(self) -> None:
        """Atomic: a reader (or a crash) sees either the previous file or this one, whole."""
        self._since_save = 0
        if self.path is None:
            return
        data = {"version": VERSION, "run_id": self.run_id, "saved_at": time.time(),
                "covers": self.covers, "done": self.snapshot()}  # fmt: skip
        write_atomic(self.path, json.dumps(data, indent=1, sort_keys=True).encode())


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
