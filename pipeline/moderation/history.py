"""Authors' recent flagged comments, across articles and partitions.

Comments are partitioned by article, an author's comments by nobody: every comment whose status
is not `approved` becomes one `HistoryEvent` on the internal `moderation.history` topic (keyed by
author, written in the comments batch's transaction, retention about the horizon), and every
worker folds that topic into an `AuthorHistory`. Keyed by comment id, so a redelivered event or a
worker's own event seen twice (once locally, once from the topic) counts once.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class HistoryEvent:
    """One non-approved comment of an author: `t` is its event time in epoch seconds."""

    author: str
    comment_id: str
    t: float
    status: str  # review or rejected

    def key(self) -> bytes:
        return self.author.encode()

    def value(self) -> bytes:
        return orjson.dumps({"author": self.author, "comment_id": self.comment_id, "t": self.t,
                             "status": self.status})  # fmt: skip

    @classmethod
    def parse(cls, value: bytes) -> HistoryEvent:
        d: dict[str, Any] = orjson.loads(value)
        return cls(str(d["author"]), str(d["comment_id"]), float(d["t"]), str(d["status"]))


class _Author:
    """One author's events: comment id -> (t, status), and per status the times, sorted."""

    __slots__ = ("events", "times")

    def __init__(self) -> None:
        self.events: dict[str, tuple[float, str]] = {}
        self.times: dict[str, list[float]] = {}

    def add(self, cid: str, t: float, status: str) -> None:
        old = self.events.get(cid)
        if old == (t, status):
            return
        if old is not None:
            self._drop(*old)
        self.events[cid] = (t, status)
        times = self.times.setdefault(status, [])
        if not times or t >= times[-1]:
            times.append(t)  # events mostly come in time order
        else:
            insort(times, t)

    def _drop(self, t: float, status: str) -> None:
        times = self.times[status]
        del times[bisect_left(times, t)]
        if not times:
            del self.times[status]


class AuthorHistory:
    """author -> its non-approved comments, bounded by the horizon (event time).

    Counting is a binary search per status, so a prolific author costs no more per comment than
    any other (a scan of every held event made a replayed troll's comments quadratic)."""

    def __init__(self, horizon_s: float) -> None:
        self.horizon_s = horizon_s
        self._by_author: dict[str, _Author] = {}
        self.watermark = 0.0  # the newest event time seen

    def add(self, event: HistoryEvent) -> None:
        author = self._by_author.get(event.author)
        if author is None:
            author = self._by_author[event.author] = _Author()
        author.add(event.comment_id, event.t, event.status)
        if event.t > self.watermark:
            self.watermark = event.t

    def has(self, author: str) -> bool:
        """Whether any event of `author` is held (a cheap test before `count`)."""
        return author in self._by_author

    def held(self, author: str) -> int:
        """How many events of `author` are held, whatever their time (an upper bound of any
        `count`, without reading the times)."""
        entry = self._by_author.get(author)
        return len(entry.events) if entry else 0

    def count(self, author: str, now: float, exclude: str | None = None) -> dict[str, int]:
        """The author's flagged comments within the horizon before `now`: {status: n}."""
        counts: dict[str, int] = {}
        entry = self._by_author.get(author)
        if entry is None:
            return counts
        since = now - self.horizon_s
        for status, times in entry.times.items():
            n = bisect_right(times, now) - bisect_left(times, since)
            if n:
                counts[status] = n
        if exclude is not None and exclude in entry.events:
            t, status = entry.events[exclude]
            if since <= t <= now:
                counts[status] -= 1
                if not counts[status]:
                    del counts[status]
        return counts

    def expire(self) -> int:
        """Forget events older than the horizon behind the watermark; returns how many went."""
        cutoff = self.watermark - self.horizon_s
        removed = 0
        for name in list(self._by_author):
            entry = self._by_author[name]
            old = [c for c, (t, _) in entry.events.items() if t < cutoff]
            for cid in old:
                del entry.events[cid]
            for status in list(entry.times):
                times = entry.times[status]
                del times[: bisect_left(times, cutoff)]
                if not times:
                    del entry.times[status]
            removed += len(old)
            if not entry.events:
                del self._by_author[name]
        return removed

    def __len__(self) -> int:
        return sum(len(v.events) for v in self._by_author.values())
