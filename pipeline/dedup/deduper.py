"""Deduplication rules for clean articles and comments, over pluggable bounded state.

One clean record in, one `Outcome` out: `emit` says whether it goes to the clean topic; `kind`
says why (the shell counts drops by kind). The record is updated in place (revision,
previous_content_hash, duplicate_of, cluster_id, spam_suspect, spam_cluster_size).

Rules
-----
Articles (state `articles`, key = article id):
  * same id, a content hash seen before (any of the last `HASH_HISTORY` = 8 versions) ->
    `duplicate.exact`, dropped. So A, B, A drops the second A: a stale cache, CDN edge or replay
    re-serving an old version must not bump the revision; a genuine revert to earlier text is
    rare and its content was already emitted.
  * same id, new hash -> `revision`, emitted with revision = previous + 1 and
    previous_content_hash = the last emitted hash. A revision keeps the duplicate_of/cluster_id
    its first version got (it is not re-judged), but refreshes the near-dup index.
  * new id -> MinHash-LSH lookup (`near_dup_threshold` on the estimated Jaccard of word 3-shingles
    of title + standfirst + body; 128 values, 42 bands x 3 rows). Chosen over SimHash by
    scripts/near_dup_eval.py: better precision and recall at the same cost, and LSH band keys give
    the index a natural partition key. The thresholds are chosen on labelled pairs by
    scripts/near_dup_eval.py (docs/performance.md has the figures). Jaccard alone cannot tell a
    copy from a follow-up of the same story (a new opening over the first article's text shares
    as much as a cut copy), so a copy must also open like its candidate: `lead_containment` >=
    LEAD_THRESHOLD (of each text's first 20 words, the share found in the other's first 100). A
    copy -> `near_duplicate`, emitted with duplicate_of = the matched (earlier) article and
    cluster_id = that article's cluster_id, or its own id when it has none: the first article of
    a cluster keeps cluster_id null, so group by `cluster_id or article_id`. With
    `drop_near_duplicates` -> `duplicate.near`, dropped (still remembered, so its redelivery is
    `duplicate.exact`). Not a copy but Jaccard >= `related_threshold` -> `new`, with related_to =
    the most similar such article. Both relations set story_id = the first article of the story
    (null for that first article: group by `story_id or article_id`); the window is the article
    horizon. No match -> `new`.
Comments (state `comments`; comments are keyed by article id, so all of an article's comments
meet on one partition):
  * same comment id and hash -> `duplicate.exact`; same id, new hash (an edit, a moderator
    removal) -> `revision`, emitted.
  * same author + same text hash on the same article under another comment id (a double post) ->
    `duplicate.comment`, dropped.
  * otherwise the text hash counts distinct (author, article) pairs; from the second pair on the
    comment is emitted with `spam_suspect` = true (kind `spam_suspect`) and `spam_cluster_size` =
    pairs seen so far. The first poster is not flagged retroactively (we cannot recall a record).
  * short texts (fewer than `SHORT_WORDS` = 4 words: "lol", "+1", "so true") and removed
    comments take part in neither rule: many people write them independently, so they would
    form huge false spam clusters and false double posts. They get spam_cluster_size = 0.
  * comments without an author skip the double-post rule (anonymous people are
    indistinguishable) but still count towards spam clusters.

Time and expiry
---------------
Horizons are in EVENT time: the deduper keeps a watermark = the largest event_time seen (clamped
to wall clock + 1 h so one bad timestamp cannot expire everything). An entry whose last-seen
time is older than watermark - horizon is treated as absent, and `expire(now)` deletes such
entries and returns their keys (the Faust shell turns deletes into changelog tombstones). Event
time makes a replay of old archives behave as live traffic did; wall clock would expire a whole
backfill at once. Consequence, by design: a copy arriving after the horizon is treated as new
(a fresh id or revision 1 again). The watermark is per Deduper (per worker) and is not persisted:
after a restart nothing looks expired until newer events move it.

State layout (the first field is always the last-seen epoch second)
-------------------------------------------------------------------
Entries are written as tuples of plain values (a dict for `a:`), read back from the changelog
or RocksDB as JSON lists, and only ever read by index, so both shapes work. Tuples because the
garbage collector stops tracking a tuple of plain values once a collection has looked at it,
while it walks every list on every collection of the generation that holds it: with a million
entries held, lists made the collector's pauses and a share of the worker's CPU grow with the
state.
articles: ``a:<article_id>`` -> {"t", "h": [last 8 content hashes, newest last], "r": revision}
comments: ``c:<comment_id>`` -> [t, content_hash]
          ``p:<xxh3(article_id, author, content_hash)>`` -> [t, first comment_id]  (double posts)
          ``s:<content_hash>`` -> [t, distinct (author, article) count,            (spam clusters)
                                   [[author hash, comment id], ...] of the first 8 authored]
index:    ``b:<band>:<12 hex of xxh3 of the band's rows>`` -> [t, first article_id with the band]
          ``g:<article_id>`` -> [t, base64 low-16-bit MinHash signature (256 B),
                                 cluster_id | null, duplicate_of | null, content_hash,
                                 base64 16-bit shingles of the first 100 body words (~260 B),
                                 story_id | null, related_to | null]
Per article: 1 + 42 + 1 entries, ~2 KB serialized (the 42 band keys are most of it); per
comment: up to 3 entries. `bench/bench_dedup.py` prints the measured sizes.
Key prefixes differ across the three states, so `expire()` can return one flat key list.

Across Kafka partitions
-----------------------
`check_article` = `check_article_exact` (articles state only) + `check_near_duplicate` (index
state only), so the two run in different stages. Exact, revision, double-post and spam checks
are partition-local (raw events are keyed by article id); a syndicated copy has another id, so
the near-dup index lives on ONE partition that every article is forwarded to. Why, and the
alternatives considered: docs/architecture.md ("Near-duplicates across partitions").
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from newspipe_native import claim_bands, judge_candidates, scan_bands

from pipeline.dedup.fingerprint import (
    MinHasher,
    _py_band_hashes,
    decode_lead,
    decode_signature,
    encode_lead,
    encode_signature_le,
    jaccard_estimate,
    lead_containment,
    lead_shingles,
)
from pipeline.dedup.state import DictState, StateMap, entry_time, expire_before
from pipeline.ids import short_hash
from pipeline.normalize.times import epoch_of
from pipeline.settings import Settings

NEW = "new"
REVISION = "revision"
NEAR_DUPLICATE = "near_duplicate"
SPAM_SUSPECT = "spam_suspect"
DUPLICATE_EXACT = "duplicate.exact"
DUPLICATE_NEAR = "duplicate.near"
DUPLICATE_COMMENT = "duplicate.comment"

HASH_HISTORY = 8
SHORT_WORDS = 4
# authored posts a spam cluster remembers (author hash, comment id) for `repeat_of`
MAX_POSTERS = 8
NUM_PERM = 128
BANDS = 42  # 42 bands x 3 rows of 128 values: chosen by scripts/near_dup_eval.py
ROWS = 3
FUTURE_SLACK_S = 3600
# A copy's opening reappears in the original's (and the other way round): at least this share
# of the first 20 words' shingles (fingerprint.lead_containment). Chosen by
# scripts/near_dup_eval.py on labelled copies and follow-ups of the same story.
LEAD_THRESHOLD = 0.5


@dataclass(slots=True)
class Outcome:
    """The dedup decision: `emit` False means a counted drop of kind `kind`."""

    kind: str
    emit: bool
    record: dict[str, Any]
    duplicate_of: str | None = None
    similarity: float | None = None


def lead_text(record: dict[str, Any]) -> str:
    """The text whose opening tells a copy from a follow-up: the body (standfirst without one)."""
    return record.get("body") or record.get("standfirst") or ""


def article_text(record: dict[str, Any]) -> str:
    """The text near-duplicates are judged on: title, standfirst and body."""
    return " ".join(
        part for part in (record.get("title"), record.get("standfirst"), record.get("body")) if part
    )


class Deduper:
    """Dedup decisions for articles and comments over three mapping-like states."""

    def __init__(
        self,
        settings: Settings | None = None,
        articles: StateMap | None = None,
        comments: StateMap | None = None,
        index: StateMap | None = None,
        *,
        num_perm: int = NUM_PERM,
        bands: int = BANDS,
        rows: int = ROWS,
    ) -> None:
        settings = settings if settings is not None else Settings()
        self.article_horizon_s = float(settings.article_horizon_s)
        self.comment_horizon_s = float(settings.comment_horizon_s)
        self.threshold = settings.near_dup_threshold
        self.related_threshold = settings.related_threshold
        self.lead_threshold = LEAD_THRESHOLD
        self.drop_near = settings.drop_near_duplicates
        self.articles: StateMap = DictState() if articles is None else articles
        self.comments: StateMap = DictState() if comments is None else comments
        self.index: StateMap = DictState() if index is None else index
        if bands * rows > num_perm:
            raise ValueError("bands * rows must not exceed num_perm")
        self.hasher = MinHasher(num_perm)
        self.bands = bands
        self.rows = rows
        self.watermark = 0.0

    # -- time -------------------------------------------------------------------------------
    def _event_time(self, record: dict[str, Any]) -> float:
        """Epoch seconds of the record's event_time (wall clock if missing); moves the watermark."""
        value = record.get("event_time")
        if isinstance(value, str):
            try:
                ts = epoch_of(value)
            except ValueError:
                ts = time.time()
        elif isinstance(value, int | float):
            ts = float(value)
        else:
            ts = time.time()
        if ts > self.watermark:
            self.watermark = min(ts, time.time() + FUTURE_SLACK_S)
        return ts

    def _live(self, value: Any, horizon: float) -> bool:
        return value is not None and entry_time(value) >= self.watermark - horizon

    # -- articles ---------------------------------------------------------------------------
    def check_article(self, record: dict[str, Any]) -> Outcome:
        """Exact/revision check, then the near-duplicate check for new and revised articles."""
        outcome = self.check_article_exact(record)
        if outcome.kind in (NEW, REVISION):
            return self.check_near_duplicate(record, outcome)
        return outcome

    def check_article_exact(self, record: dict[str, Any]) -> Outcome:
        """The partition-local part: redelivery and revision by article id + content hash.

        Touches only the `articles` state, so it can run on the article-keyed partitions while
        `check_near_duplicate` (only the `index` state) runs elsewhere.
        """
        aid = record["article_id"]
        h = record.get("content_hash") or short_hash(article_text(record))
        t = int(self._event_time(record))
        key = "a:" + aid
        entry = self.articles.get(key)
        record.setdefault("duplicate_of", None)
        record.setdefault("cluster_id", None)
        record.setdefault("related_to", None)
        record.setdefault("story_id", None)
        if not self._live(entry, self.article_horizon_s):
            record["revision"] = 1
            record["previous_content_hash"] = None
            self.articles[key] = {"t": t, "h": (h,), "r": 1}
            return Outcome(NEW, True, record)
        entry["t"] = max(t, entry["t"])
        if h in entry["h"]:
            record["revision"] = entry["r"]
            self.articles[key] = entry  # refresh last-seen: redelivery keeps the entry alive
            return Outcome(DUPLICATE_EXACT, False, record, duplicate_of=aid)
        record["previous_content_hash"] = entry["h"][-1]
        entry["r"] += 1
        record["revision"] = entry["r"]
        entry["h"] = (*entry["h"][-(HASH_HISTORY - 1) :], h)
        self.articles[key] = entry
        return Outcome(REVISION, True, record)

    def fingerprint(self, record: dict[str, Any]) -> Any:
        """MinHash signature of the article text (uint32 numpy array)."""
        return self.hasher.text_signature(article_text(record))

    def check_near_duplicate(self, record: dict[str, Any], outcome: Outcome) -> Outcome:
        """Look a new article up in the band index, then add it (first writer of a band wins).

        Two relations come out of one lookup. A candidate whose estimated Jaccard reaches
        `near_dup_threshold` AND whose opening matches (`lead_containment` >= LEAD_THRESHOLD) is
        the same text published again: `duplicate_of`, `cluster_id`. Otherwise a candidate at
        `related_threshold` or more is another article of the same story: `related_to`. Both
        give `story_id` (the first article of the story; null for that first article). A
        candidate indexed without an opening (state from before 1.1) is judged on Jaccard alone.
        A revision is not re-judged: it keeps what its first version got (its own `g:` entry)
        and its new signature is indexed.
        """
        aid = record["article_id"]
        t = int(self._event_time(record))
        cutoff = self.watermark - self.article_horizon_s
        index = self.index
        revision = outcome.kind == REVISION
        gkey = "g:" + aid
        own = index.get(gkey)
        h = record.get("content_hash")
        if own is not None and own[0] >= cutoff and len(own) > 4 and own[4] == h:
            # This very version was indexed already: a redelivery into a separate near-dup
            # stage (at-least-once between stages). Drop it like any exact duplicate.
            _restore_links(record, own)
            return Outcome(DUPLICATE_EXACT, False, record, duplicate_of=aid)
        sig = self.fingerprint(record)
        lead = lead_shingles(lead_text(record))
        # The band lookups (and the owners' `g:` entries) in one native call: `_py_scan_bands`
        # is the same loop in Python, kept as its reference.
        sig_le = _u32_le(sig)
        free, found = scan_bands(index, sig_le, self.bands, self.rows, aid, cutoff, revision)
        # The judgment of the candidates in one native call too (`_py_judge` is its reference,
        # and judges the entries the native one declines: any not in the shape written here).
        args = (found, self.threshold, self.related_threshold, self.lead_threshold)
        judged = judge_candidates(sig_le, lead.tobytes(), *args)
        best_sim, copy, related = judged if judged is not None else _py_judge(sig, lead, *args)
        claim_bands(index, free, t, aid)  # index[key] = (t, aid) for each free band, in order
        if revision:
            if own is not None and own[0] >= cutoff:
                _restore_links(record, own)
            index[gkey] = self._entry(t, sig_le, lead, record, h)
            return outcome
        if copy is not None:
            sim, record["duplicate_of"], record["cluster_id"], record["story_id"] = copy
            index[gkey] = self._entry(t, sig_le, lead, record, h)
            kind, emit = (DUPLICATE_NEAR, False) if self.drop_near else (NEAR_DUPLICATE, True)
            return Outcome(kind, emit, record, duplicate_of=copy[1], similarity=sim)
        if related is not None:
            _, record["related_to"], record["story_id"] = related
        index[gkey] = self._entry(t, sig_le, lead, record, h)
        outcome.similarity = best_sim if best_sim >= 0 else None
        return outcome

    @staticmethod
    def _entry(t: int, sig_le: bytes, lead: Any, record: dict[str, Any], h: Any) -> tuple[Any, ...]:
        """The `g:` entry of an indexed article (layout in the module docstring); `sig_le`: the
        signature as the little-endian bytes the band lookups read already."""
        return (
            t, encode_signature_le(sig_le), record.get("cluster_id"), record.get("duplicate_of"),
            h, encode_lead(lead), record.get("story_id"), record.get("related_to"),
        )  # fmt: skip

    # -- comments ---------------------------------------------------------------------------
    def check_comment(self, record: dict[str, Any]) -> Outcome:
        """Redelivery, double post, spam cluster; exact hashes only (comment volume is high)."""
        cid = record["comment_id"]
        text = record.get("text") or ""
        h = record.get("content_hash") or short_hash(text)
        t = int(self._event_time(record))
        horizon = self.comment_horizon_s
        comments = self.comments
        record["spam_suspect"] = False
        record["spam_cluster_size"] = 0
        ckey = "c:" + cid
        entry = comments.get(ckey)
        kind = NEW
        if self._live(entry, horizon):
            if entry[1] == h:
                comments[ckey] = (max(t, entry[0]), h)
                return Outcome(DUPLICATE_EXACT, False, record, duplicate_of=cid)
            kind = REVISION
        comments[ckey] = (t, h)
        if record.get("removed") or _is_short(record, text):
            return Outcome(kind, True, record)
        author = record.get("author")
        if author:
            pkey = "p:" + short_hash(f"{record['article_id']}\x1f{author}\x1f{h}")
            first = comments.get(pkey)
            if self._live(first, horizon) and first[1] != cid:
                comments[pkey] = (max(t, first[0]), first[1])
                return Outcome(DUPLICATE_COMMENT, False, record, duplicate_of=first[1])
            if first is not None and first[1] == cid and self._live(first, horizon):
                # an edit back to an earlier text of the same comment: not a new pair
                comments[pkey] = (t, cid)
                return Outcome(kind, True, record)
            comments[pkey] = (t, cid)
        skey = "s:" + h
        cluster = comments.get(skey)
        live = self._live(cluster, horizon)
        n = cluster[1] + 1 if live else 1
        # the cluster's first authored posts, in order, for `repeat_of` (entries written before
        # this field existed have none: the list starts again)
        posters = tuple(cluster[2]) if live and len(cluster) > 2 else ()
        if author and len(posters) < MAX_POSTERS:
            posters = (*posters, (short_hash(author), cid))
        comments[skey] = (t, n, posters)
        record["spam_cluster_size"] = n
        if n >= 2:
            record["spam_suspect"] = True
            if kind == NEW:
                kind = SPAM_SUSPECT
        return Outcome(kind, True, record)

    def repeat_of(self, record: dict[str, Any]) -> str | None:
        """The id of the same author's earlier comment with this text on another article (the
        moderation flag `repeat_post`), or None. Reads the spam cluster entry `check_comment`
        wrote: only the cluster's first `MAX_POSTERS` authored posts are remembered."""
        author = record.get("author")
        if not author or record.get("spam_cluster_size", 0) < 2:
            return None
        entry = self.comments.get("s:" + (record.get("content_hash") or ""))
        if not entry or len(entry) < 3:
            return None
        mine, cid = short_hash(author), record["comment_id"]
        for poster, first in entry[2]:
            if first == cid:
                return None  # only posts before this one count
            if poster == mine:
                return first
        return None

    # -- housekeeping -----------------------------------------------------------------------
    def expire(self, now_epoch_s: float | None = None) -> list[str]:
        """Delete entries last seen before now - horizon; returns the deleted keys.

        `now_epoch_s` defaults to the event-time watermark. Keys are unique across the three
        states by prefix (a: | c: p: s: | b: g:). A full scan: run it every minute or so, not
        per event.
        """
        now = self.watermark if now_epoch_s is None else float(now_epoch_s)
        removed: list[str] = []
        for state, horizon in (
            (self.articles, self.article_horizon_s),
            (self.comments, self.comment_horizon_s),
            (self.index, self.article_horizon_s),
        ):
            removed.extend(expire_before(state, now - horizon))
        return removed

    def size(self) -> dict[str, int]:
        """Entry counts per state (for gauges and the benchmark)."""
        return {
            "articles": len(self.articles),
            "comments": len(self.comments),
            "index": len(self.index),
        }


