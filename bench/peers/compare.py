"""Peers: the same trivial job on the same input through the same local broker, one process each.

The job (bench/peers/job.py): decode a raw comment, lower-case + strip its text, drop ids seen
before (in memory), produce. Rows:

- aiokafka passthrough (bench/e2e.py's baseline: getmany, produce, acks, commit; no job): the floor
  every ratio is taken against;
- a Faust agent (faust-streaming, as newspipe runs it), doing the job;
- a Quix Streams app, doing the job, in its own venv (bench/peers/venv.py); skipped with a
  message when that venv cannot be made;
- a bare confluent-kafka loop doing the job, from the same venv;
- optionally (--worker) a newspipe worker over the same input (bench/e2e.py's run_workers).

Input: Fox News comments replicated with fresh ids, pre-loaded into one 6-partition raw topic.
Each peer reads it from the start in its own consumer group; rounds alternate the peers and the
median of the rounds is reported. CPU per event is the peer process's own user + system time
from its first record to its last commit (getrusage, every thread included).

    .venv/bin/python -m bench.peers --events 200000 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.e2e import _create, _delete, _topics_with, make_events, preload, run_workers  # noqa: E402
from bench.peers import venv  # noqa: E402
from bench.peers.job import REPORT_PREFIX  # noqa: E402
from pipeline.kafka_io import create_topics  # noqa: E402
from pipeline.settings import Settings  # noqa: E402
from pipeline.topics import TopicNames  # noqa: E402

PEERS = Path(__file__).resolve().parent
BASELINE = "aiokafka passthrough"
DEFAULT_EVENTS = 200_000
LABELS = {
    "aiokafka": BASELINE,
    "faust": "Faust agent",
    "quixstreams": "Quix Streams app",
    "confluent": "confluent-kafka loop",
    "newspipe": "newspipe worker",
}


def parse_report(stdout: str) -> dict[str, Any] | None:
    """The peer's report line, if it printed one (Faust's worker sends a print through its
    logging, so the line may carry a log prefix)."""
    for line in reversed(stdout.splitlines()):
        at = line.find(REPORT_PREFIX)
        if at >= 0:
            return json.loads(line[at + len(REPORT_PREFIX) :])
    return None


def run_peer(cmd: list[str], log_path: Path, timeout: float) -> dict[str, Any]:
    """Start one peer in its own session, wait for its report line, then stop it (SIGTERM, and
    SIGKILL if it lingers): Faust keeps running after its job is done, the others exit.

    Its stdout goes to a file polled here, so a chatty peer can never block on a full pipe."""
    out_path = log_path.with_suffix(".out")
    with open(log_path, "w") as err, open(out_path, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT, start_new_session=True)
    report = None
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            exited = proc.poll() is not None
            report = parse_report(out_path.read_text(errors="replace")) or parse_report(
                log_path.read_text(errors="replace")
            )
            if report is not None or exited:
                break
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=20)
    if report is None:
        tail = log_path.read_text(errors="replace")[-1500:]
        raise RuntimeError(f"{cmd[1]} gave no report (exit {proc.returncode}):\n{tail}")
    return report


def commands(
    peer: str, python: str, bootstrap: str, prefix: str, out: str, group: str, total: int,
    timeout: float,
) -> list[str]:  # fmt: skip
    """The command line of one peer."""
    topic = TopicNames(prefix).raw_comments
    common = ["--bootstrap", bootstrap, "--out", out, "--group", group, "--total", str(total)]
    if peer == "aiokafka":
        return [python, str(PEERS / "aiokafka_peer.py"), *common, "--prefix", prefix,
                "--timeout", str(timeout)]  # fmt: skip
    if peer == "confluent":
        return [python, str(PEERS / "confluent_peer.py"), *common, "--topic", topic,
                "--timeout", str(timeout)]  # fmt: skip
    script = {"faust": "faust_peer.py", "quixstreams": "quix_peer.py"}[peer]
    return [python, str(PEERS / script), *common, "--topic", topic]


def summarize(rounds: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Median events/s and CPU us/event per peer, and the ratio to the aiokafka passthrough."""
    out: dict[str, dict[str, Any]] = {}
    for peer, runs in rounds.items():
        if not runs:
            continue
        out[peer] = {
            "label": LABELS[peer],
            "events_per_s": statistics.median(r["events_per_s"] for r in runs),
            "cpu_us_per_event": statistics.median(r["cpu_us_per_event"] for r in runs),
            "runs_events_per_s": [r["events_per_s"] for r in runs],
            "runs": runs,
        }
    base = out.get("aiokafka", {}).get("events_per_s")
    for entry in out.values():
        entry["ratio_to_passthrough"] = entry["events_per_s"] / base if base else None
    return out


