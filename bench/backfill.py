"""Backfill: a `newspipe archive` of N events replayed with `newspipe replay` into the raw topics
while newspipe workers run, timed from the first record replayed to the last clean record
committed; events/s and what that rate means for a 25.5M-event backfill.

The archive is bench/bench_replay.py's (the project's own archive format, dated part files over
six days, 10% articles); the replay is pipeline.replay's runner, the code behind `newspipe
replay DIR`; the workers are `newspipe worker` processes (bench/e2e.py's), started and ready
before the first record is sent. "Committed" is read from the workers' /metrics: records out,
duplicates and dead letters move only after their batch's transaction committed
(bench/e2e.py's settled()).

    .venv/bin/python -m bench.backfill --events 200000 --workers 1,2
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_replay import write_archive  # noqa: E402
from bench.e2e import (  # noqa: E402
    Worker,
    _delete,
    _topics_with,
    counter,
    free_port,
    gc_pauses,
    poll_interval,
    settled,
)
from pipeline.kafka_io import create_topics  # noqa: E402
from pipeline.replay.runner import ReplayOptions, replay  # noqa: E402
from pipeline.settings import Settings  # noqa: E402

TARGET_EVENTS = 25_500_000  # the backfill the issue sizes: 25.5M events
DEFAULT_EVENTS = 200_000


def hours_minutes(seconds: float) -> str:
    """A duration as '3 h 07 min' (or '12 min' under an hour)."""
    minutes = round(seconds / 60)
    h, m = divmod(minutes, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min"


def extrapolate(events_per_s: float, target: int = TARGET_EVENTS) -> dict[str, Any]:
    """Time for `target` events at a measured rate, assuming the rate holds."""
    seconds = target / events_per_s if events_per_s > 0 else float("inf")
    text = hours_minutes(seconds) if seconds != float("inf") else "never"
    return {"target_events": target, "target_seconds": seconds, "target_hours": seconds / 3600,
            "target_text": text}  # fmt: skip


class _Replay(threading.Thread):
    """The replay in its own thread (its own event loop), so this one can poll the workers."""

    def __init__(self, settings: Settings, archive: Path) -> None:
        super().__init__(daemon=True)
        self.settings, self.archive = settings, archive
        self.t_start = 0.0
        self.t_end: float | None = None
        self.summary: dict[str, Any] | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        # probe_targets off: the probe looks for a group's committed offsets, which running
        # workers that have not yet received a record do not have, and would warn of no reader
        opts = ReplayOptions(sources=[str(self.archive)], tty=False, log_every=1e9,
                             probe_targets=False)  # fmt: skip
        try:
            self.t_start = time.monotonic()
            summary = asyncio.run(replay(self.settings, opts))
            self.t_end = time.monotonic()
            self.summary = summary.as_dict()
        except BaseException as exc:  # reported by the caller, with the workers' logs
            self.error = exc


def one_run(settings: Settings, archive: Path, events: int, workers: int, logdir: Path,
            timeout: float) -> dict[str, Any]:  # fmt: skip
    """Start `workers` workers, wait until ready, replay the archive, wait for every event to
    settle; the clock runs from the replay's start to the poll that saw the last one."""
    procs = []
    for i in range(workers):
        own = replace(settings, web_port=free_port(), state_dir=logdir / f"state-{workers}-{i}")
        procs.append(Worker(own, logdir / f"{settings.app_id}-{i}.log").start())
    try:
        for w in procs:
            w.wait_ready(timeout=120)
        time.sleep(2.0)  # the group's first assignment, as an operator's running workers have it
        rep = _Replay(settings, archive)
        cpu0 = _cpu(procs)
        rep.start()
        deadline = time.monotonic() + timeout
        t_done = None
        done = 0.0
        timeline: list[tuple[float, float]] = []  # (time, records settled)
        while time.monotonic() < deadline:
            if rep.error is not None:
                raise RuntimeError(f"replay failed: {rep.error!r}")
            dead = [w for w in procs if not w.alive()]
            if dead:
                raise RuntimeError(f"worker exited:\n{dead[0].log.read_text()[-2000:]}")
            pages = [w.metrics() for w in procs]
            done = sum(settled(p) for p in pages)
            if done >= events:
                t_done = time.monotonic()
                break
            timeline.append((time.monotonic(), done))
            time.sleep(poll_interval(timeline, events))
        if t_done is None:
            raise RuntimeError(f"{workers} worker(s) settled {done:.0f} of {events} in {timeout}s")
        rep.join(timeout=60)
        cpu = _cpu(procs) - cpu0
    finally:
        for w in procs:
            w.stop()
    seconds = t_done - rep.t_start
    rate = events / seconds
    replay_s = (rep.t_end or t_done) - rep.t_start
    return {
        "workers": workers,
        "events": events,
        "first_replayed_to_last_committed_s": seconds,
        "events_per_s": rate,
        "replay_s": replay_s,
        "replay_events_per_s": events / replay_s if replay_s > 0 else float("nan"),
        "worker_cpu_us_per_event": cpu / events * 1e6,
        "records_out": sum(counter(p, "newspipe_records_out_total") for p in pages),
        "duplicates": sum(counter(p, "newspipe_duplicates_total") for p in pages),
        "dead_letters": sum(counter(p, "newspipe_dead_letters_total") for p in pages),
        "worker_gc_pause_s": gc_pauses(pages, "sum"),
        "replay_summary": rep.summary,
        **extrapolate(rate),
    }


