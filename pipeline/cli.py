"""`newspipe`: one console script for the worker, the local broker, topics, ingest and tools."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from pipeline import __version__
from pipeline.settings import Settings, SettingsError


def _cmd_worker(args: argparse.Namespace) -> int:

    from pipeline.app import Worker, create_app
    from pipeline.kafka_io import create_topics

    settings = Settings.from_env()
    # the worker needs its state changelogs; creating is a no-op for topics that exist. A loop
    # of its own, so Faust still gets a fresh default loop.
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(create_topics(settings))
    finally:
        loop.close()
    app = create_app(settings)
    worker = Worker(
        app,
        loglevel=args.loglevel or settings.log_level,
        quiet=True,
        shutdown_timeout_s=settings.shutdown_timeout_s,
    )
    worker.execute_from_commandline()
    return 0


def _cmd_topics(args: argparse.Namespace) -> int:
    from pipeline.kafka_io import create_topics, delete_topics
    from pipeline.topics import TopicNames

    settings = Settings.from_env()
    if args.action == "create":
        created = asyncio.run(create_topics(settings))
        print(f"created {len(created)} topics: {', '.join(created) or '(all existed)'}")
    elif args.action == "delete":
        names = TopicNames(settings.topic_prefix, settings.app_id)
        asyncio.run(delete_topics(settings, names.all()))
        print("deleted the pipeline's topics")
    else:
        for name in TopicNames(settings.topic_prefix, settings.app_id).all():
            print(name)
    return 0


def _cmd_ingest(args: argparse.Namespace) -> int:
    from pipeline.ingest import ingest_paths

    settings = Settings.from_env()
    paths = [Path(p) for p in args.paths]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"newspipe ingest: error: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    reports = asyncio.run(ingest_paths(settings, paths, url=args.url, source=args.source))
    for r in reports:
        print(f"{r.path}: 1 article ({r.article_id}) + {r.comments} comments produced")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from pipeline.show import read_topics, render
    from pipeline.topics import TopicNames

    settings = Settings.from_env()
    names = TopicNames(settings.topic_prefix, settings.app_id)

    def enough(out: dict) -> bool:
        return len(out[names.clean_articles]) >= args.articles and (
            len(out[names.clean_comments]) >= args.comments
        )

    out = asyncio.run(
        read_topics(
            settings,
            [names.clean_articles, names.clean_comments],
            until=enough,
            timeout=args.timeout,
        )
    )
    render(out[names.clean_articles], out[names.clean_comments])
    if not enough(out):
        print(
            f"newspipe show: error: expected at least {args.articles} articles and "
            f"{args.comments} comments within {args.timeout:.0f}s",
            file=sys.stderr,
        )
        return 1
    return 0


def _cmd_broker(args: argparse.Namespace) -> int:
    """The local development broker lives in the checkout's `devtools`, not in the wheel: an
    editable install (`make install`) finds it beside `pipeline/`; an installed wheel does not."""
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "devtools" / "broker.py").is_file() and str(checkout) not in sys.path:
        sys.path.append(str(checkout))
    try:
        from devtools import broker
    except ImportError:
        print(
            "newspipe broker: error: the local development broker is not installed; run it from "
            "a source checkout (python -m devtools.broker start) or point NEWSPIPE_BROKER at a "
            "Kafka cluster",
            file=sys.stderr,
        )
        return 2
    return broker.main([args.action, *args.rest])


def _cmd_tag(args: argparse.Namespace) -> int:
    from pipeline.tagging import Tagger

    tagger = Tagger.load()
    tags = tagger.explain(" ".join(args.text))
    if not tags:
        print("no tags")
    for tag in tags:
        evidence = ", ".join(tag.get("evidence") or [])
        print(
            f"{tag['code']}  {tag['label']}  level {tag['level']}  score {tag['score']:.2f}"
            f"  evidence: {evidence}"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newspipe",
        description="Streaming news-and-comment pipeline on Kafka. Settings come from NEWSPIPE_* "
        "environment variables (see README).",
    )
    parser.add_argument("--version", action="version", version=f"newspipe {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "worker",
        help="run a stream worker (Faust)",
        description="Run a stream worker: consumes raw topics, emits clean ones.",
    )
    p.add_argument("--loglevel", default=None, help="log level (default NEWSPIPE_LOG_LEVEL)")
    p.set_defaults(func=_cmd_worker)

    p = sub.add_parser(
        "topics",
        help="create, list or delete the pipeline's topics",
        description="Manage the pipeline's topics (names in pipeline/topics.py).",
    )
    p.add_argument("action", choices=["create", "list", "delete"])
    p.set_defaults(func=_cmd_topics)

    p = sub.add_parser(
        "ingest",
        help="produce captured pages as raw events",
        description="Extract captured pages (text or HTML) and produce one raw "
        "article and one raw comment event per reader comment.",
    )
    p.add_argument("paths", nargs="+", help="captured page files")
    p.add_argument("--url", help="the page's URL when the capture does not carry it")
    p.add_argument("--source", help="source name (default: detected)")
    p.set_defaults(func=_cmd_ingest)

    p = sub.add_parser(
        "show",
        help="print the clean topics readably",
        description="Read clean.articles and clean.comments from the beginning and print them.",
    )
    p.add_argument("--articles", type=int, default=1, help="wait for at least this many articles")
    p.add_argument("--comments", type=int, default=0, help="wait for at least this many comments")
    p.add_argument("--timeout", type=float, default=60.0)
    p.set_defaults(func=_cmd_show)

    p = sub.add_parser(
        "broker",
        help="start/stop/status of the local Kafka broker",
        description="Local single-node Apache Kafka (KRaft) on 127.0.0.1.",
    )
    p.add_argument("action", choices=["start", "stop", "status", "fetch", "reset"])
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=_cmd_broker)

    p = sub.add_parser(
        "tag",
        help="print IPTC tags with their evidence for a text",
        description="Tag a text with IPTC Media Topics and show the evidence.",
    )
    p.add_argument("text", nargs="+")
    p.set_defaults(func=_cmd_tag)

    from pipeline.replay.cli import add_replay_commands

    add_replay_commands(sub)
    return parser


class _KafkaLogBuffer(logging.Handler):
    """Holds aiokafka's log records while a command runs (see `main`)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        Settings.from_env()
    except SettingsError as exc:
        for line in exc.problems:
            print(f"newspipe: error: {line}", file=sys.stderr)
        return 2
    if args.command == "worker":
        # Faust's worker reads sys.argv itself; hand it only the program name.
        sys.argv = sys.argv[:1]
        return int(args.func(args) or 0)
    # Kafka connection and authentication failures (wrong password, untrusted certificate, broker
    # down) become one line instead of aiokafka's log lines plus a traceback. aiokafka logs the
    # real cause ("SaslAuthenticationFailed: ...") and raises a generic "Unable to bootstrap", so
    # its records are held back while the command runs: replayed unchanged when the command
    # succeeds, summarised in the error line when it fails. Messages never carry the password.
    import ssl

    from aiokafka.errors import KafkaError

    from pipeline.kafka_io import TopicLayoutError

    kafka_log = logging.getLogger("aiokafka")
    buffer = _KafkaLogBuffer()
    propagate = kafka_log.propagate
    kafka_log.addHandler(buffer)
    kafka_log.propagate = False
    failed = False
    try:
        return int(args.func(args) or 0)
    except (KafkaError, ssl.SSLError) as exc:
        failed = True
        causes = [r.getMessage() for r in buffer.records if r.levelno >= logging.ERROR]
        settings = Settings.from_env()
        detail = causes[-1] if causes else f"{type(exc).__name__}: {exc}"
        via = settings.kafka_security_protocol
        if via.startswith("SASL"):
            via += f" {settings.kafka_sasl_mechanism or 'PLAIN'}"
        print(
            f"newspipe: error: Kafka at {settings.bootstrap_servers} ({via}): "
            + " ".join(detail.split()),
            file=sys.stderr,
        )
        return 1
    except (TopicLayoutError, TimeoutError) as exc:
        failed = True
        print(f"newspipe: error: {exc}", file=sys.stderr)
        return 1
    finally:
        kafka_log.removeHandler(buffer)
        kafka_log.propagate = propagate
        if not failed:
            for record in buffer.records:
                kafka_log.handle(record)


if __name__ == "__main__":
    sys.exit(main())
