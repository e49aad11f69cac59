"""Process tuning of the worker: what `settle_heap` leaves behind."""

from __future__ import annotations

import gc

from pipeline.runtime import GEN0_THRESHOLD, settle_heap


def test_settling_the_heap_freezes_what_is_loaded_and_collects_young_objects_less_often():
    before = gc.get_threshold()
    try:
        settle_heap()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (GEN0_THRESHOLD, before[1], before[2])
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