def _cpu(workers: list[Worker]) -> float:
    from bench.e2e import _cpu_s

    return _cpu_s(workers)


def run(
    events: int = DEFAULT_EVENTS,
    workers: tuple[int, ...] = (1, 2),
    *,
    timeout: float = 1800.0,
    store: str | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """The backfill benchmark for each worker count; deletes every topic it made.
    `store`: the workers' state store (NEWSPIPE_STORE's values; default: the environment's)."""
    tag = uuid.uuid4().hex[:8]
    env = Settings.from_env()
    base = replace(env, topic_prefix=f"bf{tag}.", partitions=6, store=store or env.store)
    result: dict[str, Any] = {"events": events, "partitions": 6, "store": base.store, "runs": {}}
    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as tmp:
        root = Path(tmp)
        try:
            archive = write_archive(root / "archive", events, days=6, prefix=base.topic_prefix)
            size = sum(f.stat().st_size for f in archive.rglob("*.gz"))
            result["archive_mb_gzip"] = size / 1e6
            log(f"backfill: {events:,} archived events ({size / 1e6:.1f} MB gzip, 6 days)")
            for count in workers:
                # own topics per run (replay targets the settings' raw topics, whatever the
                # archive's names): each run's workers see this archive's events and no others
                own = replace(base, topic_prefix=f"bf{tag}w{count}.", app_id=f"bf{tag}-w{count}")
                asyncio.run(create_topics(own))
                log(f"backfill: replay into {count} running worker(s) on {base.store}")
                one = one_run(own, archive, events, count, root, timeout)
                result["runs"][str(count)] = one
                log(f"  {one['events_per_s']:,.0f} events/s first replayed -> last committed "
                    f"({one['first_replayed_to_last_committed_s']:.1f} s; replay alone "
                    f"{one['replay_s']:.1f} s); 25.5M events: {one['target_text']}")  # fmt: skip
        finally:
            doomed = asyncio.run(_topics_with(base, (f"bf{tag}",)))
            asyncio.run(_delete(base, doomed))
            result["topics_deleted"] = len(doomed)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=DEFAULT_EVENTS)
    ap.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    ap.add_argument("--store", help="the workers' state store (default: NEWSPIPE_STORE's)")
    args = ap.parse_args(argv)
    counts = tuple(int(c) for c in args.workers.split(",") if c)
    from bench.run import ensure_broker, exit_on_sigterm

    exit_on_sigterm()
    ensure_broker(print)  # as make bench does: its ports, never stopped here
    res = run(args.events, counts, store=args.store)
    print(orjson.dumps(res, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
