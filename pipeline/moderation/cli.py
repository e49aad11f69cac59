"""`newspipe moderation`: show and edit the editors' lists on the `moderation.rules` topic.

Every list is one record keyed by its name (the whole list each time; the topic is compacted,
so the last record per name is the list). `add` and `remove` read the list, change it and write
it back: two editors changing the same list at the same moment may lose one change (the last
write wins); `show` afterwards says what the workers have. Writes go through the idempotent,
acks=all producer; running workers apply them within seconds (pipeline/stream/tables.py).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.moderation.folds import RulesFold
from pipeline.moderation.rules import LIST_NAMES, SEED_DIR, Rules
from pipeline.settings import Settings
from pipeline.topics import TopicNames


class MissingTopic(Exception):
    """The rules topic does not exist yet."""


async def read_rules(settings: Settings, timeout_s: float = 30.0) -> RulesFold:
    """The rules topic read whole (read_committed, no group) and folded as the workers fold it."""
    from pipeline import kafka_io  # lazy: the CLI's other commands need no Kafka client

    topic = TopicNames(settings.topic_prefix, settings.app_id).moderation_rules
    consumer = kafka_io.consumer(
        settings, enable_auto_commit=False, auto_offset_reset="earliest",
        isolation_level="read_committed",
    )  # fmt: skip
    fold = RulesFold()
    try:
        await consumer.start()
        await consumer._client.force_metadata_update()
        if not consumer.partitions_for_topic(topic):
            raise MissingTopic(topic)
        await kafka_io.assign_from_beginning(consumer, [topic])
        tps = list(consumer.assignment())
        ends = await consumer.end_offsets(tps)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            if loop.time() > deadline:
                raise TimeoutError(f"reading {topic} took over {timeout_s:.0f}s")
            batch = await consumer.getmany(timeout_ms=500, max_records=1000)
            for records in batch.values():
                for rec in records:
                    try:
                        fold.apply(rec.key, rec.value)
                    except (ValueError, KeyError, TypeError) as exc:
                        print(f"newspipe moderation: warning: record at offset {rec.offset} "
                              f"skipped: {exc}", file=sys.stderr)  # fmt: skip
    finally:
        await consumer.stop()
    return fold


async def write_list(settings: Settings, name: str, entries: Any, by: str) -> Rules:
    """Write one list (None: a tombstone, back to the seed); returns it as workers will see it."""
    from pipeline import kafka_io

    topic = TopicNames(settings.topic_prefix, settings.app_id).moderation_rules
    value = None
    if entries is not None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        value = Rules.record(name, entries, by, now)
    producer = kafka_io.producer(settings)
    try:
        await producer.start()
        await producer.send_and_wait(topic, value, key=name.encode())
    finally:
        await producer.stop()
    fold = RulesFold()
    fold.apply(name.encode(), value)
    return fold.value


def read_entries(path: str) -> list[str]:
    """A list file as the seed files are written: one entry a line, `#` starts a comment."""
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    return [line.split("#", 1)[0] for line in text.splitlines()]


def _editor() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return os.environ.get("USER", "unknown")


def _print_list(fold: RulesFold, name: str) -> None:
    entries = sorted(fold.value.get(name))
    written = fold.written.get(name)
    if written is None:
        seed = SEED_DIR.relative_to(SEED_DIR.parents[2]) / f"{name}.txt"
        origin = f"seed ({seed}; not set on the topic)"
    else:
        origin = f"set by {written.get('updated_by', '?')} at {written.get('updated_at', '?')}"
    print(f"{name}: {len(entries)} entries, {origin}")
    for entry in entries:
        print(f"  {entry}")


def cmd_moderation(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    try:
        fold = asyncio.run(read_rules(settings))
    except MissingTopic as exc:
        print(f"newspipe moderation: error: topic {exc} does not exist; run `newspipe topics "
              "create` (or start a worker) first", file=sys.stderr)  # fmt: skip
        return 1
    action = args.action
    if action == "show":
        for name in [args.list] if args.list else LIST_NAMES:
            _print_list(fold, name)
        return 0
    name = args.list
    current = fold.value.get(name)
    by = args.by or _editor()
    if action == "add":
        new: Any = current | RulesFold.clean(args.words)
    elif action == "remove":
        gone = RulesFold.clean(args.words)
        missing = sorted(gone - current)
        if missing:
            print(f"newspipe moderation: not in {name}: {', '.join(missing)}", file=sys.stderr)
        new = current - gone
    elif action == "set":
        try:
            new = RulesFold.clean(read_entries(args.file))
        except OSError as exc:
            print(f"newspipe moderation: error: {exc}", file=sys.stderr)
            return 2
    else:  # reset: a tombstone, the workers go back to the seed
        new = None
    rules = asyncio.run(write_list(settings, name, sorted(new) if new is not None else None, by))
    what = "reset to the seed" if new is None else "written"
    print(f"{name} {what}: {len(rules.get(name))} entries (running workers apply it within "
          "seconds)")  # fmt: skip
    return 0


def add_moderation_commands(sub: Any, make: Any) -> None:
    """`newspipe moderation show|add|remove|set|reset`; `make` is the CLI's subcommand maker."""
    p = make(sub, "moderation", "show or change the moderation word and author lists",
             "Show or change the editors' lists on the compacted moderation.rules topic "
             f"({', '.join(LIST_NAMES)}); running workers apply a change within seconds, no "
             "restart. A list nobody set is the repository's seed. Entries compare "
             "case-insensitively.",
             {1: "Kafka unreachable or refusing, or the rules topic does not exist yet",
              2: "bad settings or usage (an unknown list name), or an unreadable --file"},
             )  # fmt: skip
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    codes = {1: "Kafka unreachable or refusing, or the rules topic does not exist yet",
             2: "bad settings or usage (an unknown list name)"}  # fmt: skip
    lists = ", ".join(LIST_NAMES)
    show = make(actions, "show", "print the lists as the workers have them",
                "Print each list as the workers fold the rules topic: its entries and who set "
                "it when, or that it is the repository's seed.", codes)  # fmt: skip
    show.add_argument("list", nargs="?", choices=LIST_NAMES, metavar="LIST",
                      help=f"only this list ({lists})")  # fmt: skip
    for verb, text in (("add", "add entries to a list"), ("remove", "remove entries from a list")):
        q = make(actions, verb, text,
                 f"{text[0].upper()}{text[1:]}: reads the list, changes it and writes it whole "
                 "(the last write wins when two editors change one list at once).",
                 codes)  # fmt: skip
        q.add_argument("list", choices=LIST_NAMES, metavar="LIST", help=lists)
        q.add_argument("words", nargs="+", metavar="ENTRY",
                       help="a word, phrase (quoted) or author name")  # fmt: skip
    q = make(actions, "set", "replace a list with a file's entries",
             "Replace a list with the entries of a file written like the seed files.",
             {**codes, 2: "bad settings or usage (an unknown list name), or an unreadable "
              "--file"})  # fmt: skip
    q.add_argument("list", choices=LIST_NAMES, metavar="LIST", help=lists)
    q.add_argument("--file", required=True,
                   help="one entry a line, `#` starts a comment; - reads stdin; an empty file "
                   "empties the list")  # fmt: skip
    q = make(actions, "reset", "put a list back to the repository's seed",
             "Put a list back to the repository's seed (pipeline/data/moderation/): writes a "
             "tombstone for it.", codes)  # fmt: skip
    q.add_argument("list", choices=LIST_NAMES, metavar="LIST", help=lists)
    for q in (actions.choices["add"], actions.choices["remove"], actions.choices["set"],
              actions.choices["reset"]):  # fmt: skip
        q.add_argument("--by", default=None,
                       help="the editor named in the record (default: the login name)")  # fmt: skip
    p.set_defaults(func=cmd_moderation)
