"""`newspipe replay` and `newspipe archive`; pipeline/cli.py calls `add_replay_commands`.

Also runnable alone (`python -m pipeline.replay.cli replay ...`), which the tests use.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from pipeline.cli_args import Formatter, RenamedFlag, exit_epilog
from pipeline.settings import Settings


def _cmd_replay(args: argparse.Namespace) -> int:
    from pipeline.replay.events import parse_time_ms
    from pipeline.replay.filters import EventFilter
    from pipeline.replay.runner import ReplayOptions, replay
    from pipeline.replay.safety import ReplayRefused

    try:
        opts = ReplayOptions(
            sources=list(args.sources),
            stream=args.stream,
            event_filter=EventFilter.from_text(args.since, args.until, args.source, args.stream),
            topic=args.topic,
            offline=Path(args.offline) if args.offline else None,
            from_topic=args.from_topic,
            from_dlq=args.from_dlq,
            codes=list(args.code or []),
            from_ms=_time(args.from_time, parse_time_ms),
            to_ms=_time(args.to_time, parse_time_ms),
            rate=args.rate,
            dry_run=args.dry_run,
            validate=args.validate,
            resume=Path(args.resume) if args.resume else None,
            new_run=args.new_run,
            checkpoint_every=args.checkpoint_every,
            batch=args.batch,
            linger_ms=args.linger_ms,
            force=args.force,
            keep_timestamps=not args.now_timestamps,
            log_every=args.log_every,
            run_id=args.run_id,
            resume_command=resume_command(sys.argv[1:], args) if args.resume else None,
        )
        summary = asyncio.run(replay(Settings.from_env(), opts))
    except (ReplayRefused, FileNotFoundError, ValueError) as exc:
        print(f"newspipe replay: error: {exc}", file=sys.stderr)
        return 2
    summary.render()
    if args.json:
        import orjson

        print(orjson.dumps(summary.as_dict()).decode(), flush=True)
    return summary.exit_code(args.allow_invalid)


def resume_command(argv: list[str], args: argparse.Namespace) -> str:
    """The command line that carries on this backfill: the same one, paths made absolute (they
    resolve the same from anywhere), without --new-run (it would start over again)."""
    paths = set(args.sources) | {args.resume, args.offline} - {None}
    out = ["newspipe"]
    for arg in argv:
        if arg == "--new-run":
            continue
        out.append(os.path.abspath(arg) if arg in paths and not arg.startswith("-") else arg)
    return shlex.join(out)


def _time(text: str | None, parse: Any) -> int | None:
    if text is None:
        return None
    found = parse(text)
    if found is None:
        raise ValueError(f"not an ISO-8601 time: {text!r}")
    return found


def _cmd_archive(args: argparse.Namespace) -> int:
    from pipeline.replay.archive import run_archive

    if args.archive_action == "verify":
        return _cmd_verify(args)
    if not args.dir:
        print("newspipe archive: error: --dir is required", file=sys.stderr)
        return 2
    settings = Settings.from_env()
    report = asyncio.run(
        run_archive(settings, Path(args.dir), args.topics or None, max_bytes=args.max_bytes,
                    idle_exit=args.idle_exit, from_beginning=args.from_beginning,
                    compress=not args.no_compress)
    )  # fmt: skip
    print(f"archived {report.records} records into {len(report.files)} files under {args.dir} "
          f"in {report.seconds:.1f}s")  # fmt: skip
    if report.records and report.manifest is not None:
        print(f"manifest: {report.manifest}")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from pipeline.replay.manifest import verify

    root = Path(args.archive)
    if not root.is_dir():
        print(f"newspipe archive verify: error: no such folder: {root}", file=sys.stderr)
        return 2
    verdict = verify(root, deep=not args.quick)
    for note in verdict.notes:
        print(note)
    for problem in verdict.problems:
        print(f"problem: {problem}")
    checked = "sizes" if args.quick else "sizes, checksums and line counts"
    state = "complete" if verdict.ok else f"NOT complete: {len(verdict.problems)} problem(s)"
    print(f"{root}: {verdict.runs} runs, {verdict.files} files, {verdict.records} records "
          f"({checked} checked): {state}")  # fmt: skip
    return 0 if verdict.ok else 1


def add_replay_commands(sub: Any) -> None:
    """Add `replay` and `archive` to an argparse subparsers object."""
    p = sub.add_parser(
        "replay", help="replay archives, files, pages, a topic range or the DLQ (backfills, "
        "redrives)",
        description="Replay raw events into the raw topics (default), another topic "
        "(--to-topic) or through the core offline (--offline DIR). Records carry the header "
        "newspipe-replay and their original timestamps; dedup in the worker makes a repeat "
        "harmless. --from-dlq redrives dead letters: each one's original bytes, key and headers "
        "go back to the raw topic it came from, once its cause is fixed (docs/operations.md).",
        epilog=exit_epilog({
            1: "Kafka unreachable or refusing; records not acknowledged; invalid (or, with "
               "--from-dlq, still failing) records without --allow-invalid",
            2: "bad settings or usage; refused before anything was read (flags that do not "
               "apply, a missing target, a checkpoint of another backfill)",
            130: "interrupted (Ctrl-C); the summary says how to resume",
        }),
        formatter_class=Formatter,
    )  # fmt: skip
    p.add_argument("sources", nargs="*", help="archive files/folders, JSON-lines files, pages "
                   "(.txt/.html); globs allowed")  # fmt: skip
    src = p.add_argument_group("sources")
    src.add_argument("--from-topic", help="replay this topic's records instead of files")
    src.add_argument("--from-dlq", action="store_true",
                     help="redrive the dead letters of this deployment's dlq topic, each to "
                     "the raw topic it came from; checked at the door first")  # fmt: skip
    src.add_argument("--from", dest="from_time", help="with --from-topic or --from-dlq: first "
                     "Kafka timestamp (ISO-8601; for the DLQ, when the record failed)")  # fmt: skip
    src.add_argument("--to", dest="to_time", help="with --from-topic or --from-dlq: end Kafka "
                     "timestamp, exclusive")  # fmt: skip
    tgt = p.add_argument_group("target")
    tgt.add_argument("--to-topic", "--topic", dest="topic", metavar="TOPIC", action=RenamedFlag,
                     help="produce into this topic instead of the raw topics")  # fmt: skip
    tgt.add_argument("--offline", metavar="DIR", help="run the core in process; write JSON lines")
    tgt.add_argument("--force", action="store_true", help="allow clean/internal target topics")
    flt = p.add_argument_group("filters")
    flt.add_argument("--since", help="event time >= this (ISO-8601)")
    flt.add_argument("--until", help="event time < this (ISO-8601)")
    flt.add_argument("--source", help="only events whose source is NAME")
    flt.add_argument("--stream", choices=["articles", "comments"],
                     help="only this stream (plain JSON lines: the stream they are)")  # fmt: skip
    flt.add_argument("--code", action="append", metavar="CODE",
                     help="with --from-dlq: only dead letters with this error code (repeat "
                     "for several; codes in pipeline/errors.py)")  # fmt: skip
    ctl = p.add_argument_group("control")
    ctl.add_argument("--rate", type=float, help="at most N events per second")
    ctl.add_argument("--dry-run", action="store_true",
                     help="a plan: count per stream, target and hour/day, validate, estimate the "
                     "duration at --rate; produce nothing")  # fmt: skip
    ctl.add_argument("--validate", action="store_true",
                     help="validate at the door first; invalid events are not sent")  # fmt: skip
    ctl.add_argument("--resume", metavar="CHECKPOINT", help="checkpoint file to resume from/write")
    ctl.add_argument("--new-run", action="store_true",
                     help="with --resume: start this backfill over, replacing the checkpoint "
                     "(instead of refusing one written with other sources or options)")  # fmt: skip
    ctl.add_argument("--checkpoint-every", type=int, default=1000, help="save every N acks")
    ctl.add_argument(
        "--batch",
        type=int,
        default=10_000,
        help="records in flight (sent, not yet acknowledged) before waiting",
    )
    ctl.add_argument(
        "--linger-ms",
        type=int,
        default=20,
        help="how long a partition's record batch waits for more records",
    )
    ctl.add_argument("--now-timestamps", action="store_true",
                     help="let the broker stamp records, not the event times")  # fmt: skip
    ctl.add_argument("--run-id", help="the value of the newspipe-replay header (default: the "
                     "checkpoint's when resuming, else random)")  # fmt: skip
    ctl.add_argument("--log-every", type=float, default=10.0, help="log interval without a TTY")
    ctl.add_argument("--allow-invalid", action="store_true", help="exit 0 despite invalid lines")
    ctl.add_argument("--json", action="store_true", help="also print the summary as JSON")
    p.set_defaults(func=_cmd_replay)

    p = sub.add_parser(
        "archive", help="archive the raw topics to dated, rotated JSON-lines files",
        description="Consume the raw topics (group <app_id>-archive) into "
        "DIR/<topic>/<YYYY-MM-DD>/part-NNNN.jsonl.gz with a manifest per run in "
        "DIR/_manifests/; offsets are committed after fsync. `archive verify DIR` checks it.",
        epilog=exit_epilog({2: "bad settings or usage (--dir missing)"}),
        formatter_class=Formatter,
    )  # fmt: skip
    actions = p.add_subparsers(dest="archive_action")
    v = actions.add_parser(
        "verify", help="check an archive against its manifests",
        description="Every manifest's files present with their size, checksum and line count, "
        "every part file in a manifest, and no hole in the offsets the runs covered. Exit 1 when "
        "anything is missing.",
        epilog=exit_epilog({1: "the archive is not complete (each problem on its own line)",
                            2: "bad usage; no such folder"}),
        formatter_class=Formatter,
    )  # fmt: skip
    v.add_argument("archive", help="archive root folder (the --dir it was written with)")
    v.add_argument("--quick", action="store_true", help="sizes only: no checksums, no reading")
    p.add_argument("--dir", help="archive root folder (required to archive)")
    p.add_argument("--topics", nargs="+", help="topics to archive (default: the raw topics)")
    p.add_argument("--max-bytes", type=int, default=64 * 1024 * 1024, help="rotate parts at this")
    p.add_argument("--idle-exit", type=float, help="stop after N seconds without new records")
    p.add_argument("--from-beginning", action="store_true",
                   help="read everything without a consumer group; commit nothing")  # fmt: skip
    p.add_argument("--no-compress", action="store_true", help="plain .jsonl instead of .jsonl.gz")
    p.set_defaults(func=_cmd_archive)


def build_parser() -> argparse.ArgumentParser:
    """`replay` and `archive` alone, as `python -m pipeline.replay.cli` runs them."""
    parser = argparse.ArgumentParser(prog="newspipe")
    add_replay_commands(parser.add_subparsers(dest="command", required=True))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
