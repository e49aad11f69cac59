"""Archive manifests: what each `newspipe archive` run wrote, so an archive can be checked whole
(`newspipe archive verify`) and a replay over a time window can skip files outside it.

One JSON file per run in `<archive>/_manifests/`, rewritten atomically at every flush (before
the consumer offsets are committed), so even a crashed run leaves a manifest that covers at least
what it committed; `status` turns "complete" only when the run closed all its files. Per file:
records, bytes, sha256 (once closed), min/max event time and Kafka timestamp, and the offsets of
each partition it holds; per run: the offsets covered per partition.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.replay.checkpoint import write_atomic

DIRNAME = "_manifests"
VERSION = 1
DAY_MS = 24 * 3600 * 1000
_DATED = re.compile(r"^(\d{4}-\d{2}-\d{2}|undated)$")
_PART = re.compile(r"^part-\d+\.jsonl(\.gz)?$")


def _widen(pair: list[int] | None, value: int | None) -> list[int] | None:
    if value is None:
        return pair
    if pair is None:
        return [value, value]
    return [min(pair[0], value), max(pair[1], value)]


@dataclass
class FileEntry:
    """One part file as its run wrote it."""

    path: str  # relative to the archive root, with /
    topic: str
    date: str
    records: int = 0
    bytes: int | None = None
    sha256: str | None = None  # set when the file is closed
    event_ms: list[int] | None = None  # [min, max] of the time that chose the date folder
    timestamp_ms: list[int] | None = None  # [min, max] Kafka timestamp
    offsets: dict[str, list[int]] = field(default_factory=dict)  # partition -> [first, last]

    def add(self, event_ms: int | None, partition: int | None, offset: int | None,
            timestamp_ms: int | None) -> None:  # fmt: skip
        self.records += 1
        self.event_ms = _widen(self.event_ms, event_ms)
        self.timestamp_ms = _widen(self.timestamp_ms, timestamp_ms)
        if partition is not None and offset is not None:
            key = str(partition)
            self.offsets[key] = _widen(self.offsets.get(key), offset) or [offset, offset]

    def close(self, file: Path) -> None:
        self.bytes = file.stat().st_size
        self.sha256 = sha256_of(file)


@dataclass
class RunManifest:
    """The manifest of one archive run; `save` is atomic and cheap enough for every flush."""

    root: Path
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started_at: str = field(default_factory=lambda: _now())
    topics: list[str] = field(default_factory=list)
    group: str | None = None
    status: str = "running"
    files: dict[str, FileEntry] = field(default_factory=dict)
    covered: dict[str, dict[str, list[int]]] = field(default_factory=dict)  # [start, end)

    @property
    def path(self) -> Path:
        stamp = self.started_at.replace(":", "").replace("-", "")
        return self.root / DIRNAME / f"archive-{stamp}-{self.run_id}.json"

    def entry(self, file: Path, topic: str, date: str) -> FileEntry:
        key = file.relative_to(self.root).as_posix()
        found = self.files.get(key)
        if found is None:
            found = self.files[key] = FileEntry(key, topic, date)
        return found

    def cover(self, topic: str, partition: int, start: int, end: int) -> None:
        """Offsets [start, end) of a partition were read (and written) by this run."""
        spans = self.covered.setdefault(topic, {})
        old = spans.get(str(partition))
        spans[str(partition)] = [min(old[0], start), max(old[1], end)] if old else [start, end]

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": VERSION, "run_id": self.run_id, "started_at": self.started_at,
            "updated_at": _now(), "status": self.status, "group": self.group,
            "topics": self.topics, "records": sum(f.records for f in self.files.values()),
            "covered": self.covered,
            "files": [vars(f) for f in sorted(self.files.values(), key=lambda f: f.path)],
        }  # fmt: skip

    def save(self) -> None:
        write_atomic(self.path, json.dumps(self.as_dict(), indent=1).encode())


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load(root: Path) -> list[dict[str, Any]]:
    """Every manifest of an archive, oldest run first; unreadable ones raise ValueError."""
    out = []
    folder = root / DIRNAME
    for path in sorted(folder.glob("archive-*.json")) if folder.is_dir() else []:
        try:
            data = json.loads(path.read_text())
        except ValueError as exc:
            raise ValueError(f"{path}: not a readable manifest ({exc})") from None
        data["_path"] = str(path)
        out.append(data)
    return out


def find_root(file: Path) -> Path | None:
    """The archive root above `file`: the nearest folder holding `_manifests`."""
    for parent in file.absolute().parents:
        if (parent / DIRNAME).is_dir():
            return parent
    return None


# --- pruning by window ----------------------------------------------------------------------


def prune(files: list[Path], since_ms: int | None,
          until_ms: int | None) -> tuple[list[Path], list[Path], int]:  # fmt: skip
    """(kept, pruned, records in pruned files where a manifest counts them).

    A file is pruned only when it provably holds nothing inside [since, until): its manifest's
    event-time range (the time the filter uses) lies outside, or, without a manifest, its archive
    date folder `<topic>/<YYYY-MM-DD>/part-NNNN` does. Records without any time (`undated`) are
    never inside a window, as in the filter.
    """
    if since_ms is None and until_ms is None:
        return files, [], 0
    entries: dict[Path, dict[str, Any]] = {}
    roots: dict[Path, Path | None] = {}
    loaded: set[Path] = set()
    kept: list[Path] = []
    pruned: list[Path] = []
    records = 0
    for file in files:
        folder = file.absolute().parent
        if folder not in roots:
            root = roots[folder] = find_root(file)
            if root is not None and root not in loaded:
                loaded.add(root)
                for manifest in load(root):
                    for f in manifest.get("files", []):
                        if f.get("sha256"):  # closed: its ranges are final
                            entries[(root / f["path"]).absolute()] = f
        span = _span(entries.get(file.absolute()), file)
        if span is not None and _outside(span, since_ms, until_ms):
            pruned.append(file)
            entry = entries.get(file.absolute())
            records += entry["records"] if entry else 0
        else:
            kept.append(file)
    return kept, pruned, records


def _span(entry: dict[str, Any] | None, file: Path) -> tuple[int, int] | None:
    """[first, last] event ms a file can hold; (-1, -1) when it holds only undated records;
    None when nothing is known (the file is read)."""
    if entry is not None:
        if entry.get("event_ms"):
            low, high = entry["event_ms"]
            return int(low), int(high)
        return (-1, -1) if entry.get("records") else None
    if not _PART.match(file.name) or not _DATED.match(file.parent.name):
        return None
    if file.parent.name == "undated":
        return -1, -1
    day = datetime.strptime(file.parent.name, "%Y-%m-%d").replace(tzinfo=UTC)
    start = int(day.timestamp() * 1000)
    return start, start + DAY_MS - 1


def _outside(span: tuple[int, int], since_ms: int | None, until_ms: int | None) -> bool:
    low, high = span
    if (low, high) == (-1, -1):
        return True  # no event time: a window never keeps it
    return (since_ms is not None and high < since_ms) or (until_ms is not None and low >= until_ms)


# --- verify ---------------------------------------------------------------------------------


@dataclass
class Verdict:
    """What `archive verify` found: problems fail it, notes do not."""

    runs: int = 0
    files: int = 0
    records: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def count_lines(path: Path) -> tuple[int, str | None]:
    """Non-empty lines readable from a part file, and why reading stopped early (if it did)."""
    n = 0
    try:
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rb") as fh:
            for line in fh:
                if line.strip():
                    n += 1
    except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
        return n, f"{type(exc).__name__}: {exc}"
    return n, None


def verify(root: Path, deep: bool = True) -> Verdict:
    """Every manifest's files exist with their size, checksum and line count; every part file is
    in a manifest; and the runs together cover each partition's offsets without a hole."""
    verdict = Verdict()
    manifests = load(root)
    verdict.runs = len(manifests)
    if not manifests:
        verdict.problems.append(f"{root}: no manifests in {DIRNAME}/ (archived before manifests "
                                "existed, or not an archive)")  # fmt: skip
    listed: set[str] = set()
    spans: dict[tuple[str, str], list[tuple[int, int, str]]] = {}
    for m in manifests:
        run = m.get("run_id", "?")
        complete = m.get("status") == "complete"
        if not complete:
            verdict.problems.append(f"run {run} did not complete (status {m.get('status')!r}, "
                                    f"last saved {m.get('updated_at')}): crashed, or still "
                                    "running")  # fmt: skip
        for topic, parts in (m.get("covered") or {}).items():
            for part, (start, end) in parts.items():
                spans.setdefault((topic, part), []).append((int(start), int(end), run))
        for f in m.get("files", []):
            listed.add(f["path"])
            verdict.files += 1
            verdict.records += f["records"]
            _check_file(root, f, run, complete, deep, verdict)
    for path in sorted(root.rglob("part-*.jsonl*")):
        rel = path.relative_to(root).as_posix()
        if rel not in listed and not rel.startswith(DIRNAME):
            verdict.problems.append(f"{rel}: in no manifest (written before manifests existed, "
                                    "or by a run that crashed before its first flush)")  # fmt: skip
    for (topic, part), found in sorted(spans.items()):
        found.sort()
        reach = found[0][1]
        for start, end, run in found[1:]:
            if start > reach:
                verdict.problems.append(f"{topic}[{part}]: offsets {reach}..{start - 1} are in no "
                                        f"run (hole before run {run})")  # fmt: skip
            reach = max(reach, end)
        verdict.notes.append(f"{topic}[{part}]: offsets {found[0][0]}..{reach - 1} covered")
    return verdict


def _check_file(root: Path, f: dict[str, Any], run: str, complete: bool, deep: bool,
                verdict: Verdict) -> None:  # fmt: skip
    path = root / f["path"]
    if not path.is_file():
        verdict.problems.append(f"{f['path']}: missing (run {run}, {f['records']} records)")
        return
    if f.get("sha256") is not None:
        size = path.stat().st_size
        if size != f.get("bytes"):
            verdict.problems.append(f"{f['path']}: {size} bytes, manifest says {f['bytes']}")
            return
        if deep and sha256_of(path) != f["sha256"]:
            verdict.problems.append(f"{f['path']}: checksum differs from the manifest")
            return
    elif complete:
        verdict.problems.append(f"{f['path']}: no checksum in a complete run's manifest")
    if not deep:
        return
    n, error = count_lines(path)
    if n < f["records"] or (complete and n != f["records"]):
        verdict.problems.append(f"{f['path']}: {n} readable lines, manifest says {f['records']}"
                                + (f" ({error})" if error else ""))  # fmt: skip
