"""State backends for the deduper: any `MutableMapping[str, value]` fits.

The deduper only needs `get`, `__setitem__`, `__delitem__` and item iteration (for the expiry
sweep, `expire_before`), so a dict, a rocksdict `Rdict` or the stream shell's per-partition stores
(`pipeline.stream.state`) all work. Values are small JSON-able lists/dicts of str/int (never bytes),
because the state changelog serializes them as JSON; `RocksState` stores them as orjson bytes.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator, MutableMapping
from pathlib import Path
from typing import Any, Protocol

import orjson
from newspipe_native import stale_entries, stale_in_dict

_MISSING = object()


class StateMap(Protocol):
    """The tiny interface the deduper uses; `MutableMapping[str, Any]` satisfies it."""

    def get(self, key: str, default: Any = None) -> Any: ...
    def __setitem__(self, key: str, value: Any) -> None: ...
    def __delitem__(self, key: str) -> None: ...
    def __iter__(self) -> Iterator[str]: ...
    def __len__(self) -> int: ...


class DictState(MutableMapping[str, Any]):
    """In-memory state: a dict. For tests, the offline replay and the benchmark baseline."""

    __slots__ = ("data", "get")

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self.data: dict[str, Any] = {} if data is None else data
        self.get = self.data.get  # type: ignore[method-assign]  # bound: saves a call per lookup

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def dict_layers(self) -> tuple[dict[str, Any], ...] | None:
        """The dict itself, for the compiled band lookups (native/src/dedup.rs `Access`); None
        for a subclass, which may see every read or write (a test's logging state does)."""
        return (self.data,) if type(self) is DictState else None

    def __setitem__(self, key: str, value: Any) -> None:
        self.data[key] = value

    def __delitem__(self, key: str) -> None:
        del self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


def entry_time(value: Any) -> float:
    """When a state entry was last seen (epoch seconds of event time): an object's `t`, an
    array's first element (every entry the core writes has one or the other)."""
    if isinstance(value, dict):
        return float(value.get("t", 0))
    if isinstance(value, list | tuple):
        return float(value[0])
    return float(value or 0)


# the number a stored entry starts with, as orjson writes it: `[t,...]` or `{"t":t,...}`
_LEADING_TIME = re.compile(rb'(?:\[|\{"t":)([-+.eE0-9]+)[,\]}]')


def raw_entry_time(raw: bytes) -> float:
    """`entry_time` of a stored value, read from the number it starts with where it starts with
    one (native/src/entries.rs `stale_entries` reads it the same way); decoded otherwise."""
    m = _LEADING_TIME.match(raw)
    if m is not None:
        try:
            return float(m[1])
        except ValueError:  # not a number after all ("1e", "."): the decoded value says
            pass
    return entry_time(orjson.loads(raw))


def expire_before(state: Any, cutoff: float) -> list[str]:
    """Delete the entries of `state` last seen before `cutoff` (`entry_time`); returns their
    keys. A full scan, so the expiry sweep runs every minute or so, not per event; a store that
    can scan cheaper (`RocksState`, the stream shell's overlays) does it itself."""
    own = getattr(state, "expire_before", None)
    if own is not None:
        return own(cutoff)  # type: ignore[no-any-return]
    data = state.data if type(state) is DictState else state if type(state) is dict else None
    if data is not None:  # read in compiled code, but what it cannot read
        stale, unread = stale_in_dict(data, cutoff)
        stale += [key for key in unread if entry_time(data[key]) < cutoff]
    else:  # any other mapping: listed first, as deleting would disturb the walk
        stale = [key for key, value in list(state.items()) if entry_time(value) < cutoff]
    for key in stale:
        del state[key]
    return stale


WRITE_BUFFER_BYTES = 4 * 1024 * 1024
# bits per key of each table file's Bloom filter: most dedup lookups are for keys never seen
# (a new comment's id, a new article's band keys), and without a filter every miss reads index
# and data blocks of the files whose key range covers it (~10 us; with it ~1 us)
BLOOM_BITS_PER_KEY = 10
# the memtable filter's size as a share of the write buffer (82 KB of 4 MiB: about 8 bits a key
# for the smallest values the deduper writes)
MEMTABLE_BLOOM_RATIO = 0.02


class StateCorrupted(RuntimeError):
    """Local state that cannot be opened or read: retrying cannot fix it, rebuilding can (the
    stream shell sets it aside and restores the partition from its changelog)."""

    def __init__(self, path: Path, cause: BaseException) -> None:
        super().__init__(f"local state {path} is unreadable: {' '.join(str(cause).split())}")
        self.path = path


class RocksState(MutableMapping[str, Any]):
    """rocksdict-backed state at `path`, values as orjson bytes (what a JSON Faust table pays).

    `len()` counts keys by iterating (RocksDB keeps only an estimate): fine for `size()` reports,
    not for the hot path.
    """

    def __init__(self, path: str | Path) -> None:
        from rocksdict import BlockBasedOptions, Options, Rdict

        opts = Options(raw_mode=True)
        table = BlockBasedOptions()
        table.set_bloom_filter(BLOOM_BITS_PER_KEY, False)  # a full filter per table file
        opts.set_block_based_table_factory(table)
        # Bounded memtables: rocksdict's defaults (64 MiB write buffers) let each database's
        # memory grow by tens of MiB before the first flush, and the worker opens one per
        # state and partition.
        opts.set_write_buffer_size(WRITE_BUFFER_BYTES)
        opts.set_max_write_buffer_number(2)
        # A Bloom filter over the memtable's whole keys too: the table files' filters do not
        # cover the keys still in memory, where a miss otherwise walks the skip list.
        opts.set_memtable_whole_key_filtering(True)
        opts.set_memtable_prefix_bloom_ratio(MEMTABLE_BLOOM_RATIO)
        self.path = Path(path)
        try:
            self.db = Rdict(str(self.path), options=opts)
        except Exception as exc:  # rocksdict raises plain Exception("Corruption: ...")
            raise StateCorrupted(self.path, exc) from exc

    def _read(self, key: str) -> Any:
        try:
            raw = self.db.get(key.encode())
            return _MISSING if raw is None else orjson.loads(raw)
        except Exception as exc:  # a block that fails its checksum, a value that is not JSON
            raise StateCorrupted(self.path, exc) from exc

    def get(self, key: str, default: Any = None) -> Any:
        value = self._read(key)
        return default if value is _MISSING else value

    def __getitem__(self, key: str) -> Any:
        value = self._read(key)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        self.db[key.encode()] = orjson.dumps(value)

    def write_many(self, items: Iterable[tuple[str, Any]]) -> None:
        """Store every `(key, value)` in one RocksDB write batch: all or nothing, and about half
        the cost of a put per key."""
        from rocksdict import WriteBatch

        batch = WriteBatch(raw_mode=True)
        dumps = orjson.dumps
        for key, value in items:
            batch.put(key.encode(), dumps(value))
        self.db.write(batch)

    def __delitem__(self, key: str) -> None:
        bkey = key.encode()
        if self.db.get(bkey) is None:
            raise KeyError(key)
        del self.db[bkey]

    def expire_before(self, cutoff: float) -> list[str]:
        """`expire_before` in one pass over the raw values, each one's time read from its first
        bytes in compiled code (`raw_entry_time` is the reference), and one write batch for the
        deletes: a delete at a time was a write-ahead log append each, and decoding every value
        cost more than the scan."""
        from rocksdict import WriteBatch

        try:
            stale, unread = stale_entries(self.db.items(), cutoff)
            stale += [key for key, raw in unread if raw_entry_time(raw) < cutoff]
            if stale:
                batch = WriteBatch(raw_mode=True)
                for key in stale:
                    batch.delete(key)
                self.db.write(batch)
        except Exception as exc:  # a block that fails its checksum, a value that is not JSON
            raise StateCorrupted(self.path, exc) from exc
        return [key.decode() for key in stale]

    def __iter__(self) -> Iterator[str]:
        for key in self.db.keys():
            yield key.decode()

    def __len__(self) -> int:
        return sum(1 for _ in self.db.keys())

    def items(self) -> Iterator[tuple[str, Any]]:  # type: ignore[override]
        """One ordered scan (the expiry sweep); 2x faster than keys + get per key."""
        for key, raw in self.db.items():
            yield key.decode(), orjson.loads(raw)

    def close(self) -> None:
        """Flush and release the RocksDB lock (a second open of the same path needs this)."""
        self.db.close()


class BandMirroredRocks(RocksState):
    """The near-dup index on RocksDB, with its band entries (`b:<band>:<hex>` -> `[t, id]`)
    also held in memory (`newspipe_native.BandMap`).

    Every article looks up all its bands (42 by default), and through RocksDB each lookup costs
    a few microseconds (more for a hit, which reads and searches a table block): most of what
    the near-dup stage spent on an article. RocksDB stays the record: every write goes to both,
    and opening the store reads the band entries back into memory (one ordered scan of the `b:`
    keys). The price is memory, 35 to 70 bytes per band entry (docs/operations.md, "Memory").
    """

    def __init__(self, path: str | Path) -> None:
        from newspipe_native import BandMap

        super().__init__(path)
        self.bands = BandMap()
        try:
            self.bands.put_many(self._scan_bands())
        except Exception as exc:  # a block that fails its checksum, a value that is not JSON
            self.db.close()
            raise StateCorrupted(self.path, exc) from exc

    def _scan_bands(self) -> Iterator[tuple[str, Any]]:
        for key, raw in self.db.items(from_key=b"b:"):
            if not key.startswith(b"b:"):
                return
            yield key.decode(), orjson.loads(raw)

    def _read(self, key: str) -> Any:
        try:
            return self.bands.get(key, _MISSING)
        except KeyError:  # not a band key, or a value the map does not hold: RocksDB answers
            return super()._read(key)

    def get(self, key: str, default: Any = None) -> Any:
        # `_read` inlined: the near-dup stage asks this some 40 times an article
        try:
            return self.bands.get(key, default)
        except KeyError:
            return super().get(key, default)

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self.bands.put_many(((key, value),))

    def write_many(self, items: Iterable[tuple[str, Any]]) -> None:
        if not isinstance(items, Collection):  # a dict's items() view can be walked twice
            items = list(items)
        super().write_many(items)
        self.bands.put_many(items)

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self.bands.remove(key)

    def expire_before(self, cutoff: float) -> list[str]:
        stale = super().expire_before(cutoff)
        for key in stale:
            self.bands.remove(key)
        return stale


def open_rocks(name: str, path: str | Path) -> RocksState:
    """The RocksDB store of the core's state map `name` (a `pipeline.core.States` field): the
    near-dup index mirrors its band entries in memory, the other maps are plain."""
    return BandMirroredRocks(path) if name == "index" else RocksState(path)
