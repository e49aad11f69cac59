"""Each stage's state per partition, logged to Kafka once per batch in the batch's transaction.

Why not Faust tables: every table write is its own changelog record (many Kafka records per
input event; docs/performance.md), and Faust's at-least-once commit cannot tie state, output
and input position together, so a crash repeated output. Here each stage and input partition
`p` has a `PartitionState`:

- one `OverlayMap` per state map it owns: the committed store (a dict, or RocksDB via
  rocksdict) under an overlay of the current batch's writes, which reaches the store only after
  the batch's transaction committed;
- a changelog partition (`state.<stage>`, partition `p`) holding one record per batch: the
  overlay and the input offset the batch ends at (the *mark*);
- a transactional producer, id `<app_id>-<stage>-<p>`: the batch's output and its changelog
  record commit together or not at all.

A new owner of `p` (a restarted worker, or another worker after a rebalance) first starts the
producer, which fences the previous owner and aborts its open transaction, then reads the
changelog (read_committed) to rebuild the store and the mark, and skips input at or below the
mark: that input was emitted by a committed batch. Everything else is processed again, and its
earlier attempts were never committed. So readers with `isolation.level=read_committed` see each
clean record exactly once.

Deletes from the expiry sweep stay local: the changelog forgets old batches by retention (twice
the horizon), and an entry restored from it that is older than the horizon is ignored by the
core and swept again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import time
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import orjson
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner
from newspipe_native import murmur2, untrack_data

from pipeline import kafka_io
from pipeline.dedup.state import RocksState, StateCorrupted, expire_before, open_rocks
from pipeline.logs import log_event
from pipeline.settings import Settings

log = logging.getLogger(__name__)

_MISSING = object()
# a changelog record stays under Kafka's default 1 MiB message limit
MAX_RECORD_BYTES = 900_000


class OutRecord(NamedTuple):
    """One record a batch sends in its transaction."""

    topic: str
    key: bytes | None
    value: bytes
    partition: int | None = None  # None: the producer's partitioner decides by key
    timestamp_ms: int | None = None  # None: now


class OverlayMap(MutableMapping[str, Any]):
    """One state map of one partition: the committed store under the current batch's writes.

    Reads see the overlay first, then the store. Keys are co-partitioned with the records (an
    article and its comments share a key), so the record's own partition holds every entry that
    can matter for it.
    """

    __slots__ = ("overlay", "store")

    def __init__(self, store: MutableMapping[str, Any] | None = None) -> None:
        self.store: MutableMapping[str, Any] = {} if store is None else store
        self.overlay: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        value = self.overlay.get(key, _MISSING)
        if value is _MISSING:
            value = self.store.get(key, _MISSING)
            if value is _MISSING:
                return default
            # a copy: the core may change what it read before writing it back, and the
            # committed store must not see that before the batch commits (RocksDB decodes a
            # fresh object anyway)
            if type(value) is list or type(value) is dict:
                return value.copy()
        return value

    def __getitem__(self, key: str) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def dict_layers(self) -> tuple[dict[str, Any], ...] | None:
        """(overlay, store) when the store is a dict: the compiled band lookups
        (native/src/dedup.rs `Access`) then read the two dicts as `get` does, and write the
        overlay as `__setitem__` does, without a Python call per band. None for a subclass
        (it may see every read or write) or any other store."""
        if type(self) is OverlayMap and type(self.store) is dict:
            return self.overlay, self.store
        return None

    def __setitem__(self, key: str, value: Any) -> None:
        self.overlay[key] = value

    def __delitem__(self, key: str) -> None:
        # only the expiry sweep deletes: locally, from the committed store (module docstring)
        self.overlay.pop(key, None)
        del self.store[key]

    def expire_before(self, cutoff: float) -> list[str]:
        """The expiry sweep (`pipeline.dedup.state.expire_before`) of the committed store; as
        with `del`, a key it drops leaves the overlay too."""
        stale = expire_before(self.store, cutoff)
        if self.overlay:
            for key in stale:
                self.overlay.pop(key, None)
        return stale

    def __contains__(self, key: object) -> bool:
        return self.get(key, _MISSING) is not _MISSING  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.store))

    def items(self) -> Iterator[tuple[str, Any]]:  # type: ignore[override]
        return iter(list(self.store.items()))

    def __len__(self) -> int:
        return len(self.store)

    def apply(self) -> None:
        """The batch committed: its writes become state."""
        if not self.overlay:
            return
        store_many(self.store, self.overlay)
        self.overlay.clear()


def _as_tuple(value: Any) -> Any:
    """A state entry read back from JSON as the core writes it: its lists (nested ones too) as
    tuples, which the garbage collector stops tracking (pipeline/dedup/deduper.py says why);
    anything else as it is. The core reads entries by index, so either shape works for it."""
    if type(value) is list:
        return tuple([_as_tuple(v) for v in value])
    return value


def store_many(store: MutableMapping[str, Any], entries: dict[str, Any]) -> None:
    """Write `entries` to a committed store at once: a dict update, or one RocksDB write batch.

    Into a dict (`memory://`), the entries' plain-data containers are first taken out of the
    garbage collector's sight (native/src/heap.rs): an article's tags are dicts holding lists,
    which it would otherwise walk in every collection for as long as the horizon keeps them."""
    if isinstance(store, dict):
        untrack_data(entries.values())
        store.update(entries)
    elif isinstance(store, RocksState):
        store.write_many(entries.items())
    else:
        for key, value in entries.items():
            store[key] = value


class ReadOnly(MutableMapping[str, Any]):
    """Another stage's map as a stage that only reads it sees it (comments read article tags)."""

    def __init__(self, owner: str, name: str, inner: MutableMapping[str, Any]) -> None:
        self.owner, self.name, self.inner = owner, name, inner

    def get(self, key: str, default: Any = None) -> Any:
        return self.inner.get(key, default)

    def __getitem__(self, key: str) -> Any:
        return self.inner[key]

    def __setitem__(self, key: str, value: Any) -> None:
        raise RuntimeError(f"{self.name} belongs to the {self.owner} stage: read it, never write")

    def __delitem__(self, key: str) -> None:
        raise RuntimeError(f"{self.name} belongs to the {self.owner} stage: read it, never write")

    def __iter__(self) -> Iterator[str]:
        return iter(self.inner)

    def __len__(self) -> int:
        return len(self.inner)