def run(
    events: int = DEFAULT_EVENTS,
    rounds: int = 3,
    *,
    peers: tuple[str, ...] = ("aiokafka", "faust", "quixstreams", "confluent"),
    worker: bool = False,
    timeout: float = 900.0,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """The whole peers benchmark; returns its figures (and deletes every topic it made)."""
    tag = uuid.uuid4().hex[:8]
    settings = replace(Settings.from_env(), topic_prefix=f"peers{tag}.", app_id=f"peers{tag}",
                       partitions=6)  # fmt: skip
    result: dict[str, Any] = {"events": events, "rounds": rounds, "partitions": 6, "skipped": {}}
    wanted = list(peers)
    side = [p for p in wanted if p in ("quixstreams", "confluent")]
    side_python: Path | None = None
    if side:
        side_python, what = venv.ensure()
        log(f"peers: {what}")
        if side_python is None:
            for p in side:
                result["skipped"][p] = what
                wanted.remove(p)
                log(f"peers: skipping {LABELS[p]}: {what}")
        result["versions"] = venv.versions(side_python)
    runs: dict[str, list[dict[str, Any]]] = {p: [] for p in wanted}
    if worker:
        runs["newspipe"] = []
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp:
        logdir = Path(tmp)
        try:
            asyncio.run(create_topics(settings))
            items = make_events(events, 0)
            result["raw_mb"] = sum(len(v) for _, _, v, _ in items) / 1e6
            log(f"peers: pre-loading {events:,} comments ({result['raw_mb']:.1f} MB), 6 partitions")
            result["preload_events_per_s"] = asyncio.run(preload(settings, items))
            del items
            for rnd in range(rounds):
                for peer in wanted:
                    out = f"{settings.topic_prefix}peers.{peer}.r{rnd}"
                    asyncio.run(_create(settings, out, 6))
                    python = str(side_python) if peer in side else sys.executable
                    cmd = commands(peer, python, settings.bootstrap_servers,
                                   settings.topic_prefix, out, f"{settings.app_id}-{peer}-r{rnd}",
                                   events, timeout)  # fmt: skip
                    rep = run_peer(cmd, logdir / f"{peer}-r{rnd}.log", timeout)
                    runs[peer].append(rep)
                    log(f"  round {rnd + 1}: {LABELS[peer]:22} {rep['events_per_s']:10,.0f} ev/s,"
                        f" {rep['cpu_us_per_event']:6.0f} cpu us/ev")  # fmt: skip
                if worker:
                    own = replace(settings, app_id=f"{settings.app_id}-w-r{rnd}")
                    rnd_dir = logdir / f"worker-r{rnd}"  # run_workers' state-0 is per folder
                    rnd_dir.mkdir()
                    one = run_workers(own, 1, events, rnd_dir, timeout)
                    rep = {"events_per_s": one["events_per_s"],
                           "cpu_us_per_event": one["worker_cpu_us_per_event"],
                           "steady_events_per_s": one["steady_events_per_s"]}  # fmt: skip
                    runs["newspipe"].append(rep)
                    log(f"  round {rnd + 1}: {LABELS['newspipe']:22} "
                        f"{rep['events_per_s']:10,.0f} ev/s, {rep['cpu_us_per_event']:6.0f} "
                        "cpu us/ev")  # fmt: skip
        finally:
            doomed = asyncio.run(_topics_with(settings, (settings.topic_prefix, settings.app_id)))
            asyncio.run(_delete(settings, doomed))
            result["topics_deleted"] = len(doomed)
    result["peers"] = summarize(runs)
    return result


def rows(
    res: dict[str, Any], worker_from_e2e: dict[str, Any] | None = None
) -> list[tuple[str, str, str, str]]:
    """(system, events/s, CPU us/event, ratio vs aiokafka passthrough) rows, median of rounds.

    `worker_from_e2e` is bench/e2e.py's result of the same `make bench`: its one-worker row and
    its ratio against its own passthrough (comments and articles), marked as such."""
    out: list[tuple[str, str, str, str]] = []
    for entry in res.get("peers", {}).values():
        ratio = entry.get("ratio_to_passthrough")
        out.append((entry["label"], f"{entry['events_per_s']:,.0f}",
                    f"{entry['cpu_us_per_event']:.0f}",
                    "-" if ratio is None else f"{ratio:.2f}"))  # fmt: skip
    if worker_from_e2e and "newspipe" not in res.get("peers", {}):
        one = worker_from_e2e["one_worker"]
        out.append(("newspipe worker (e2e run)", f"{one['events_per_s']:,.0f}",
                    f"{one['worker_cpu_us_per_event']:.0f}",
                    f"{worker_from_e2e['ratio_one_worker_to_passthrough']:.2f} (vs e2e's "
                    "passthrough)"))  # fmt: skip
    for peer, why in res.get("skipped", {}).items():
        out.append((LABELS[peer], "skipped", "", why))
    return out


def print_rows(table: list[tuple[str, str, str, str]]) -> str:
    head = ("system", "events/s", "CPU us/event", "ratio vs aiokafka passthrough")
    widths = [max([len(h)] + [len(r[i]) for r in table]) for i, h in enumerate(head)]
    lines = [" | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in table]
    text = "\n".join(lines)
    print(text)
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=DEFAULT_EVENTS)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--peers",
        default="aiokafka,faust,quixstreams,confluent",
        help="comma-separated subset of: aiokafka,faust,quixstreams,confluent",
    )
    ap.add_argument("--worker", action="store_true", help="also a newspipe worker, same input")
    ap.add_argument("--json", type=Path, help="write the figures here too")
    args = ap.parse_args(argv)
    peers = tuple(p for p in args.peers.split(",") if p)
    unknown = set(peers) - set(LABELS) - {"newspipe"}
    if unknown:
        ap.error(f"unknown peers: {', '.join(sorted(unknown))}")
    from bench.run import ensure_broker, exit_on_sigterm

    exit_on_sigterm()
    ensure_broker(print)  # as make bench does: its ports, never stopped here
    res = run(args.events, args.rounds, peers=peers, worker=args.worker)
    print()
    res["table"] = print_rows(rows(res))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    return 0
