"""Full collections are taken off the interpreter's hands and run on a timer instead."""

from __future__ import annotations

import asyncio
import gc
import sys
import weakref

import pytest

from crm import gc_pacing

pytestmark = pytest.mark.skipif(
    sys.version_info >= (3, 14), reason='the incremental collector keeps defaults'
)


@pytest.fixture
def restored_gc():
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cycle collector frees it


def test_start_up_objects_are_frozen_and_full_passes_stop(restored_gc) -> None:
    assert gc_pacing.take_over_full_collections()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[2] == gc_pacing.NEVER


async def test_the_timer_runs_the_full_pass(restored_gc) -> None:
    gc_pacing.take_over_full_collections()
    gc.disable()  # nothing but the timer may collect during this test
    try:
        node = Node()
        alive = weakref.ref(node)
        del node
        assert alive() is not None
        task = asyncio.create_task(gc_pacing.collect_periodically(every_s=0.01))
        for _ in range(100):
            await asyncio.sleep(0.01)
            if alive() is None:
                break
        task.cancel()
        assert alive() is None
    finally:
        gc.enable()
