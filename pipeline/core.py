"""The pure core: one raw record in, exactly one decision out (clean, duplicate or dead letter).

No Kafka or Faust here. The stream stages (`pipeline.stream`) and the replay tool's offline mode
call the same `Core`, so what the tests and benchmarks measure is what runs in production. State
is passed in as plain mappings: the core's own dicts, or one partition's maps per batch
(`process_batch`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from pipeline.deadletter import dead_letter
from pipeline.dedup import Deduper, Outcome, StateCorrupted
from pipeline.dedup.state import expire_before
from pipeline.errors import Rejected
from pipeline.moderation.history import HistoryEvent
from pipeline.moderation.policy import ModerationContext, Moderator
from pipeline.normalize import normalize_article, normalize_comment
from pipeline.normalize.language import detect_languages
from pipeline.normalize.language import preload as preload_language_model
from pipeline.normalize.records import LANGUAGE_TEXT
from pipeline.normalize.times import iso_of_epoch, utc_now
from pipeline.settings import Settings
from pipeline.tagging import Tagger
from pipeline.topics import ARTICLES, COMMENTS
from pipeline.validate import DoorValidator

CLEAN = "clean"
DUPLICATE = "duplicate"
DLQ = "dlq"

# A Kafka record (clean output, near-dup forward) must stay under the producer's and the topics'
# 1 MiB default; the clean record can be larger than its raw event (a comment keeps both `text`
# and `own_text`), so a big event is measured before its dedup state is written.
MAX_OUTPUT_BYTES = 1_000_000
OUTPUT_HEADROOM_BYTES = 16 * 1024  # tags, near-dup links and the forward's envelope come later
# a clean record holds each text at most about twice: raw events under a sixth of the limit fit
OUTPUT_CHECK_BYTES = MAX_OUTPUT_BYTES // 2


INHERITED_CACHE = 4096  # articles whose inherited tags are kept between comments


def _check_output_size(record: dict[str, Any]) -> None:
    size = len(orjson.dumps({k: v for k, v in record.items() if k != LANGUAGE_TEXT}))
    if size > MAX_OUTPUT_BYTES - OUTPUT_HEADROOM_BYTES:
        raise Rejected(
            "too_large",
            f"the clean record would be {size} bytes, over the {MAX_OUTPUT_BYTES} bytes a Kafka "
            "record may hold here",
            stage="normalize",
        )


class Meta(NamedTuple):
    """Where a raw record came from; copied into a dead letter so it can be found and replayed.
    A named tuple: the shell makes one per record, and a frozen dataclass is slower to make."""

    topic: str
    partition: int | None = None
    offset: int | None = None
    key: bytes | None = None
    headers: Sequence[tuple[str, bytes]] = ()
    timestamp_ms: int | None = None


@dataclass(slots=True)
class Result:
    """Where a record ends: `status` is clean, duplicate or dlq; `reason` says which kind."""

    stream: str
    status: str
    reason: str
    source: str
    record: dict[str, Any]
    stage_seconds: dict[str, float] = field(default_factory=dict)
    # a clean comment moderation did not approve: the event for `moderation.history`
    history_event: HistoryEvent | None = None

    @property
    def key(self) -> str | None:
        """Keyed by article id, so an article and its comments share a partition."""
        if self.status == DLQ:
            return None
        return self.record.get("article_id")


@dataclass
class States:
    """The mutable state the core needs, each a mapping the shell provides."""

    articles: MutableMapping[str, Any] = field(default_factory=dict)
    comments: MutableMapping[str, Any] = field(default_factory=dict)
    index: MutableMapping[str, Any] = field(default_factory=dict)
    article_tags: MutableMapping[str, Any] = field(default_factory=dict)


def _fill_languages(results: Sequence[Result]) -> None:
    """Detect the language of every record that left it open, the whole batch at once (the
    classifier is cheaper over many texts than one by one); its time is shared out as the
    `language` stage of the records that needed it."""
    todo = [r for r in results if r.status != DLQ and LANGUAGE_TEXT in r.record]
    if not todo:
        return
    t0 = time.perf_counter()
    texts = [r.record.pop(LANGUAGE_TEXT) for r in todo]
    for result, language in zip(todo, detect_languages(texts), strict=True):
        result.record["language"] = language
    share = (time.perf_counter() - t0) / len(todo)
    for result in todo:
        result.stage_seconds["language"] = share


def _iso(ts_ms: int | None) -> str | None:
    if ts_ms is None or ts_ms <= 0:
        return None
    return iso_of_epoch(ts_ms // 1000)


class Core:
    """validate -> normalize -> dedup -> tag, for one record at a time."""

    def __init__(
        self,
        settings: Settings | None = None,
        states: States | None = None,
        tagger: Tagger | None = None,
        moderation: ModerationContext | None = None,
    ) -> None:
        self.settings = settings if settings is not None else Settings.from_env()
        self.states = states or States()
        self.validator = DoorValidator(self.settings)
        self.tagger = tagger or Tagger.load()
        preload_language_model()
        self.deduper = Deduper(
            self.settings, self.states.articles, self.states.comments, self.states.index
        )
        # article id -> (its tags in state, their inherited copies; None and None for an article
        # without tags): one batch's comments share them read-only; cleared every batch, so it
        # never outlives a state change
        self._inherited: dict[str, tuple[Any, list[Any] | None]] = {}
        self._tags_fixed = False  # inside a comments batch: article tags cannot change
        # the editors' lists and authors' history; the stream shell replaces it per batch
        self.moderation = moderation or ModerationContext.offline(self.settings)
        self.moderator = Moderator(self.settings)

    @contextlib.contextmanager
    def using(self, states: States) -> Iterator[None]:
        """Run the core over `states` (one partition's maps) for the duration of a synchronous
        call; the stream shell passes each partition's state explicitly this way."""
        saved = self.states
        dd = self.deduper
        self.states = states
        dd.articles, dd.comments, dd.index = states.articles, states.comments, states.index
        try:
            yield
        finally:
            self.states = saved
            dd.articles, dd.comments, dd.index = saved.articles, saved.comments, saved.index

    def process_batch(
        self, stream: str, items: Sequence[tuple[bytes | None, Meta]], states: States
    ) -> list[Result]:
        """`process_local` over one partition's records, in order, against that partition's
        state. Work that does not depend on the record (the processing time) is done once."""
        now = utc_now()
        self._inherited.clear()
        with self.using(states):
            # only the articles stage writes article tags: a comments batch can read an
            # article's once (from RocksDB, each read is a new object, which no identity
            # check can recognise)
            self._tags_fixed = stream == COMMENTS
            try:
                results = [self._chain(stream, payload, meta, now) for payload, meta in items]
            finally:
                self._tags_fixed = False
            if stream == COMMENTS:
                self._moderate(results, items)
        _fill_languages(results)
        return results

    def process_whole_batch(
        self, stream: str, items: Sequence[tuple[bytes | None, Meta]], states: States
    ) -> list[Result]:
        """`process_batch` and, for articles, the near-dup stage right after, in order: the
        whole chain over a batch where one process holds all the state (offline replay,
        benchmarks). A final result's `stage_seconds` hold every stage it went through."""
        results = self.process_batch(stream, items, states)
        if stream != ARTICLES:
            return results
        finished = iter(self.finish_batch([r for r in results if r.status == CLEAN], states))
        out = []
        for result in results:
            if result.status == CLEAN:
                final = next(finished)
                final.stage_seconds = {**result.stage_seconds, **final.stage_seconds}
                result = final
            out.append(result)
        return out

    def finish_batch(self, staged: Sequence[Result], states: States) -> list[Result]:
        """`finish_article` over the articles forwarded to the near-dup stage, in order."""
        with self.using(states):
            return [self.finish_article(result) for result in staged]

    def process(self, stream: str, payload: bytes | None, meta: Meta) -> Result:
        """The whole chain for one record (offline replay, tests, benchmarks).

        Never raises for bad input: every failure becomes a dead letter with a code.
        """
        result = self.process_local(stream, payload, meta)
        if stream == COMMENTS:
            self._moderate([result], [(payload, meta)])
        if stream == ARTICLES and result.status == CLEAN:
            final = self.finish_article(result)
            final.stage_seconds = {**result.stage_seconds, **final.stage_seconds}
            return final
        return result

    def finish_article(self, result: Result) -> Result:
        """The near-duplicate stage for an article that passed `process_local`.

        It needs the index of every article, whichever partition it came from, so the stream
        shell runs it on a single-partition internal topic; offline it simply follows.
        """
        t0 = time.perf_counter()
        outcome = self.deduper.check_near_duplicate(
            result.record, Outcome(result.reason, True, result.record)
        )
        timings = {"neardup": time.perf_counter() - t0}
        status = CLEAN if outcome.emit else DUPLICATE
        return Result(ARTICLES, status, outcome.kind, result.source, outcome.record, timings)

    def process_local(
        self, stream: str, payload: bytes | None, meta: Meta, now: str | None = None
    ) -> Result:
        """Everything that state on the record's own partition can decide.

        For articles a clean result still has to pass `finish_article` before it is emitted;
        a clean comment is not moderated yet (`process_batch` and `process` do that).
        """
        result = self._chain(stream, payload, meta, now)
        _fill_languages([result])
        return result

    def _chain(self, stream: str, payload: bytes | None, meta: Meta, now: str | None) -> Result:
        """validate -> normalize -> dedup -> tag; the language is left to `_fill_languages`."""
        timings: dict[str, float] = {}
        source = "unknown"
        clock = time.perf_counter
        try:
            t0 = clock()
            self.validator.check_key(meta.key)
            raw = (
                self.validator.raw_article(payload)
                if stream == ARTICLES
                else self.validator.raw_comment(payload)
            )
            source = str(raw.get("source") or "unknown")
            t1 = clock()
            timings["validate"] = t1 - t0
            event_time = _iso(meta.timestamp_ms)
            if stream == ARTICLES:
                if raw.get("html") and not raw.get("body"):
                    from pipeline.extract.html import fill_from_html  # lazy: trafilatura

                    raw = fill_from_html(raw)
                record = normalize_article(raw, event_time=event_time, now=now, detect=False)
            else:
                record = normalize_comment(raw, event_time=event_time, now=now, detect=False)
            if payload is not None and len(payload) * 3 > OUTPUT_CHECK_BYTES:
                _check_output_size(record)
            t2 = clock()
            timings["normalize"] = t2 - t1
            if stream == ARTICLES:
                outcome = self.deduper.check_article_exact(record)
            else:
                outcome = self.deduper.check_comment(record)
            t3 = clock()
            timings["dedup"] = t3 - t2
            if not outcome.emit:
                return Result(stream, DUPLICATE, outcome.kind, source, outcome.record, timings)
            record = outcome.record
            self._tag(stream, record)
            timings["tag"] = clock() - t3
            return Result(stream, CLEAN, outcome.kind, source, record, timings)
        except Rejected as exc:
            return Result(stream, DLQ, exc.code, source, self._letter(payload, meta, exc), timings)
        except StateCorrupted:
            raise  # not this record's fault: the shell rebuilds the state and tries again
        except Exception as exc:  # a bug must not stop the worker: keep the record for replay
            error = Rejected("internal", f"{type(exc).__name__}: {exc}"[:500], stage="core")
            letter = self._letter(payload, meta, error)
            return Result(stream, DLQ, "internal", source, letter, timings)

    def _moderate(self, results: list[Result], items: Sequence[tuple[bytes | None, Meta]]) -> None:
        """Moderate the clean comments of `results` together (one model call), in order; the
        time is shared out as each one's `moderate` stage. A comment moderation fails on
        becomes a dead letter (`internal`), as a failure in any other stage does."""
        clean = [i for i, r in enumerate(results) if r.status == CLEAN]
        if not clean:
            return
        t0 = time.perf_counter()
        records = [results[i].record for i in clean]
        try:
            events = self.moderator.moderate(records, self.moderation, self.deduper.repeat_of)
        except Exception:  # find the one that fails; the others are moderated alone
            # (what the failed call added to the history counts once: it is keyed by comment id)
            events = []
            for i in clean:
                try:
                    events += self.moderator.moderate(
                        [results[i].record], self.moderation, self.deduper.repeat_of
                    )
                except Exception as exc:
                    payload, meta = items[i]
                    error = Rejected("internal", f"{type(exc).__name__}: {exc}"[:500],
                                     stage="core")  # fmt: skip
                    r = results[i]
                    letter = self._letter(payload, meta, error)
                    results[i] = Result(
                        r.stream, DLQ, "internal", r.source, letter, r.stage_seconds
                    )
                    events.append(None)
        share = (time.perf_counter() - t0) / len(clean)
        for i, event in zip(clean, events, strict=True):
            results[i].stage_seconds["moderate"] = share
            results[i].history_event = event

    def dead_letter(
        self, stream: str, payload: bytes | None, meta: Meta, code: str, message: str, stage: str
    ) -> Result:
        """A dead letter the shell decides on (a record its batch could not commit)."""
        letter = self._letter(payload, meta, Rejected(code, message[:500], stage=stage))
        return Result(stream, DLQ, code, "unknown", letter)

    def _letter(self, payload: bytes | None, meta: Meta, error: Rejected) -> dict[str, Any]:
        return dead_letter(
            payload,
            error=error,
            topic=meta.topic,
            partition=meta.partition,
            offset=meta.offset,
            key=meta.key,
            headers=meta.headers,
            max_payload_bytes=self.settings.max_event_bytes,
        )

    def _tag(self, stream: str, record: dict[str, Any]) -> None:
        if stream == ARTICLES:
            tags = self.tagger.tag_article(
                record["title"], record.get("standfirst"), record["body"]
            )
            record["tags"] = tags
            self.states.article_tags[record["article_id"]] = {
                "t": self.deduper.watermark,
                "tags": [t for t in tags if not t.get("inherited")],
            }
        else:
            aid = record["article_id"]
            # an article's tags are read and copied for its comments once a batch, not once a
            # comment; one record a call (`process`), they are read each time and the copy is
            # kept while they are the same object
            cached = self._inherited.get(aid)
            if cached is None or not self._tags_fixed:
                entry = self.states.article_tags.get(aid)
                tags = entry["tags"] if entry else None
                if cached is None or cached[0] is not tags:
                    if len(self._inherited) >= INHERITED_CACHE:  # Core.process, one a call
                        self._inherited.clear()
                    copies = self.tagger.inherit(tags) if tags is not None else None
                    cached = self._inherited[aid] = (tags, copies)
            record["tags"] = self.tagger.tag_comment(record["text"], inherited_ready=cached[1])

    def expire(self) -> int:
        """Forget the core's own state older than the horizons (event time), and the authors'
        history it holds; returns how many entries went."""
        return self.expire_partition(self.states) + self.moderation.history.expire()

    def expire_partition(self, states: States) -> int:
        """Forget the entries of one partition's maps older than the horizons (event time);
        returns how many went. A full scan: the stream shell calls it every minute or so for
        each partition it owns (and sweeps its shared authors' history itself)."""
        with self.using(states):
            removed = len(self.deduper.expire())
        cutoff = self.deduper.watermark - self.settings.article_horizon_s
        return removed + len(expire_before(states.article_tags, cutoff))
