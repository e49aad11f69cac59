"""How the moderation topics' records become the tables every worker holds: pure, no Kafka.

The stream shell's reader (`pipeline.stream.tables`) and `newspipe moderation` apply each
record of `moderation.rules` / `moderation.history` to one of these, in offset order.
"""

from __future__ import annotations

from typing import Any

import orjson

from pipeline.moderation.history import AuthorHistory, HistoryEvent
from pipeline.moderation.rules import LIST_NAMES, Rules, _clean


class RulesFold:
    """`moderation.rules` -> the current `Rules` snapshot, starting from the repository's seed.

    A record sets its list (the key names the list; an empty `entries` empties it). A tombstone
    (null value) puts the list back to the seed, not to empty: compaction removes a tombstone
    after `delete.retention.ms`, and a worker that starts after that sees no record for the
    list at all, which can only mean the seed; a tombstone meaning "empty" would give old and
    new workers different lists. To empty a list, write it with no entries
    (`newspipe moderation set LIST --file /dev/null`).

    A key that is not one of `LIST_NAMES` (a list a newer version knows) is ignored.
    """

    clean = staticmethod(_clean)  # how entries compare: casefolded, blanks collapsed

    def __init__(self, seed: Rules | None = None) -> None:
        self.seed = seed if seed is not None else Rules.seed()
        self.rules = self.seed
        self.written: dict[str, dict[str, Any]] = {}  # what the topic holds per list (CLI show)
        self.ignored = 0

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        name = (key or b"").decode("utf-8", "replace")
        if name not in LIST_NAMES:
            self.ignored += 1
            return
        if value is None:
            self.written.pop(name, None)
            self.rules = self.rules.with_list(name, self.seed.get(name))
            return
        item = orjson.loads(value)
        entries = item.get("entries") if isinstance(item, dict) else None
        if not isinstance(entries, list):
            raise ValueError(f"the record for {name} has no `entries` list")
        self.written[name] = item
        self.rules = self.rules.with_list(name, entries)

    @property
    def value(self) -> Rules:
        return self.rules


class HistoryFold:
    """`moderation.history` -> an `AuthorHistory` bounded by the horizon (event time)."""

    def __init__(self, horizon_s: float) -> None:
        self.history = AuthorHistory(horizon_s)

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        if value is None:
            return  # the topic is not compacted: nobody writes tombstones
        self.history.add(HistoryEvent.parse(value))

    @property
    def value(self) -> AuthorHistory:
        return self.history
