"""Archive manifests without a broker: what a run records, `archive verify` finding what is
missing or changed, and replay skipping files outside its window (by manifest or date folder)."""

from __future__ import annotations

import asyncio
import gzip
import json
import shutil
from pathlib import Path

import orjson
import pytest

from pipeline.replay.archive import ArchiveWriter, archive_line
from pipeline.replay.manifest import DIRNAME, RunManifest, load, prune, verify

DAY = 86_400_000
BASE = 1795651200000  # 2026-11-26T00:00:00Z


def comment(i: int, ms: int | None) -> bytes:
    event = {"schema_version": "1.0", "source": "foxnews", "article_title": "T",
             "text": f"comment {i}", "source_comment_id": str(i)}  # fmt: skip
    if ms is not None:
        from pipeline.replay.safety import iso

        event["posted_at"] = iso(ms)
    return orjson.dumps(event)


def write_run(
    root: Path, items: list[tuple[int, int, int | None]], status: str | None = "complete"
) -> RunManifest:
    """One archive run of (partition, offset, event ms) records, as run_archive writes it; a
    record without event time has no Kafka timestamp either (it lands in `undated`)."""
    topic = "raw.comments"
    manifest = RunManifest(root, topics=[topic])
    writer = ArchiveWriter(root, manifest=manifest)
    for partition, offset, ms in items:
        ts = BASE + offset if ms is not None else None
        line, event_ms = archive_line(topic, partition, offset, ts, b"a-1", [],
                                      comment(offset, ms))  # fmt: skip
        writer.write(topic, line, event_ms, partition, offset, ts)
        manifest.cover(topic, partition, items[0][1] if partition == items[0][0] else offset,
                       offset + 1)  # fmt: skip
    writer.flush()
    writer.close(status)
    return manifest


def three_days(root: Path, start: int = 0) -> RunManifest:
    items = [(0, start + i, BASE + (i % 3) * DAY + i * 1000) for i in range(30)]
    return write_run(root, items)


# --- what a manifest records ----------------------------------------------------------------


def test_a_run_manifest_lists_files_with_counts_times_offsets_and_checksums(tmp_path: Path):
    manifest = three_days(tmp_path)
    (data,) = load(tmp_path)
    assert data["status"] == "complete" and data["records"] == 30
    assert data["covered"] == {"raw.comments": {"0": [0, 30]}}
    files = {f["path"]: f for f in data["files"]}
    assert sorted(files) == [f"raw.comments/2026-11-{d}/part-0000.jsonl.gz" for d in (26, 27, 28)]
    first = files["raw.comments/2026-11-26/part-0000.jsonl.gz"]
    assert first["records"] == 10 and first["offsets"] == {"0": [0, 27]}
    assert first["event_ms"] == [BASE, BASE + 27_000]
    assert first["timestamp_ms"] == [BASE, BASE + 27]
    import hashlib

    body = (tmp_path / first["path"]).read_bytes()
    assert first["sha256"] == hashlib.sha256(body).hexdigest() and first["bytes"] == len(body)
    assert manifest.path.parent.name == DIRNAME


def test_a_manifest_is_saved_at_every_flush_so_a_crashed_run_still_has_one(tmp_path: Path):
    manifest = RunManifest(tmp_path, topics=["raw.comments"])
    writer = ArchiveWriter(tmp_path, manifest=manifest)
    line, ms = archive_line("raw.comments", 0, 7, BASE, b"k", [], comment(7, BASE))
    writer.write("raw.comments", line, ms, 0, 7, BASE)
    manifest.cover("raw.comments", 0, 7, 8)
    writer.flush()  # ... and the process dies here: no close
    (data,) = load(tmp_path)
    assert data["status"] == "running" and data["records"] == 1
    assert data["files"][0]["sha256"] is None
    for part in writer.parts.values():
        part.raw.close()


# --- archive verify -------------------------------------------------------------------------


def test_verify_passes_a_complete_archive_of_two_consecutive_runs(tmp_path: Path):
    three_days(tmp_path)
    write_run(tmp_path, [(0, 30 + i, BASE + i) for i in range(5)])
    verdict = verify(tmp_path)
    assert verdict.ok, verdict.problems
    assert (verdict.runs, verdict.records) == (2, 35)
    assert verdict.notes == ["raw.comments[0]: offsets 0..34 covered"]


def test_verify_finds_missing_changed_and_unlisted_files(tmp_path: Path):
    three_days(tmp_path)
    day1 = tmp_path / "raw.comments" / "2026-11-26" / "part-0000.jsonl.gz"
    day2 = tmp_path / "raw.comments" / "2026-11-27" / "part-0000.jsonl.gz"
    day1.unlink()
    day2.write_bytes(gzip.compress(gzip.decompress(day2.read_bytes())[:-1] + b"X"))
    stray = tmp_path / "raw.comments" / "2026-11-29"
    stray.mkdir()
    shutil.copy(tmp_path / "raw.comments" / "2026-11-28" / "part-0000.jsonl.gz", stray)
    verdict = verify(tmp_path)
    text = "\n".join(verdict.problems)
    assert not verdict.ok and len(verdict.problems) == 3, text
    assert "2026-11-26/part-0000.jsonl.gz: missing (run" in text
    assert "2026-11-27/part-0000.jsonl.gz: " in text  # size or checksum differs
    assert "2026-11-29/part-0000.jsonl.gz: in no manifest" in text


