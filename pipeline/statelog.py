"""Dedup state for the stream shell: one store per partition, logged to Kafka once per batch,
in the same Kafka transaction as the batch's output.

Why not Faust tables: every table write is its own changelog record (many Kafka records per
input event; docs/performance.md), and Faust's at-least-once commit cannot tie state, output
and input position together, so a crash repeated output. Here each stage (articles, comments,
near-dup) and input partition `p` has:

- a store (dict, or RocksDB via rocksdict) of committed state, and an overlay of the current
  batch's writes that reaches the store only after the batch's transaction committed;
- a changelog partition (`state.<stage>`, partition `p`) holding one record per batch: the
  overlay and the input offset the batch ends at (the *mark*);
- a transactional producer, id `<app_id>-<stage>-<p>`: the batch's clean records, dead letters,
  trend events and its changelog record commit together or not at all.

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
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from pipeline.dedup.state import RocksState
from pipeline.settings import Settings

log = logging.getLogger(__name__)

_MISSING = object()
# a changelog record stays under Kafka's default 1 MiB message limit
MAX_RECORD_BYTES = 900_000


class PartitionedMap(MutableMapping[str, Any]):
    """One of the core's state mappings, split by partition; the shell selects the partition.

    Reads see the current batch's overlay first, then the committed store. Keys are
    co-partitioned with the records (an article and its comments share a key), so a lookup on the
    record's own partition finds every entry that can matter.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.stores: dict[int, MutableMapping[str, Any]] = {}
        self.overlays: dict[int, dict[str, Any]] = {}
        self._store: MutableMapping[str, Any] = {}
        self._overlay: dict[str, Any] = {}

    def select(self, partition: int) -> None:
        """Make `partition` current; called before a run of records of that partition."""
        self._store = self.stores[partition]
        self._overlay = self.overlays[partition]

    def get(self, key: str, default: Any = None) -> Any:
        value = self._overlay.get(key, _MISSING)
        if value is _MISSING:
            value = self._store.get(key, _MISSING)
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

    def __setitem__(self, key: str, value: Any) -> None:
        self._overlay[key] = value

    def __delitem__(self, key: str) -> None:
        # expiry sweep: local, on whichever partition holds the key (see the module docstring)
        for store in self.stores.values():
            try:
                del store[key]
                return
            except KeyError:
                continue
        raise KeyError(key)

    def sweep(self, is_stale: Callable[[Any], bool]) -> list[str]:
        """Delete stale entries partition by partition (a key can live on several partitions,
        e.g. a spam text's counter); returns the deleted keys."""
        removed: list[str] = []
        for store in list(self.stores.values()):
            stale = [k for k, v in list(store.items()) if is_stale(v)]
            for key in stale:
                del store[key]
            removed.extend(stale)
        return removed

    def __contains__(self, key: object) -> bool:
        return self.get(key, _MISSING) is not _MISSING  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[str]:
        for store in list(self.stores.values()):
            yield from list(store)

    def items(self) -> Iterator[tuple[str, Any]]:  # type: ignore[override]
        for store in list(self.stores.values()):
            yield from list(store.items())

    def __len__(self) -> int:
        return sum(len(store) for store in self.stores.values())


