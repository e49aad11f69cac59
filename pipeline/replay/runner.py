"""The thin shell: read sources, filter, then produce to Kafka, count (dry run) or run the core
offline. All decisions live in the pure modules; this file only moves events and counts them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from pipeline import kafka_io
from pipeline.replay.archive import install_signals
from pipeline.replay.bucket import TokenBucket
from pipeline.replay.checkpoint import Checkpoint
from pipeline.replay.events import BadLine, Event, guess_stream, stream_of_topic
from pipeline.replay.filters import EventFilter
from pipeline.replay.manifest import prune
from pipeline.replay.outbox import Outbox
from pipeline.replay.plan import Plan
from pipeline.replay.report import Feedback, Summary
from pipeline.replay.safety import (
    ReplayRefused,
    check_flags,
    check_source_topic,
    check_targets,
    iso,
)
from pipeline.replay.sources import (
    LINE_SUFFIXES,
    PAGE_SUFFIXES,
    CountingReader,
    Item,
    expand_sources,
    passed_over,
    read_file,
)
from pipeline.settings import Settings
from pipeline.topics import ARTICLES, COMMENTS, REPLAY_HEADER, TopicNames

OFFLINE_BATCH = 500  # records of one stream through the core at once (offline mode)


@dataclass
class ReplayOptions:
    """Everything `newspipe replay` accepts, as data (the CLI only fills this in)."""

    sources: list[str] = field(default_factory=list)
    stream: str | None = None
    event_filter: EventFilter = field(default_factory=EventFilter)
    topic: str | None = None
    offline: Path | None = None
    from_topic: str | None = None
    from_dlq: bool = False  # the redrive: dead letters back to their original raw topics
    codes: list[str] = field(default_factory=list)  # with from_dlq: only these error codes
    from_ms: int | None = None
    to_ms: int | None = None
    rate: float | None = None
    dry_run: bool = False
    validate: bool = False
    resume: Path | None = None
    new_run: bool = False  # with --resume: start over instead of refusing another backfill's file
    checkpoint_every: int = 1000
    batch: int = 10_000  # produce futures in flight before the oldest is awaited
    linger_ms: int = 20
    force: bool = False
    keep_timestamps: bool = True
    log_every: float = 10.0
    run_id: str | None = None  # None: the checkpoint's when resuming, else a new random one
    tty: bool | None = None
    resume_command: str | None = None  # the CLI's exact command line, for the summary
    probe_targets: bool = True  # ask the broker whether targets exist and are read


class _Sources:
    """Async iteration over every source, with progress measured in bytes (files) or records."""

    def __init__(self, settings: Settings, opts: ReplayOptions, files: list[Path],
                 checkpoint: Checkpoint, summary: Summary) -> None:  # fmt: skip
        self.settings = settings
        self.summary = summary
        self.opts = opts
        self.files = files
        self.checkpoint = checkpoint
        self.total = float(sum(f.stat().st_size for f in files)) or None
        self.unit = "records" if opts.from_topic or opts.from_dlq else "bytes"
        self._done_bytes = 0
        self._counter: CountingReader | None = None
        self._records = 0

    def out_of_range(self, origin: str, position: int) -> None:
        """A topic record outside [--from, --to): read and filtered, as a file line would be."""
        self.summary.read += 1
        self.summary.skipped_filter += 1
        self._records += 1
        self.checkpoint.passed(origin, position)

    def done(self) -> float:
        if self.opts.from_topic or self.opts.from_dlq:
            return self._records
        return self._done_bytes + (self._counter.count if self._counter else 0)

    async def __aiter__(self) -> AsyncIterator[Item]:
        if self.opts.from_topic:
            async for event in read_topic_range(self.settings, self.opts, self.checkpoint, self):
                self._records += 1
                yield event
        if self.opts.from_dlq:
            async for event in self._dead_letters():
                yield event
        for path in self.files:
            counter = self._counter = CountingReader(open(path, "rb"))
            whole = False
            try:
                for item in read_file(path, self.opts.stream, counter=counter):
                    yield item
                whole = True
            finally:
                self._counter = None
                # stopped early (Ctrl-C): only what was read counts towards progress
                self._done_bytes += path.stat().st_size if whole else counter.count
                counter.close()

    async def _dead_letters(self) -> AsyncIterator[Event]:
        """The DLQ's records as the events they were; a letter that cannot or need not be sent
        (a code not asked for, a truncated payload, a repeat) is read and skipped with why."""
        from pipeline.replay.deadletters import REPEATED, identity, unwrap

        names = TopicNames(self.settings.topic_prefix, self.settings.app_id)
        raw = {ARTICLES: names.raw_articles, COMMENTS: names.raw_comments}
        codes = frozenset(self.opts.codes)
        seen: set[int] = set()
        async for origin, msg in _topic_messages(self.settings, self.opts, names.dlq,
                                                 self.checkpoint, self):  # fmt: skip
            self._records += 1
            if self.checkpoint.already_done(origin, msg.offset):
                self.summary.skipped_resume += 1
                self.checkpoint.passed(origin, msg.offset)
                continue
            letter = unwrap(msg.value, origin, msg.offset, raw, codes)
            reason = letter.skipped
            if letter.event is not None and (mark := identity(letter.event)) in seen:
                reason = REPEATED
            if reason is not None or letter.event is None:
                self.summary.read += 1
                self.summary.skipped[reason or "?"] += 1
                self.checkpoint.passed(origin, msg.offset)
                continue
            seen.add(mark)
            yield letter.event


async def read_topic_range(settings: Settings, opts: ReplayOptions, checkpoint: Checkpoint,
                           sources: _Sources | None = None) -> AsyncIterator[Event]:  # fmt: skip
    """Records of `opts.from_topic` whose Kafka timestamps fall in [from, to), as events."""
    topic = opts.from_topic
    assert topic
    default_stream = stream_of_topic(topic) or opts.stream
    async for origin, msg in _topic_messages(settings, opts, topic, checkpoint, sources):
        record = _loads(msg.value)
        stream = default_stream or (guess_stream(record) if record else ARTICLES)
        yield Event(stream, msg.value or b"", msg.key, msg.timestamp, origin, msg.offset, record,
                    list(msg.headers or ()), topic)  # fmt: skip


async def _topic_messages(
    settings: Settings, opts: ReplayOptions, topic: str, checkpoint: Checkpoint,
    sources: _Sources | None = None,
) -> AsyncIterator[tuple[str, Any]]:  # fmt: skip
    """(origin, message) for the records of `topic` whose Kafka timestamps fall in [from, to).

    `offsets_for_times(from)` gives a safe first offset (everything before it is older). The end
    is the log end, not `offsets_for_times(to)`: producers may set timestamps out of order (a
    replay does), so records inside the window can sit after the first one past it. Records
    outside the window are counted as skipped by filter.
    """
    from aiokafka import TopicPartition

    consumer = kafka_io.consumer(
        settings, enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic)
        if parts is None:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic)
        if not parts:
            raise ValueError(f"no such topic: {topic}")
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        begin = await consumer.beginning_offsets(tps)
        end = await consumer.end_offsets(tps)
        start = dict(begin)
        stop = dict(end)
        if opts.from_ms is not None:
            found = await consumer.offsets_for_times({tp: opts.from_ms for tp in tps})
            start = {tp: (found[tp].offset if found.get(tp) else end[tp]) for tp in tps}
        for tp in tps:
            done = checkpoint.loaded.get(f"kafka:{topic}:{tp.partition}")
            if done is not None:
                start[tp] = max(start[tp], done + 1)
        todo = [tp for tp in tps if start[tp] < stop[tp]]
        if sources is not None:
            sources.total = float(sum(stop[tp] - start[tp] for tp in todo)) or None
        if not todo:
            return
        consumer.assign(todo)
        for tp in todo:
            consumer.seek(tp, start[tp])
        remaining = set(todo)
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000, max_records=2000)
            for tp, messages in batch.items():
                for msg in messages:
                    if msg.offset >= stop[tp]:
                        break
                    if (opts.from_ms is not None and msg.timestamp < opts.from_ms) or (
                        opts.to_ms is not None and msg.timestamp >= opts.to_ms
                    ):
                        if sources is not None:
                            sources.out_of_range(f"kafka:{topic}:{tp.partition}", msg.offset)
                        continue
                    yield f"kafka:{topic}:{tp.partition}", msg
            for tp in list(remaining):
                if await consumer.position(tp) >= stop[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()


def _loads(value: bytes | None) -> dict[str, Any] | None:
    try:
        obj = orjson.loads(value) if value else None
    except orjson.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None


def targets_for(settings: Settings, opts: ReplayOptions) -> dict[str, str]:
    names = TopicNames(settings.topic_prefix)
    if opts.topic:
        return {ARTICLES: opts.topic, COMMENTS: opts.topic}
    return {ARTICLES: names.raw_articles, COMMENTS: names.raw_comments}


def _validator(settings: Settings) -> Callable[[Event], BadLine | None]:
    from pipeline.errors import Rejected
    from pipeline.validate import DoorValidator

    door = DoorValidator(settings)

    def check(event: Event) -> BadLine | None:
        try:
            door.check_key(event.key)
            if event.stream == ARTICLES:
                door.raw_article(event.value)
            else:
                door.raw_comment(event.value)
        except Rejected as exc:
            return BadLine(event.origin, event.position, f"{exc.code}: {exc.message}"[:300])
        return None

    return check


def _headers(event: Event, run_id: bytes) -> list[tuple[str, bytes]]:
    headers = [(k, v) for k, v in event.headers if k != REPLAY_HEADER]
    headers.append((REPLAY_HEADER, run_id))
    return headers


def covers_of(opts: ReplayOptions, targets: dict[str, str]) -> dict[str, Any]:
    """What a checkpoint is for: sources as absolute paths (a relative path typed from the same
    folder matches), window and filters as ISO text, and the targets."""
    f = opts.event_filter

    def t(ms: int | None) -> str | None:
        return iso(ms) if ms is not None else None

    into = (
        [f"offline:{os.path.abspath(opts.offline)}"]
        if opts.offline
        else sorted(set(targets.values()))
    )
    redrive = {"from_dlq": True, "codes": sorted(opts.codes)} if opts.from_dlq else {}
    return {
        "sources": sorted(os.path.abspath(s) for s in opts.sources), **redrive,
        "from_topic": opts.from_topic, "from": t(opts.from_ms), "to": t(opts.to_ms),
        "since": t(f.since_ms), "until": t(f.until_ms), "source": f.source, "stream": f.stream,
        "validate": opts.validate, "targets": into,
    }  # fmt: skip


async def replay(settings: Settings, opts: ReplayOptions,
                 stop: asyncio.Event | None = None) -> Summary:  # fmt: skip
    """Run one replay; the mode is offline, dry run (a plan) or Kafka (the default)."""
    f = opts.event_filter
    check_flags(has_files=bool(opts.sources), from_topic=opts.from_topic,
                from_dlq=opts.from_dlq, codes=bool(opts.codes), from_ms=opts.from_ms,
                to_ms=opts.to_ms, since_ms=f.since_ms, until_ms=f.until_ms, topic=opts.topic,
                offline=opts.offline is not None, dry_run=opts.dry_run,
                resume=opts.resume is not None, new_run=opts.new_run,
                rate=opts.rate)  # fmt: skip
    if opts.from_topic:
        check_source_topic(opts.from_topic, opts.force)
    mode = "offline" if opts.offline else "dry-run" if opts.dry_run else "kafka"
    files, missing = expand_sources(opts.sources)
    if missing:
        raise FileNotFoundError(f"nothing matches: {', '.join(missing)}")
    ignored = passed_over(opts.sources)
    targets = targets_for(settings, opts)
    topics = sorted(set(targets.values()))
    if mode != "offline":
        check_targets(topics, opts.force)
    checkpoint = Checkpoint(opts.resume, opts.run_id or "", opts.checkpoint_every,
                            covers_of(opts, targets))  # fmt: skip
    if opts.new_run:
        checkpoint.start_over()
    else:
        checkpoint.check_same_backfill()
    run_id = opts.run_id or checkpoint.saved_run_id or uuid.uuid4().hex[:12]
    checkpoint.run_id = run_id
    summary = Summary(mode=mode, run_id=run_id, redrive=opts.from_dlq)
    if opts.resume is not None:
        summary.checkpoint = os.path.abspath(opts.resume)
        summary.resume_command = opts.resume_command
        if checkpoint.old_version:
            summary.warnings.append(f"{opts.resume} is an old checkpoint that does not record "
                                    "its filters: it is assumed to match them")  # fmt: skip
    if ignored:
        shown = ", ".join(str(p) for p in ignored[:5]) + (" ..." if len(ignored) > 5 else "")
        summary.warnings.append(
            f"skipped {len(ignored)} file(s) in the source folders that are not event files "
            f"(event files end in {', '.join(LINE_SUFFIXES + PAGE_SUFFIXES)}): {shown}"
        )
    names = TopicNames(settings.topic_prefix)
    summary.into_raw = bool({names.raw_articles, names.raw_comments} & set(topics))
    if mode == "dry-run":
        checkpoint.path = None  # a dry run honours a checkpoint but must never advance it
        summary.plan = Plan(targets=topics, rate=opts.rate)
    if mode != "offline" and opts.probe_targets:
        await _check_broker(settings, topics, names, summary, dry=mode == "dry-run")
    files, pruned, pruned_records = prune(files, f.since_ms, f.until_ms)
    summary.pruned_files, summary.pruned_records = len(pruned), pruned_records
    for warning in summary.warnings:
        print(f"newspipe replay: warning: {warning}", file=sys.stderr, flush=True)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = install_signals(loop, stop)
    sources = _Sources(settings, opts, files, checkpoint, summary)
    # a redrive always checks at the door first: a letter whose cause is not fixed yet is
    # reported as still failing instead of being dead-lettered again
    check = opts.validate or opts.dry_run or opts.from_dlq
    validate = _validator(settings) if check else None
    try:
        if mode == "offline":
            assert opts.offline is not None
            await _run_offline(settings, opts, sources, checkpoint, summary, stop, validate)
        elif mode == "dry-run":
            await _run_plan(opts, sources, checkpoint, summary, stop, validate, targets)
        else:
            await _run_kafka(settings, opts, sources, checkpoint, summary, stop, validate,
                             targets)  # fmt: skip
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        summary.finished = time.monotonic()
    return summary


async def _check_broker(settings: Settings, topics: list[str], names: TopicNames,
                        summary: Summary, dry: bool) -> None:  # fmt: skip
    """Missing targets are refused; raw targets nobody reads are warned about. A dry run with no
    broker still plans, and says the targets were not checked."""
    from aiokafka.errors import KafkaError

    from pipeline.replay.probe import probe, target_findings

    raw = {names.raw_articles, names.raw_comments}
    try:
        info = await probe(settings, topics, raw)
    except (KafkaError, OSError, TimeoutError) as exc:
        if not dry:
            raise
        if summary.plan is not None:
            summary.plan.checked = (f"targets NOT checked: broker {settings.bootstrap_servers} "
                                    f"unreachable ({type(exc).__name__})")  # fmt: skip
        return
    errors, warnings = target_findings(topics, info, raw, settings.topic_prefix)
    if errors:
        raise ReplayRefused("; ".join(errors))
    summary.warnings.extend(warnings)
    if summary.plan is not None:
        summary.plan.checked = f"targets exist on {settings.bootstrap_servers}"


def _admit(
    item: Item, opts: ReplayOptions, checkpoint: Checkpoint, summary: Summary,
    validate: Callable[[Event], BadLine | None] | None,
) -> Event | None:  # fmt: skip
    """Count the item and decide whether it goes on; everything that stops here is `passed`."""
    if checkpoint.already_done(item.origin, item.position):
        summary.skipped_resume += 1
        checkpoint.passed(item.origin, item.position)
        return None
    summary.read += 1
    if isinstance(item, BadLine):
        summary.add_invalid(item)
        checkpoint.passed(item.origin, item.position)
        return None
    if not opts.event_filter.keeps(item):
        summary.skipped_filter += 1
        checkpoint.passed(item.origin, item.position)
        return None
    if validate is not None:
        bad = validate(item)
        if bad is not None:
            summary.add_invalid(bad)
            checkpoint.passed(item.origin, item.position)
            return None
    return item


async def _run_kafka(
    settings: Settings, opts: ReplayOptions, sources: _Sources, checkpoint: Checkpoint,
    summary: Summary, stop: asyncio.Event, validate: Callable[[Event], BadLine | None] | None,
    targets: dict[str, str],
) -> None:  # fmt: skip
    from aiokafka.errors import KafkaError, MessageSizeTooLargeError
    from aiokafka.record.default_records import DefaultRecordBatchBuilder

    from pipeline.kafka_io import raw_producer, raw_record_limit
    from pipeline.topics import RAW_ARTICLES

    run_id = summary.run_id.encode()
    only_header = [(REPLAY_HEADER, run_id)]
    bucket = TokenBucket(opts.rate) if opts.rate else None
    prod = raw_producer(settings, linger_ms=opts.linger_ms)
    limit = raw_record_limit(settings, RAW_ARTICLES)  # raw_producer's max_request_size
    track = opts.resume is not None  # per-ack bookkeeping only when a checkpoint is kept
    partition_of: dict[tuple[str, bytes], int] = {}

    def settled(marks: list[tuple[str, int]], fut: asyncio.Future[Any]) -> None:
        """A batch answered: its records are produced, or failed and left in flight for the
        checkpoint (a resumed run sends them again)."""
        if fut.cancelled() or fut.exception() is not None:
            reason = repr(fut.exception()) if not fut.cancelled() else "cancelled"
            summary.failed += len(marks)
            summary.failures[reason] += len(marks)
            return
        summary.produced += len(marks)
        if track:
            due = False
            for origin, position in marks:
                due = checkpoint.acked(origin, position) or due
            if due:
                checkpoint.save()

    outbox = Outbox(prod, settled, linger_s=opts.linger_ms / 1000, window=opts.batch)

    def partition(topic: str, key: bytes | None, value: bytes) -> int:
        """The producer's own partitioner, once per key: comments share their article's key,
        and aiokafka's pure-Python murmur2 was the largest single cost per record. A record
        without a key goes where the partitioner picks (any available partition)."""
        if key is None:
            return prod._partition(topic, None, None, None, None, value)  # type: ignore[no-any-return]
        found = partition_of.get((topic, key))
        if found is None:
            if len(partition_of) > 200_000:
                partition_of.clear()
            found = prod._partition(topic, None, None, None, key, value)  # type: ignore[union-attr]
            partition_of[(topic, key)] = found
        return found

    async def produce(event: Event) -> None:
        ts = None
        if opts.keep_timestamps:
            ts = event.timestamp_ms or event.event_time_ms()
        topic = targets[event.stream]
        headers = _headers(event, run_id) if event.headers else only_header
        part = partition(topic, event.key, event.value)
        if track:
            checkpoint.sent(event.origin, event.position)
        size = DefaultRecordBatchBuilder.estimate_size_in_bytes(event.key, event.value, headers)
        if size > limit:  # what the producer's `send` refuses: counted, and a resume retries it
            exc = MessageSizeTooLargeError(f"the record is {size} bytes, more than the "
                                           f"producer's max_request_size of {limit}")  # fmt: skip
            summary.failed += 1
            summary.failures[f"{event.where}: {exc!r}"[:200]] += 1
            return
        await outbox.add(topic, part, event.key, event.value, ts, headers,
                         (event.origin, event.position))  # fmt: skip

    await prod.start()
    try:
        for topic in sorted(set(targets.values())):
            await prod.partitions_for(topic)
    except KafkaError as exc:
        await prod.stop()
        hint = "create it first, e.g. `newspipe topics create`"
        raise ValueError(f"target topic missing or unreachable: {exc!r} ({hint})") from None
    try:
        with Feedback(
            summary, sources.total, opts.log_every, tty=opts.tty, unit=sources.unit
        ) as feedback:
            # before the rate's bucket sleeps, what is open goes: a slow replay does not hold
            # its last records until the next one comes
            admitted = _admitted(sources, opts, checkpoint, summary, validate, stop, feedback,
                                 bucket, idle=outbox.ship_all)  # fmt: skip
            async with contextlib.aclosing(admitted) as events:
                async for event in events:
                    await produce(event)
            if stop.is_set():
                summary.interrupted = True
            feedback.update(sources.done(), sources.total)
    finally:
        # Flush on every exit (end, Ctrl-C, error): acked sends reach the checkpoint.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(outbox.flush(), timeout=60)
        outbox.abandon("not sent: the flush at exit ran out of time")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(prod.flush(), timeout=60)
        await prod.stop()
        checkpoint.save()


async def _admitted(
    sources: _Sources, opts: ReplayOptions, checkpoint: Checkpoint, summary: Summary,
    validate: Callable[[Event], BadLine | None] | None, stop: asyncio.Event, feedback: Any,
    bucket: TokenBucket | None = None, idle: Callable[[], Awaitable[None]] | None = None,
) -> AsyncIterator[Event]:  # fmt: skip
    """The events every mode acts on: read, counted, filtered and admitted the same way, at
    most `bucket`'s rate. A Ctrl-C ends it (`interrupted`); closing it closes the reader (and a
    --from-topic consumer)."""
    n = 0
    async with contextlib.aclosing(sources.__aiter__()) as items:
        async for item in items:
            if stop.is_set():
                summary.interrupted = True
                break
            n += 1
            if n % 256 == 0:
                feedback.update(sources.done(), sources.total)
                await asyncio.sleep(0)  # let a signal handler run
            event = _admit(item, opts, checkpoint, summary, validate)
            if event is None:
                continue
            if bucket is not None:
                wait = bucket.take()
                if wait > 0.002:
                    if idle is not None:
                        await idle()
                    await asyncio.sleep(wait)
            yield event


async def _run_plan(
    opts: ReplayOptions, sources: _Sources, checkpoint: Checkpoint, summary: Summary,
    stop: asyncio.Event, validate: Callable[[Event], BadLine | None] | None,
    targets: dict[str, str],
) -> None:  # fmt: skip
    """The dry run: the real run's admission, counted per stream, target and hour; no sleeping
    for --rate (the plan states the duration instead) and no producer."""
    plan = summary.plan
    assert plan is not None
    with Feedback(
        summary, sources.total, opts.log_every, tty=opts.tty, unit=sources.unit
    ) as feedback:
        admitted = _admitted(sources, opts, checkpoint, summary, validate, stop, feedback)
        async with contextlib.aclosing(admitted) as events:
            async for event in events:
                plan.add(event.stream, targets[event.stream], event.event_time_ms())
                checkpoint.passed(event.origin, event.position)
        feedback.update(sources.done(), sources.total)


async def _run_offline(
    settings: Settings, opts: ReplayOptions, sources: _Sources, checkpoint: Checkpoint,
    summary: Summary, stop: asyncio.Event, validate: Callable[[Event], BadLine | None] | None,
) -> None:  # fmt: skip
    """The same Core the worker runs, in process: same clean records, no broker."""
    from pipeline.core import CLEAN, DLQ, Core, Meta
    from pipeline.runtime import settle_heap

    out_dir = opts.offline
    assert out_dir is not None
    out_dir.mkdir(parents=True, exist_ok=True)
    names = TopicNames(settings.topic_prefix)
    raw_topic = {ARTICLES: names.raw_articles, COMMENTS: names.raw_comments}
    core = Core(settings)
    settle_heap()
    run_id = summary.run_id.encode()
    mode = "ab" if opts.resume else "wb"
    files = {
        ARTICLES: open(out_dir / "clean.articles.jsonl", mode),
        COMMENTS: open(out_dir / "clean.comments.jsonl", mode),
        DLQ: open(out_dir / "dlq.jsonl", mode),
    }
    bucket = TokenBucket(opts.rate) if opts.rate else None
    try:
        with Feedback(
            summary, sources.total, opts.log_every, tty=opts.tty, unit=sources.unit
        ) as feedback:
            admitted = _admitted(
                sources, opts, checkpoint, summary, validate, stop, feedback, bucket
            )
            # Consecutive events of one stream go through the core as one batch, as in the
            # worker (the language classifier and the toxicity model cost far less per record
            # over a batch); a batch ends where the stream changes, so an article is processed
            # (near-dup included) before the comments after it. A record is checkpointed only
            # once written: a stop mid-batch re-reads the rest on resume.
            pending: list[tuple[Event, Meta]] = []

            def flush() -> None:
                if not pending:
                    return
                stream = pending[0][0].stream
                results = core.process_whole_batch(
                    stream, [(e.value, m) for e, m in pending], core.states
                )
                for (event, _), result in zip(pending, results, strict=True):
                    summary.produced += 1
                    summary.outcomes[f"{result.stream} {result.status}"] += 1
                    if result.status == CLEAN:
                        files[result.stream].write(orjson.dumps(result.record) + b"\n")
                    elif result.status == DLQ:
                        files[DLQ].write(orjson.dumps(result.record) + b"\n")
                    checkpoint.passed(event.origin, event.position)
                pending.clear()

            async with contextlib.aclosing(admitted) as events:
                async for event in events:
                    # The worker sees the Kafka timestamp the replay would set (or the append time).
                    ts = event.timestamp_ms or event.event_time_ms() or int(time.time() * 1000)
                    meta = Meta(event.topic or raw_topic[event.stream], None, None, event.key,
                                _headers(event, run_id), ts)  # fmt: skip
                    if pending and (pending[0][0].stream != event.stream
                                    or len(pending) >= OFFLINE_BATCH):  # fmt: skip
                        flush()
                    pending.append((event, meta))
            flush()
            feedback.update(sources.done(), sources.total)
    finally:
        for fh in files.values():
            fh.flush()
            fh.close()
        checkpoint.save()
