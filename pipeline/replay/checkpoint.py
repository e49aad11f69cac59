"""`--resume`: per source, the last position up to which every produce was acknowledged.

Acks can arrive out of order across partitions, so the saved position is a watermark: the line
before the oldest one still in flight. A restarted run skips positions at or below it and sends
everything after, so nothing acknowledged is lost and nothing before the watermark is sent twice.
The file is replaced atomically (tmp + fsync + rename), so a crash leaves the old or the new one.
"""

from __future__ import annotations

import heapq
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

VERSION = 1


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


class Checkpoint:
    """Tracks sends and acks per origin (a file, or kafka:topic:partition) and saves watermarks."""

    def __init__(self, path: Path | None, run_id: str = "", every: int = 1000) -> None:
        self.path = path
        self.run_id = run_id
        self.every = every
        self.loaded: dict[str, int] = {}
        self.tracks: dict[str, _Track] = {}
        self._since_save = 0
        if path is not None and path.exists():
            data = json.loads(path.read_text())
            if data.get("version") != VERSION:
                raise ValueError(f"{path}: unknown checkpoint version {data.get('version')!r}")
            self.loaded = {k: int(v) for k, v in data.get("done", {}).items()}

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
                "done": self.snapshot()}  # fmt: skip
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