def test_verify_finds_a_hole_between_runs_and_a_run_that_did_not_complete(tmp_path: Path):
    three_days(tmp_path)  # offsets 0..29
    write_run(tmp_path, [(0, 40 + i, BASE + i) for i in range(5)], status=None)  # crashed
    verdict = verify(tmp_path)
    text = "\n".join(verdict.problems)
    assert "raw.comments[0]: offsets 30..39 are in no run" in text
    assert "did not complete (status 'running'" in text


def test_verify_of_a_folder_without_manifests_says_so(tmp_path: Path):
    (tmp_path / "raw.comments" / "2026-11-26").mkdir(parents=True)
    verdict = verify(tmp_path)
    assert not verdict.ok and "no manifests" in verdict.problems[0]


def test_archive_verify_exits_1_on_a_damaged_archive_and_0_on_a_whole_one(tmp_path: Path, capsys):
    from pipeline.replay.cli import main

    three_days(tmp_path)
    assert main(["archive", "verify", str(tmp_path)]) == 0
    assert "30 records (sizes, checksums and line counts checked): complete" in (
        capsys.readouterr().out
    )
    next(tmp_path.rglob("part-*.jsonl.gz")).unlink()
    assert main(["archive", "verify", str(tmp_path)]) == 1
    assert "NOT complete: 1 problem(s)" in capsys.readouterr().out
    assert main(["archive", "verify", str(tmp_path / "nope")]) == 2


# --- pruning files outside a window ---------------------------------------------------------


def test_replay_skips_files_whose_manifest_puts_them_outside_the_window(tmp_path: Path):
    three_days(tmp_path)
    files = sorted(tmp_path.rglob("part-*.jsonl.gz"))
    kept, pruned, records = prune(files, BASE + DAY, BASE + 2 * DAY)
    assert [p.parent.name for p in kept] == ["2026-11-27"]
    assert [p.parent.name for p in pruned] == ["2026-11-26", "2026-11-28"]
    assert records == 20
    assert prune(files, None, None) == (files, [], 0)


def test_without_a_manifest_the_date_folder_decides_and_undated_is_never_in_a_window(
    tmp_path: Path,
):
    items = [(0, i, BASE + (i % 3) * DAY) for i in range(6)] + [(0, 6, None)]
    write_run(tmp_path, items)
    shutil.rmtree(tmp_path / DIRNAME)
    files = sorted(tmp_path.rglob("part-*.jsonl.gz"))
    assert [p.parent.name for p in files][-1] == "undated"
    other = tmp_path / "events.jsonl"  # not an archive part: always read
    other.write_bytes(comment(1, BASE) + b"\n")
    kept, pruned, records = prune([*files, other], BASE + DAY, None)
    assert [p.parent.name for p in kept] == ["2026-11-27", "2026-11-28", other.parent.name]
    assert [p.parent.name for p in pruned] == ["2026-11-26", "undated"] and records == 0


def test_an_unclosed_file_of_a_crashed_run_is_judged_by_its_date_folder(tmp_path: Path):
    write_run(tmp_path, [(0, 0, BASE)], status=None)
    data = load(tmp_path)[0]
    data["files"][0]["sha256"] = None
    data["files"][0]["event_ms"] = [0, 0]  # as if flushed before later lines were written
    Path(data.pop("_path")).write_text(json.dumps(data))
    files = sorted(tmp_path.rglob("part-*.jsonl.gz"))
    assert prune(files, BASE, BASE + DAY)[0] == files


def test_a_windowed_dry_run_over_an_archive_reads_only_the_files_inside(tmp_path: Path):
    from pipeline.replay.filters import EventFilter
    from pipeline.replay.runner import ReplayOptions, replay
    from pipeline.settings import Settings

    three_days(tmp_path / "archive")
    window = EventFilter(since_ms=BASE + DAY, until_ms=BASE + 2 * DAY)
    opts = ReplayOptions(sources=[str(tmp_path / "archive")], dry_run=True, tty=False,
                         event_filter=window)  # fmt: skip
    summary = asyncio.run(replay(Settings(broker="kafka://127.0.0.1:1"), opts))
    assert (summary.pruned_files, summary.pruned_records) == (2, 20)
    assert (summary.read, summary.would_produce, summary.skipped_filter) == (10, 10, 0)
    # the same window without pruning (plain files) gives the same plan: pruning only saves time
    plain = tmp_path / "plain.jsonl"
    plain.write_bytes(b"".join(gzip.decompress(p.read_bytes())
                               for p in sorted((tmp_path / "archive").rglob("*.gz"))))  # fmt: skip
    opts = ReplayOptions(sources=[str(plain)], dry_run=True, tty=False, event_filter=window)
    full = asyncio.run(replay(Settings(broker="kafka://127.0.0.1:1"), opts))
    assert (full.read, full.would_produce, full.pruned_files) == (30, 10, 0)
    assert full.plan.as_dict()["by_hour"] == summary.plan.as_dict()["by_hour"]


@pytest.mark.parametrize("compress", [True, False])
def test_rotated_parts_each_get_their_own_manifest_entry(tmp_path: Path, compress: bool):
    manifest = RunManifest(tmp_path, topics=["raw.comments"])
    writer = ArchiveWriter(tmp_path, max_bytes=600, compress=compress, manifest=manifest)
    for i in range(40):
        line, ms = archive_line("raw.comments", 1, i, BASE, b"k", [], comment(i, BASE))
        writer.write("raw.comments", line, ms, 1, i, BASE)
        writer.flush()  # gzip output grows (and rotates) at flushes
    writer.close("complete")
    entries = load(tmp_path)[0]["files"]
    assert len(entries) > 1 and sum(e["records"] for e in entries) == 40
    assert all(e["sha256"] for e in entries)
    assert verify(tmp_path).ok
