"""Process tuning of the worker: what `settle_heap` leaves behind."""

from __future__ import annotations

import gc

from pipeline.runtime import GEN0_THRESHOLD, GEN1_THRESHOLD, settle_heap


def test_settling_the_heap_freezes_what_is_loaded_and_spreads_collections_into_smaller_pauses():
    before = gc.get_threshold()
    try:
        settle_heap()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (GEN0_THRESHOLD, GEN1_THRESHOLD, before[2])
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
