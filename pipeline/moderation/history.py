"""Authors' recent flagged comments, across articles and partitions.

Comments are partitioned by article, an author's comments by nobody: every comment whose status
is not `approved` becomes one `HistoryEvent` on the internal `moderation.history` topic (keyed by
author, written in the comments batch's transaction, retention about the horizon), and every
worker folds that topic into an `AuthorHistory`. Keyed by comment id, so a redelivered event or a
worker's own event seen twice (once locally, once from the topic) counts once.
"""

from __future__ import annotations

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


class AuthorHistory:
    """author -> {comment_id: (t, status)}, bounded by the horizon (event time)."""

    def __init__(self, horizon_s: float) -> None:
        self.horizon_s = horizon_s
        self._by_author: dict[str, dict[str, tuple[float, str]]] = {}
        self.watermark = 0.0  # the newest event time seen

    def add(self, event: HistoryEvent) -> None:
        self._by_author.setdefault(event.author, {})[event.comment_id] = (event.t, event.status)
        if event.t > self.watermark:
            self.watermark = event.t

    def has(self, author: str) -> bool:
        """Whether any event of `author` is held (a cheap test before `count`)."""
        return author in self._by_author

    def held(self, author: str) -> int:
        """How many events of `author` are held, whatever their time (an upper bound of any
        `count`, without reading the times)."""
        entries = self._by_author.get(author)
        return len(entries) if entries else 0

    def count(self, author: str, now: float, exclude: str | None = None) -> dict[str, int]:
        """The author's flagged comments within the horizon before `now`: {status: n}."""
        counts: dict[str, int] = {}
        entries = self._by_author.get(author)
        if not entries:
            return counts
        since = now - self.horizon_s
        for cid, (t, status) in entries.items():
            if cid != exclude and since <= t <= now:
                counts[status] = counts.get(status, 0) + 1
        return counts

    def expire(self) -> int:
        """Forget events older than the horizon behind the watermark; returns how many went."""
        cutoff = self.watermark - self.horizon_s
        removed = 0
        for author in list(self._by_author):
            entries = self._by_author[author]
            for cid in [c for c, (t, _) in entries.items() if t < cutoff]:
                del entries[cid]
                removed += 1
            if not entries:
                del self._by_author[author]
        return removed

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_author.values())