class NotOwned(MutableMapping[str, Any]):
    """The maps a stage neither owns nor reads: empty, and a write is a topology bug."""

    def __init__(self, stage: str, name: str) -> None:
        self.stage, self.name = stage, name

    def __getitem__(self, key: str) -> Any:
        raise KeyError(key)

    def __setitem__(self, key: str, value: Any) -> None:
        raise RuntimeError(f"stage {self.stage} wrote to {self.name}, which it does not own")

    def __delitem__(self, key: str) -> None:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


@dataclass
class PartitionState:
    """What one stage holds of one partition: its maps, changelog position, mark and producer."""

    maps: dict[str, OverlayMap]
    applied: int = -1  # offset of the last changelog record applied to the stores
    mark: int = -1  # last input offset whose batch committed
    producer: AIOKafkaProducer | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def changelog_records(self, mark: int) -> list[bytes]:
        """The batch's writes as changelog values, split to stay under the size limit."""
        writes = {name: m.overlay for name, m in self.maps.items()}
        value = orjson.dumps({"mark": mark, "maps": {n: e for n, e in writes.items() if e}})
        if len(value) <= MAX_RECORD_BYTES:
            return [value]
        chunks = math.ceil(len(value) / (MAX_RECORD_BYTES * 0.8))
        out = []
        for name, entries in writes.items():
            items = list(entries.items())
            step = max(1, math.ceil(len(items) / chunks))
            for i in range(0, len(items), step):
                out.append(orjson.dumps({"mark": mark, "maps": {name: dict(items[i : i + step])}}))
        return out

    def apply_changelog(self, body: dict[str, Any], offset: int) -> None:
        """Replay one changelog record (recovery): its entries and mark become state."""
        for name, entries in body.get("maps", {}).items():
            m = self.maps.get(name)
            if m is None:
                continue
            if type(m.store) is dict:  # held as Python objects: as the core wrote them
                entries = {key: _as_tuple(value) for key, value in entries.items()}
            store_many(m.store, entries)
        self.mark = max(self.mark, int(body.get("mark", -1)))
        self.applied = offset

    def committed(self, mark: int, changelog_offset: int) -> None:
        """The batch's transaction committed: apply its writes and move the mark."""
        for m in self.maps.values():
            m.apply()
        self.mark = max(self.mark, mark)
        self.applied = changelog_offset

    def discard(self) -> None:
        """Forget the writes of a batch that did not commit."""
        for m in self.maps.values():
            m.overlay.clear()

    def reset(self) -> None:
        """Forget everything (the changelog was recreated: local state is from another life)."""
        for m in self.maps.values():
            for key in list(m.store):
                del m.store[key]
            m.overlay.clear()
        self.applied = self.mark = -1