def _u32_le(sig: Any) -> bytes:
    """A signature as the little-endian uint32 bytes `scan_bands` reads."""
    return sig.astype("<u4", copy=False).tobytes()


def _py_scan_bands(
    index: StateMap, sig: bytes, bands: int, rows: int, aid: str, cutoff: float, revision: bool
) -> tuple[list[str], list[tuple[str, Any]]]:
    """The reference of the native `scan_bands` (native/src/dedup.rs): the band loop as
    `check_near_duplicate` ran it in Python. Returns the free band keys (to be claimed, in band
    order) and the live owners of the other bands with their `g:` entries, each owner once."""
    free: list[str] = []
    found: list[tuple[str, Any]] = []
    checked: set[str] = set()
    sig_array = np.frombuffer(sig, dtype="<u4")
    for i, band in enumerate(_py_band_hashes(sig_array, bands, rows)):
        key = f"b:{i}:" + band
        hit = index.get(key)
        if hit is None or hit[0] < cutoff or hit[1] == aid:
            free.append(key)
            continue
        cand = hit[1]
        if revision or cand in checked:
            continue
        checked.add(cand)
        g = index.get("g:" + cand)
        if g is None or g[0] < cutoff:
            free.append(key)  # the band's owner expired: take the band over
            continue
        found.append((cand, g))
    return free, found


