"""Deduplication: a pure core (`Deduper`) over pluggable, bounded state (`DictState`,
`RocksState`, or any mapping such as a Faust table). Rules, state layout and the
cross-partition design are documented in `pipeline.dedup.deduper`.
"""

from pipeline.dedup.deduper import (
    DUPLICATE_COMMENT,
    DUPLICATE_EXACT,
    DUPLICATE_NEAR,
    NEAR_DUPLICATE,
    NEW,
    REVISION,
    SPAM_SUSPECT,
    Deduper,
    Outcome,
)
from pipeline.dedup.state import DictState, RocksState, StateCorrupted, StateMap

__all__ = [
    "DUPLICATE_COMMENT",
    "DUPLICATE_EXACT",
    "DUPLICATE_NEAR",
    "NEAR_DUPLICATE",
    "NEW",
    "REVISION",
    "SPAM_SUSPECT",
    "Deduper",
    "DictState",
    "Outcome",
    "RocksState",
    "StateCorrupted",
    "StateMap",
]