@dataclass
class PartitionState:
    """What one stage knows about one partition: changelog position, mark and producer."""

    applied: int = -1  # offset of the last changelog record applied to the stores
    mark: int = -1  # last input offset whose batch committed
    producer: AIOKafkaProducer | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class StageState:
    """The state of one stage (its maps) over the partitions this worker owns."""

    def __init__(
        self,
        stage: str,
        maps: dict[str, PartitionedMap],
        changelog_topic: str,
        settings: Settings,
        producer_factory: Callable[..., AIOKafkaProducer],
    ) -> None:
        self.stage = stage
        self.maps = maps
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
        part = PartitionState()
        self.parts[partition] = part
        for name, m in self.maps.items():
            m.overlays.setdefault(partition, {})
            if partition not in m.stores:
                m.stores[partition] = self._store(name, partition, part)
        return part

    def _store(self, name: str, partition: int, part: PartitionState) -> MutableMapping[str, Any]:
        if not self.rocks:
            return {}
        path = self._dir(partition) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        saved = self._dir(partition) / "applied.json"
        if saved.exists():
            got = orjson.loads(saved.read_bytes())
            part.applied, part.mark = int(got["applied"]), int(got["mark"])
        return RocksState(path)

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
            for m in self.maps.values():
                store = m.stores.pop(partition, None)
                m.overlays.pop(partition, None)
                if isinstance(store, RocksState):
                    store.close()  # the files stay: a later owner here catches up from them

    async def close(self) -> None:
        await self.release(set())

    # -- recovery -------------------------------------------------------------------------
    async def _catch_up(self, partition: int, part: PartitionState) -> None:
        """Apply the changelog records after `part.applied` (committed ones only)."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap_servers,
            enable_auto_commit=False,
            isolation_level="read_committed",
            max_partition_fetch_bytes=4 * 1024 * 1024,
            **self.settings.aiokafka_security(),
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
                self._reset(partition, part)
            first = max(start, part.applied + 1)
            if first >= end:
                return
            consumer.seek(tp, first)
            while await consumer.position(tp) < end:
                batch = await consumer.getmany(tp, timeout_ms=1000, max_records=1000)
                for msg in batch.get(tp, ()):
                    if msg.offset >= end:
                        break
                    self._apply(partition, part, orjson.loads(msg.value), msg.offset)
                    records += 1
        finally:
            await consumer.stop()
            log.info(
                "state %s-%s recovered: %d changelog records, mark %d",
                self.stage, partition, records, part.mark,
            )  # fmt: skip

    def _reset(self, partition: int, part: PartitionState) -> None:
        for m in self.maps.values():
            store = m.stores[partition]
            for key in list(store):
                del store[key]
        part.applied = part.mark = -1

    def _apply(self, partition: int, part: PartitionState, body: dict, offset: int) -> None:
        for name, entries in body.get("maps", {}).items():
            m = self.maps.get(name)
            if m is None:
                continue
            store = m.stores[partition]
            for key, value in entries.items():
                store[key] = value
        part.mark = max(part.mark, int(body.get("mark", -1)))
        part.applied = offset
        if self.rocks:
            self._save_position(partition, part)

    def _save_position(self, partition: int, part: PartitionState) -> None:
        saved = self._dir(partition) / "applied.json"
        tmp = saved.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps({"applied": part.applied, "mark": part.mark}))
        os.replace(tmp, saved)  # never a half-written file after a crash

    # -- one batch ------------------------------------------------------------------------
    def select(self, partition: int) -> None:
        for m in self.maps.values():
            m.select(partition)

    def changelog_records(self, partition: int, mark: int) -> list[bytes]:
        """The batch's overlay as changelog values, split to stay under the size limit."""
        maps = {name: m.overlays[partition] for name, m in self.maps.items()}
        value = orjson.dumps({"mark": mark, "maps": {n: e for n, e in maps.items() if e}})
        if len(value) <= MAX_RECORD_BYTES:
            return [value]
        chunks = math.ceil(len(value) / (MAX_RECORD_BYTES * 0.8))
        out = []
        for name, entries in maps.items():
            items = list(entries.items())
            step = max(1, math.ceil(len(items) / chunks))
            for i in range(0, len(items), step):
                part = dict(items[i : i + step])
                out.append(orjson.dumps({"mark": mark, "maps": {name: part}}))
        return out

    async def commit(
        self,
        partition: int,
        part: PartitionState,
        sends: list[tuple[str, bytes | None, bytes, int | None, int | None]],
        mark: int,
    ) -> None:
        """Send the batch's output and changelog record in one transaction, then apply it."""
        producer = part.producer
        assert producer is not None
        try:
            await producer.begin_transaction()
            futures = []
            for topic, key, value, to_partition, ts_ms in sends:
                futures.append(
                    await producer.send(
                        topic, value, key=key, partition=to_partition, timestamp_ms=ts_ms
                    )
                )
            for value in self.changelog_records(partition, mark):
                futures.append(await producer.send(self.changelog, value, partition=partition))
            # aiokafka does not abort a transaction when one of its sends fails for good (too
            # large, invalid timestamp): it only fails that future. Check them all first.
            delivered = await asyncio.gather(*futures)
            await producer.commit_transaction()
            last = delivered[-1]
        except Exception:
            self.discard(partition)
            await self._abort(producer, partition)
            raise
        # committed: the overlay becomes state
        for m in self.maps.values():
            overlay = m.overlays[partition]
            if overlay:
                store = m.stores[partition]
                if isinstance(store, dict):
                    store.update(overlay)
                else:
                    for key, value in overlay.items():
                        store[key] = value
                overlay.clear()
        part.mark = max(part.mark, mark)
        part.applied = last.offset
        if self.rocks:
            self._save_position(partition, part)

    def discard(self, partition: int) -> None:
        """Forget the uncommitted writes of the current batch."""
        for m in self.maps.values():
            m.overlays.get(partition, {}).clear()

    async def _abort(self, producer: AIOKafkaProducer, partition: int) -> None:
        """Abort the open transaction; a producer that cannot (fenced, fatal) is dropped, so
        the next attempt starts a new one, which fences whoever holds the id and catches up."""
        part = self.parts.get(partition)
        try:
            await producer.abort_transaction()
            if not producer._txn_manager.is_fatal_error():
                return
        except Exception as exc:
            log.warning("abort %s-%s failed: %r", self.stage, partition, exc)
        if part is not None and part.producer is producer:
            part.producer = None
        with contextlib.suppress(Exception):
            await producer.stop()