def _py_judge(
    sig: Any,
    lead: Any,
    found: list[tuple[str, Any]],
    threshold: float,
    related_threshold: float,
    lead_threshold: float,
) -> tuple[float, tuple[float, str, Any, Any] | None, tuple[float, str, Any] | None]:
    """The reference of the native `judge_candidates`: (best similarity, the copy
    `(sim, id, cluster, story)` or None, the related article `(sim, id, story)` or None)."""
    floor = min(threshold, related_threshold)
    best_sim = -1.0
    copy: tuple[float, str, Any, Any] | None = None
    related: tuple[float, str, Any] | None = None
    for cand, g in found:
        sim = jaccard_estimate(sig, decode_signature(g[1]))
        best_sim = max(best_sim, sim)
        if sim < floor:
            continue
        story = (g[6] if len(g) > 6 else None) or g[2] or cand
        opening = decode_lead(g[5]) if len(g) > 5 and g[5] else None
        same_text = sim >= threshold and (
            opening is None or lead_containment(lead, opening) >= lead_threshold
        )
        if same_text:
            if copy is None or sim > copy[0]:
                copy = (sim, cand, g[2] or cand, story)
        elif sim >= related_threshold and (related is None or sim > related[0]):
            related = (sim, cand, story)
    return best_sim, copy, related


def _py_claim_bands(index: StateMap, keys: list[str], t: int, aid: str) -> None:
    """The reference of the native `claim_bands`: one entry shared by the article's bands."""
    entry = (t, aid)
    for key in keys:
        index[key] = entry


def _restore_links(record: dict[str, Any], entry: Sequence[Any]) -> None:
    """The relations an article's first version got, from its `g:` entry."""
    record["cluster_id"], record["duplicate_of"] = entry[2], entry[3]
    record["story_id"] = entry[6] if len(entry) > 6 else None
    record["related_to"] = entry[7] if len(entry) > 7 else None


def _is_short(record: dict[str, Any], text: str) -> bool:
    count = record.get("word_count")
    if not isinstance(count, int):
        count = len(text.split())
    return count < SHORT_WORDS
