"""The near-dup index's band entries mirrored in memory (`BandMirroredRocks`): every read
answers what the plain RocksDB store answers, after any mix of writes, deletes and reopens, and
the near-dup decisions over real stories are the same."""

from __future__ import annotations

import random
from typing import Any

import pytest
from newspipe_native import BandMap

from devtools.neardup_eval import build_articles, follow_up, load_items, wire_copy
from devtools.samples import clean_article
from pipeline.dedup import Deduper, RocksState
from pipeline.dedup.state import BandMirroredRocks, StateCorrupted, open_rocks
from pipeline.settings import Settings
from pipeline.stream.state import OverlayMap

SETTINGS = Settings(near_dup_threshold=0.3)
MISSING = object()


def band(i: int, h: int) -> str:
    return f"b:{i}:{h:012x}"


def random_ops(rng: random.Random, n: int) -> list[tuple[str, Any]]:
    """Keys the deduper writes and keys it never writes, with usual and unusual values."""
    keys = [band(rng.randrange(42), rng.getrandbits(48)) for _ in range(60)]
    keys += ["b:01:000000000001", "b:3:ABCDEF012345", "b:7:12", "g:a1", "g:a2", "b:", "bx"]
    owners = [f"article-{i}" for i in range(5)]
    values: list[Any] = [
        [1_700_000_000, rng.choice(owners)],
        [2**62, rng.choice(owners)],
        [-5, ""],
        [True, "a"],  # a bool is not an int here: the mirror must not turn it into 1
        [1.5, "a"],
        [1, "a", "extra"],
        {"t": 1},
        None,
        "text",
    ]
    ops: list[tuple[str, Any]] = []
    for _ in range(n):
        roll = rng.random()
        key = rng.choice(keys)
        if roll < 0.15:
            ops.append(("del", key))
        elif roll < 0.25:
            ops.append(("set", (key, rng.choice(values))))
        else:
            batch = [(rng.choice(keys), rng.choice(values)) for _ in range(rng.randrange(1, 30))]
            ops.append(("many", batch))
    return ops, keys  # type: ignore[return-value]


def apply(store: RocksState, op: str, arg: Any) -> None:
    if op == "del":
        try:
            del store[arg]
        except KeyError:
            pass
    elif op == "set":
        store[arg[0]] = arg[1]
    else:
        store.write_many(dict(arg).items())


def reads(store: RocksState, keys: list[str]) -> list[Any]:
    return [store.get(k, MISSING) for k in keys]


@pytest.mark.parametrize("seed", range(4))
def test_the_mirror_reads_what_rocksdb_holds_after_any_writes_and_a_reopen(tmp_path, seed):
    rng = random.Random(seed)
    ops, keys = random_ops(rng, 300)
    plain = RocksState(tmp_path / "plain")
    mirrored = BandMirroredRocks(tmp_path / "mirrored")
    for n, (op, arg) in enumerate(ops):
        apply(plain, op, arg)
        apply(mirrored, op, arg)
        if n % 25 == 0:
            assert reads(mirrored, keys) == reads(plain, keys)
    assert reads(mirrored, keys) == reads(plain, keys)
    assert [mirrored[k] for k in keys if k in plain] == [plain[k] for k in keys if k in plain]
    assert len(mirrored.bands) == sum(1 for k in plain if BandMap.handles(k))
    mirrored.close()
    reopened = BandMirroredRocks(tmp_path / "mirrored")  # the band entries come back from disk
    assert reads(reopened, keys) == reads(plain, keys)
    assert len(reopened.bands) == len(mirrored.bands)
    reopened.close()
    plain.close()


def test_a_band_read_is_a_new_list_each_time(tmp_path):
    store = BandMirroredRocks(tmp_path / "index")
    store.write_many([(band(0, 1), [5, "a1"])])
    first = store.get(band(0, 1))
    first.append("changed by a caller")
    assert store.get(band(0, 1)) == [5, "a1"]
    store.close()


def test_only_the_index_map_gets_a_mirror(tmp_path):
    index, articles = open_rocks("index", tmp_path / "i"), open_rocks("articles", tmp_path / "a")
    assert isinstance(index, BandMirroredRocks) and type(articles) is RocksState
    index.close()
    articles.close()


def test_unreadable_band_entries_at_open_are_state_corrupted(tmp_path):
    store = RocksState(tmp_path / "index")
    store.db[band(1, 2).encode()] = b"not json"
    store.close()
    with pytest.raises(StateCorrupted):
        BandMirroredRocks(tmp_path / "index")
    RocksState(tmp_path / "index").close()  # the failed open let go of the lock


def test_near_dup_decisions_are_the_same_with_and_without_the_mirror(tmp_path):
    """Real stories with copies and follow-ups, in the worker's shape: the index as an
    `OverlayMap` whose writes reach the store a batch at a time."""
    stories = build_articles(load_items(), random.Random(11), 6)[:150]
    rng = random.Random(3)
    titles = [s.title for s in stories]
    vocab = sorted({w for s in stories[:50] for w in s.text().split()})
    records = []
    for n, doc in enumerate(stories):
        records.append(clean_article(f"a{n}", doc.title, "\n\n".join(doc.paragraphs), offset_s=n))
        old = stories[n // 2]
        extra = None
        if n % 3 == 0:  # a syndicated copy of an earlier story under another id
            extra = wire_copy(old, rng, titles, vocab)
        elif n % 3 == 1:  # another article of an earlier story
            donors = [s for s in stories if s.label == old.label and s is not old][:3]
            extra = follow_up(old, rng, titles, donors, vocab)
        if extra is not None:
            body = "\n\n".join(extra.paragraphs)
            records.append(clean_article(f"x{n}", extra.title, body, offset_s=n + 0.5))
    decisions = {}
    for name, make in (("plain", RocksState), ("mirrored", BandMirroredRocks)):
        store = make(tmp_path / name)
        index = OverlayMap(store)
        exact, near = Deduper(SETTINGS, articles={}), Deduper(SETTINGS, index=index)
        out = []
        for i, rec in enumerate(records):
            outcome = exact.check_article_exact(dict(rec))
            if outcome.emit:
                outcome = near.check_near_duplicate(outcome.record, outcome)
            got = outcome.record
            out.append((outcome.kind, got.get("duplicate_of"), got.get("related_to"),
                        got.get("story_id")))  # fmt: skip
            if i % 20 == 19:
                index.apply()
        decisions[name] = out
        store.close()
    assert decisions["mirrored"] == decisions["plain"]
    kinds = {kind for kind, *_ in decisions["plain"]}
    assert {"new", "near_duplicate"} <= kinds, kinds  # copies were found, not only new ones
    assert sum(related is not None for _, _, related, _ in decisions["plain"]) >= 10
