"""`newspipe`: one console script for the worker, the local broker, topics, ingest and tools."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from pipeline import __version__
from pipeline.cli_args import Formatter, RenamedFlag, exit_epilog
from pipeline.settings import Settings, SettingsError


def _prepare_worker(args: argparse.Namespace) -> int:
    """Create the worker's topics (a no-op for those that exist) before Faust starts, inside
    `main`'s Kafka guard: an unreachable broker is one line here, not a Faust traceback. A loop of
    its own, so Faust still gets a fresh default loop."""
    from pipeline.kafka_io import create_topics

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(create_topics(Settings.from_env()))
    finally:
        loop.close()
    return 0


def _stop_while_starting(settings: Settings) -> None:
    """SIGTERM or SIGINT before the worker's own handlers are in place (it is still importing
    and loading its models, which takes seconds on a busy machine): say so and exit at once,
    there is nothing to commit yet. Faust replaces this handler when its loop starts."""
    import logging
    import logging.config
    import os
    import signal

    def stop(signum: int, _frame: object) -> None:
        from pipeline.logs import log_event, logging_config

        logging.config.dictConfig(logging_config(settings.log_level))
        waiting = ["nothing: the worker was still starting (loading its models)"]
        log_event(logging.getLogger("newspipe.worker"), logging.INFO, "shutdown_requested",
                  signal=signal.Signals(signum).name, budget_s=settings.shutdown_timeout_s,
                  waiting_for=waiting)  # fmt: skip
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(0)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)


def _cmd_worker(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    _stop_while_starting(settings)
    from pipeline.app import Worker, create_app
    from pipeline.runtime import settle_heap

    app = create_app(settings)
    settle_heap()  # the core's models are loaded: out of the garbage collector's sight
    app.newspipe_runner.metrics.watch_gc()  # type: ignore[attr-defined]
    worker = Worker(
        app,
        loglevel=args.loglevel or settings.log_level,
        quiet=True,
        shutdown_timeout_s=settings.shutdown_timeout_s,
    )
    worker.execute_from_commandline()
    return 0


def _cmd_topics(args: argparse.Namespace) -> int:
    from pipeline.kafka_io import app_topic_names, create_topics, delete_topics

    settings = Settings.from_env()
    if args.action == "create":
        created = asyncio.run(create_topics(settings))
        print(f"created {len(created)} topics: {', '.join(created) or '(all existed)'}")
    elif args.action == "delete":
        names = app_topic_names(settings)
        if not args.yes and not _confirm(
            f"delete every topic of app {settings.app_id!r} (prefix "
            f"{settings.topic_prefix!r}) on {settings.bootstrap_servers}, records included?"
        ):
            print(
                "newspipe topics: error: not confirmed; nothing deleted (pass --yes when no one "
                "can answer)",
                file=sys.stderr,
            )
            return 2
        deleted, absent = asyncio.run(delete_topics(settings, names))
        print(f"deleted {len(deleted)} topics: {', '.join(deleted) or '(none)'}")
        if absent:
            print(f"did not exist: {', '.join(absent)}")
    else:
        for name in app_topic_names(settings):
            print(name)
    return 0


def _confirm(question: str) -> bool:
    """A yes from a person at a terminal; no terminal (a script, CI) is a no."""
    if not sys.stdin.isatty():
        return False
    try:
        return input(f"{question} [y/N] ").strip().lower() in {"y", "yes"}
    except EOFError:
        return False


def _cmd_ingest(args: argparse.Namespace) -> int:
    from pipeline.ingest import ingest_paths

    settings = Settings.from_env()
    paths = [Path(p) for p in args.paths]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"newspipe ingest: error: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    reports = asyncio.run(ingest_paths(settings, paths, url=args.url, source=args.set_source))
    for r in reports:
        print(f"{r.path}: 1 article ({r.article_id}) + {r.comments} comments produced")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from pipeline.show import read_topics, render, render_dlq, render_trends
    from pipeline.topics import TopicNames

    settings = Settings.from_env()
    names = TopicNames(settings.topic_prefix, settings.app_id)
    if args.what in ("dlq", "trends"):
        topic = names.dlq if args.what == "dlq" else names.trends
        out = asyncio.run(read_topics(settings, [topic], timeout=args.timeout))
        (render_dlq if args.what == "dlq" else render_trends)(out[topic])
        return 0

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


def _checkout_broker() -> Any:
    """The local development broker lives in the checkout's `devtools`, not in the wheel: an
    editable install (`make install`) finds it beside `pipeline/`; an installed wheel does not."""
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "devtools" / "broker.py").is_file() and str(checkout) not in sys.path:
        sys.path.append(str(checkout))
    try:
        from devtools import broker
    except ImportError:
        return None
    return broker


def _cmd_broker(args: argparse.Namespace) -> int:
    broker = _checkout_broker()
    if broker is None:
        print(
            "newspipe broker: error: the local development broker is not installed; run it from "
            "a source checkout (python -m devtools.broker start) or point NEWSPIPE_BROKER at a "
            "Kafka cluster",
            file=sys.stderr,
        )
        return 2
    return int(broker.run(args))


def _cmd_tag(args: argparse.Namespace) -> int:
    from pipeline.tagging import Tagger

    tagger = Tagger.load()
    text = " ".join(args.text)
    tags = tagger.tag_article(title="", standfirst=None, body=text)
    if not tags:
        terms = sorted({m["term"] for m in tagger.explain(text)})
        print("no tags" + (f" (terms matched, too weak: {', '.join(terms)})" if terms else ""))
    for tag in tags:
        evidence = ", ".join(tag.get("evidence") or [])
        print(
            f"{tag['code']}  {tag['label']}  level {tag['level']}  score {tag['score']:.2f}"
            f"  evidence: {evidence}"
        )
    return 0


def _sub(sub: Any, name: str, help: str, description: str,
         extra_codes: dict[int, str] | None = None) -> argparse.ArgumentParser:  # fmt: skip
    """A subcommand with its exit codes in the help epilog."""
    return sub.add_parser(
        name, help=help, description=description, epilog=exit_epilog(extra_codes),
        formatter_class=Formatter,
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newspipe",
        description="Streaming news-and-comment pipeline on Kafka. Settings come from NEWSPIPE_* "
        "environment variables (docs/configuration.md); every command is in docs/cli.md.",
        epilog=exit_epilog(),
        formatter_class=Formatter,
    )
    parser.add_argument("--version", action="version", version=f"newspipe {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _sub(sub, "worker", "run a stream worker (Faust)",
             "Run a stream worker: creates the pipeline's topics if missing, consumes the raw "
             "topics, emits the clean ones, serves /metrics, /healthz, /readyz and /trends. "
             "Stops on SIGTERM or Ctrl-C.")  # fmt: skip
    p.add_argument("--loglevel", default=None, choices=["debug", "info", "warning", "error"],
                   help="log level (default NEWSPIPE_LOG_LEVEL)")  # fmt: skip
    p.set_defaults(func=_cmd_worker)

    p = _sub(sub, "topics", "create, list or delete the pipeline's topics",
             "Manage the pipeline's topics: names from NEWSPIPE_TOPIC_PREFIX and NEWSPIPE_APP_ID "
             "(pipeline/topics.py), plus the topics Faust makes for the app.",
             {2: "bad settings or usage; `delete` not confirmed"})  # fmt: skip
    p.add_argument("action", choices=["create", "list", "delete"],
                   help="create: the missing ones (existing ones are kept); list: print every "
                   "name; delete: every topic the app created, records included")  # fmt: skip
    p.add_argument("--yes", action="store_true",
                   help="delete without asking (needed when stdin is not a terminal)")  # fmt: skip
    p.set_defaults(func=_cmd_topics)

    p = _sub(
        sub,
        "ingest",
        "produce captured pages as raw events",
        "Extract captured pages (text or HTML) and produce one raw article and one raw "
        "comment event per reader comment.",
        {2: "bad settings or usage; a file is missing"},
    )
    p.add_argument("paths", nargs="+", help="captured page files")
    p.add_argument("--url", help="the page's URL when the capture does not carry it")
    p.add_argument("--set-source", "--source", dest="set_source", metavar="NAME",
                   action=RenamedFlag,
                   help="stamp this source name on the events (default: detected)")  # fmt: skip
    p.set_defaults(func=_cmd_ingest)

    p = _sub(sub, "show", "print the clean topics, the DLQ or the trends readably",
             "Read a topic from the beginning (read_committed, no consumer group) and print it: "
             "clean.articles and clean.comments (default), dlq (why each record was refused) or "
             "topic.trends (the latest count per window and topic).",
             {1: "Kafka unreachable or refusing; clean: fewer records than asked for within "
              "--timeout"})  # fmt: skip
    p.add_argument("what", nargs="?", default="clean", choices=["clean", "dlq", "trends"],
                   help="which topics (default clean)")  # fmt: skip
    p.add_argument("--articles", type=int, default=1,
                   help="clean: wait for at least this many articles (default 1)")  # fmt: skip
    p.add_argument("--comments", type=int, default=0,
                   help="clean: wait for at least this many comments (default 0)")  # fmt: skip
    p.add_argument("--timeout", type=float, default=60.0,
                   help="seconds to wait at most (default 60); reading stops earlier once "
                   "nothing new arrived for 2 s")  # fmt: skip
    p.set_defaults(func=_cmd_show)

    p = _sub(sub, "broker", "start/stop/status of the local Kafka broker (a checkout only)",
             "Local single-node Apache Kafka (KRaft) on 127.0.0.1, for development and tests. "
             "Needs Java 17+ and Maven, and Linux (it reads /proc).",
             {1: "the broker could not start or stop (one line says why)",
              2: "bad usage, or not run from a source checkout",
              3: "status: no broker runs"})  # fmt: skip
    broker = _checkout_broker()
    if broker is not None:
        broker.add_arguments(p)
    else:
        p.add_argument("action", choices=["start", "stop", "status", "fetch", "reset"],
                       help="only in a source checkout")  # fmt: skip
    p.set_defaults(func=_cmd_broker)

    p = _sub(
        sub,
        "tag",
        "print IPTC tags with their evidence for a text",
        "Tag a text as an article body with IPTC Media Topics and show the evidence.",
    )
    p.add_argument("text", nargs="+", help="the text (several words are joined)")
    p.set_defaults(func=_cmd_tag)

    from pipeline.replay.cli import add_replay_commands

    add_replay_commands(sub)

    from pipeline.moderation.cli import add_moderation_commands

    add_moderation_commands(sub, _sub)
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
        failed = _guarded(_prepare_worker, args)
        if failed:
            return failed
        # Faust's worker reads sys.argv itself; hand it only the program name.
        sys.argv = sys.argv[:1]
        return int(args.func(args) or 0)
    return _guarded(args.func, args)


def _guarded(func: Any, args: argparse.Namespace) -> int:
    """Run one command; Kafka and topic-layout errors become one line and exit 1."""
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
        return int(func(args) or 0)
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