_partitioner = DefaultPartitioner()
Rounds = list[list[tuple[str, int, Any]]]  # (topic, partition, batch) by round


async def send_in_transaction(producer: AIOKafkaProducer, records: Sequence[OutRecord]) -> Any:
    """Send `records` in one transaction and commit it; returns the last record's metadata.

    Records are grouped by partition and each group goes as whole record batches
    (`send_batch`): one future per batch instead of one per record, which was most of what the
    producer cost a worker. A record without a partition goes where the producer's own
    partitioner would send it (murmur2 of the key, as Kafka's Java client does; computed in
    native/, since aiokafka's pure-Python murmur2 cost microseconds a keyed record).

    Every batch is built and closed before the first is handed over, and every partition's
    first batch goes before any second one: a closed batch is sent at once instead of waiting
    out the producer's linger, and aiokafka makes a second batch of a partition wait until the
    first has left, which would otherwise hold back the partitions after it (and add them to
    the transaction in a round trip of their own).
    aiokafka does not abort a transaction when one of its sends fails for good (too large, bad
    timestamp): it only fails that future. So every batch is checked before the commit."""
    await producer.begin_transaction()
    groups: dict[tuple[str, int], list[OutRecord]] = {}
    partitions: dict[str, list[int]] = {}
    for r in records:
        p = r.partition
        if p is None:
            every = partitions.get(r.topic)
            if every is None:
                every = partitions[r.topic] = sorted(await producer.partitions_for(r.topic))
            p = (
                every[(murmur2(r.key) & 0x7FFFFFFF) % len(every)]
                if r.key is not None
                else _partitioner(None, every, every)
            )
        groups.setdefault((r.topic, p), []).append(r)
    last = records[-1]
    rounds: Rounds = []  # the sending order: rounds of at most one batch per partition
    where: tuple[int, int, int] = (0, 0, 0)  # the last record's round, place in it, offset
    for (topic, p), group in groups.items():
        batch = producer.create_batch()
        n = 0  # this partition's batches so far
        for r in group:
            meta = batch.append(key=r.key, value=r.value, timestamp=r.timestamp_ms, headers=[])
            if meta is None:  # full: close it, start the next (a first record always fits)
                _queue(rounds, n, topic, p, batch)
                n += 1
                batch = producer.create_batch()
                meta = batch.append(key=r.key, value=r.value, timestamp=r.timestamp_ms,
                                    headers=[])  # fmt: skip
            if r is last:
                where = (n, len(rounds[n]) if n < len(rounds) else 0, meta.offset)
        _queue(rounds, n, topic, p, batch)
    sent: list[list[Any]] = [
        [await producer.send_batch(batch, topic, partition=p) for topic, p, batch in batches]
        for batches in rounds
    ]  # batch futures, by round
    await asyncio.gather(*(f for futures in sent for f in futures))
    await producer.commit_transaction()
    base = sent[where[0]][where[1]].result()
    return base._replace(offset=base.offset + where[2])


