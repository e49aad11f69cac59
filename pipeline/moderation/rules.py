"""Editors' lists (banned words, suspect words, authors on pre-moderation), as one immutable
snapshot. Each list is one record of the compacted `moderation.rules` topic, keyed by its name,
value `{"list": name, "entries": [...], "updated_by": ..., "updated_at": ...}`; a null value
(tombstone) puts the list back to its seed (pipeline/moderation/folds.py says why), a record with
no entries empties it. The repository's seed files fill a list nobody has written yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

BANNED_WORDS = "banned_words"
SUSPECT_WORDS = "suspect_words"
PREMOD_AUTHORS = "premod_authors"
LIST_NAMES = (BANNED_WORDS, SUSPECT_WORDS, PREMOD_AUTHORS)
SEED_DIR = Path(__file__).resolve().parent.parent / "data" / "moderation"


def _clean(entries: Iterable[Any]) -> frozenset[str]:
    """Entries compare case-insensitively and without surrounding blanks."""
    return frozenset(s for s in (" ".join(str(e).split()).casefold() for e in entries) if s)


@dataclass(frozen=True)
class Rules:
    """One snapshot of every list; the core never sees a list change in the middle of a batch."""

    lists: Mapping[str, frozenset[str]] = field(default_factory=dict)
    version: int = 0  # bumped on every change the table applies (cheap cache key for matchers)

    def get(self, name: str) -> frozenset[str]:
        return self.lists.get(name, frozenset())

    def with_list(self, name: str, entries: Iterable[Any] | None) -> Rules:
        """A new snapshot with `name` replaced (None: emptied)."""
        lists = dict(self.lists)
        lists[name] = _clean(entries or ())
        return Rules(lists, self.version + 1)

    @classmethod
    def seed(cls, folder: Path = SEED_DIR) -> Rules:
        """The lists shipped in the repository: one entry a line, `#` starts a comment."""
        lists: dict[str, frozenset[str]] = {}
        for name in LIST_NAMES:
            path = folder / f"{name}.txt"
            lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
            lists[name] = _clean(ln.split("#", 1)[0] for ln in lines)
        return cls(lists, 0)

    @staticmethod
    def record(name: str, entries: Iterable[Any], updated_by: str, updated_at: str) -> bytes:
        """The `moderation.rules` value for a list (the key is the list name)."""
        return orjson.dumps({"list": name, "entries": sorted(_clean(entries)),
                             "updated_by": updated_by, "updated_at": updated_at})  # fmt: skip
