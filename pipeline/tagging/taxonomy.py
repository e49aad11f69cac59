"""The shipped IPTC Media Topics taxonomy (live concepts only), loaded from package data."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
TAXONOMY_PATH = DATA_DIR / "taxonomy.json"


@dataclass(frozen=True, slots=True)
class Concept:
    """One Media Topic; parent is None for the 17 top-level topics."""

    code: str
    label: str
    level: int
    parent: str | None
    definition: str


class Taxonomy:
    """Lookup of concepts and their ancestor chains (used to roll evidence up the tree)."""

    def __init__(self, concepts: dict[str, Concept], attribution: str) -> None:
        self.concepts = concepts
        self.attribution = attribution
        self._chains: dict[str, tuple[str, ...]] = {}

    @classmethod
    def load(cls, path: Path = TAXONOMY_PATH) -> Taxonomy:
        """Read the compact JSON written by scripts/build_taxonomy.py."""
        raw = json.loads(path.read_text(encoding="utf-8"))
        concepts = {
            code: Concept(code, c["label"], int(c["level"]), c["parent"], c.get("definition", ""))
            for code, c in raw["concepts"].items()
        }
        return cls(concepts, raw["attribution"])

    def __contains__(self, code: str) -> bool:
        return code in self.concepts

    def __getitem__(self, code: str) -> Concept:
        return self.concepts[code]

    def top_level(self) -> list[Concept]:
        """The level-1 topics, in code order."""
        return sorted((c for c in self.concepts.values() if c.level == 1), key=lambda c: c.code)

    def chain(self, code: str) -> tuple[str, ...]:
        """The code followed by its ancestors up to the top-level topic."""
        cached = self._chains.get(code)
        if cached is not None:
            return cached
        out: list[str] = []
        cur: str | None = code
        while cur is not None:
            out.append(cur)
            cur = self.concepts[cur].parent
        result = tuple(out)
        self._chains[code] = result
        return result