def _queue(rounds: Rounds, n: int, topic: str, p: int, batch: Any) -> None:
    """A partition's `n`-th batch, closed (sent without lingering), into the `n`-th round."""
    batch.close()
    if n == len(rounds):
        rounds.append([])
    rounds[n].append((topic, p, batch))


class StageState:
    """One stage's partitions on this worker: owning them (fence, catch up), committing a batch."""

    def __init__(
        self,
        stage: str,
        maps: Sequence[str],
        changelog_topic: str,
        settings: Settings,
        producer_factory: Callable[..., AIOKafkaProducer],
        on_rebuilt: Callable[[str], None] = lambda stage: None,
    ) -> None:
        self.stage = stage
        self.on_rebuilt = on_rebuilt
        self.map_names = tuple(maps)
        self.changelog = changelog_topic
        self.settings = settings
        self.producer_factory = producer_factory
        self.parts: dict[int, PartitionState] = {}
        self.rocks = settings.store.startswith("rocksdb")
        self.loading = 0

    # -- ownership ------------------------------------------------------------------------
    async def open(self, partition: int) -> PartitionState:
        """Own `partition`: fence the previous owner, then catch up from the changelog."""
        part = self.parts.get(partition)
        if part is not None and part.producer is not None:
            return part
        async with (part or self._new_part(partition)).lock:
            part = self.parts[partition]
            if part.producer is not None:
                return part
            self.loading += 1
            try:
                producer = self.producer_factory(
                    transactional_id=f"{self.settings.app_id}-{self.stage}-{partition}"
                )
                try:
                    await producer.start()  # init_transactions: fences and aborts the old owner
                    await self._catch_up(partition, part)
                except BaseException:
                    with contextlib.suppress(Exception):
                        await producer.stop()
                    raise
                part.producer = producer
            finally:
                self.loading -= 1
        return part

    def is_open(self, partition: int) -> bool:
        """Owned here: producer started and state caught up."""
        part = self.parts.get(partition)
        return part is not None and part.producer is not None

    def _new_part(self, partition: int) -> PartitionState:
        """The partition's state as this worker last left it; local state that cannot be
        opened is set aside and the partition starts empty (the changelog refills it)."""
        try:
            part = self._load_local(partition)
        except (StateCorrupted, ValueError, KeyError, TypeError) as exc:
            self._set_aside(partition, exc)
            part = self._load_local(partition)
        self.parts[partition] = part
        return part

    def _load_local(self, partition: int) -> PartitionState:
        part = PartitionState({})
        stores: list[MutableMapping[str, Any]] = []
        try:
            if self.rocks:
                saved = self._dir(partition) / "applied.json"
                if saved.exists():
                    got = orjson.loads(saved.read_bytes())
                    part.applied, part.mark = int(got["applied"]), int(got["mark"])
            for name in self.map_names:
                stores.append(self._store(name, partition))
                part.maps[name] = OverlayMap(stores[-1])
        except BaseException:
            for store in stores:
                if isinstance(store, RocksState):
                    store.close()
            raise
        return part

    def _set_aside(self, partition: int, cause: BaseException) -> None:
        """Move unreadable local state out of the way (kept for forensics), in one log line."""
        path = self._dir(partition)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        aside = path.with_name(f"{path.name}.corrupt-{stamp}")
        if path.exists():
            os.replace(path, aside)
        self.on_rebuilt(self.stage)
        log_event(log, logging.WARNING, "state_set_aside", stage=self.stage,
                  partition=partition, moved_to=str(aside), reason=str(cause)[:300],
                  action="rebuilding from the changelog")  # fmt: skip

    async def heal(self, partition: int, cause: BaseException) -> None:
        """State that failed while in use: give the partition up, set its files aside; the next
        `open` rebuilds it from the changelog (the producer fences and catches up as usual)."""
        part = self.parts.pop(partition, None)
        if part is not None:
            if part.producer is not None:
                with contextlib.suppress(Exception):
                    await part.producer.stop()
            for m in part.maps.values():
                if isinstance(m.store, RocksState):
                    with contextlib.suppress(Exception):
                        m.store.close()
        if self.rocks:
            self._set_aside(partition, cause)

    def _store(self, name: str, partition: int) -> MutableMapping[str, Any]:
        if not self.rocks:
            return {}
        path = self._dir(partition) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return open_rocks(name, path)

    def _dir(self, partition: int) -> Path:
        return Path(self.settings.state_dir) / self.settings.app_id / f"{self.stage}-{partition}"

    async def release(self, keep: set[int]) -> None:
        """Give up every partition not in `keep` (after a rebalance moved it away)."""
        for partition in [p for p in self.parts if p not in keep]:
            part = self.parts.pop(partition)
            if part.producer is not None:
                try:
                    await part.producer.stop()
                except Exception as exc:  # a fenced producer may fail to stop cleanly
                    log.warning("stopping producer of %s-%s: %r", self.stage, partition, exc)
            for m in part.maps.values():
                if isinstance(m.store, RocksState):
                    m.store.close()  # the files stay: a later owner here catches up from them

    async def close(self) -> None:
        await self.release(set())

    # -- recovery -------------------------------------------------------------------------
    async def _catch_up(self, partition: int, part: PartitionState) -> None:
        """Apply the changelog records after `part.applied` (committed ones only)."""
        consumer = kafka_io.consumer(
            self.settings,
            enable_auto_commit=False,
            isolation_level="read_committed",
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        await consumer.start()
        records = 0
        try:
            tp = TopicPartition(self.changelog, partition)
            consumer.assign([tp])
            start = (await consumer.beginning_offsets([tp]))[tp]
            end = (await consumer.end_offsets([tp]))[tp]  # the last stable offset
            if part.applied >= end:
                # the changelog is shorter than what was applied here: it was recreated, so the
                # local store and mark belong to another life of the topic
                log.warning("state %s-%s: changelog restarted, local state dropped",
                            self.stage, partition)  # fmt: skip
                part.reset()
            first = max(start, part.applied + 1)
            if first >= end:
                return
            consumer.seek(tp, first)
            while await consumer.position(tp) < end:
                batch = await consumer.getmany(tp, timeout_ms=1000, max_records=1000)
                for msg in batch.get(tp, ()):
                    if msg.offset >= end:
                        break
                    part.apply_changelog(orjson.loads(msg.value), msg.offset)
                    records += 1
            if self.rocks:
                self._save_position(partition, part)
        finally:
            await consumer.stop()
            log.info(
                "state %s-%s recovered: %d changelog records, mark %d",
                self.stage, partition, records, part.mark,
            )  # fmt: skip

    def _save_position(self, partition: int, part: PartitionState) -> None:
        saved = self._dir(partition) / "applied.json"
        tmp = saved.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps({"applied": part.applied, "mark": part.mark}))
        os.replace(tmp, saved)  # never a half-written file after a crash

    # -- one batch ------------------------------------------------------------------------
    async def commit(
        self, partition: int, part: PartitionState, output: Sequence[OutRecord], mark: int
    ) -> None:
        """The batch's output and its changelog record in one transaction; then its writes
        become state. On failure nothing of the batch stays (overlay dropped, aborted)."""
        producer = part.producer
        assert producer is not None
        changelog = [
            OutRecord(self.changelog, None, value, partition)
            for value in part.changelog_records(mark)
        ]
        try:
            last = await send_in_transaction(producer, [*output, *changelog])
        except Exception:
            part.discard()
            await self._abort(producer, partition)
            raise
        part.committed(mark, last.offset)
        if self.rocks:
            self._save_position(partition, part)

    async def _abort(self, producer: AIOKafkaProducer, partition: int) -> None:
        """Abort the open transaction and drop the producer: after a failed send its sequence
        numbers may be out of step with the broker's (a refused record used some), so the next
        attempt starts a new one, which fences the old epoch and catches up from the changelog
        (only what was committed since, usually nothing)."""
        part = self.parts.get(partition)
        try:
            await producer.abort_transaction()
        except Exception as exc:
            log.warning("abort %s-%s failed: %r", self.stage, partition, exc)
        if part is not None and part.producer is producer:
            part.producer = None
        with contextlib.suppress(Exception):
            await producer.stop()
