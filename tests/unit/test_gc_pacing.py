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


async def garbage_freed(quiet_for, **timing) -> bool:
    """Whether a cycle made now is freed by collect_when_quiet within half a second."""
    gc_pacing.take_over_full_collections()
    gc.disable()  # nothing but the pacer may collect during this test
    task = asyncio.create_task(gc_pacing.collect_when_quiet(quiet_for, check_s=0.005, **timing))
    try:
        node = Node()
        alive = weakref.ref(node)
        del node
        for _ in range(50):
            await asyncio.sleep(0.01)
            if alive() is None:
                return True
        return False
    finally:
        task.cancel()
        gc.enable()


async def test_a_full_pass_runs_when_the_screens_are_quiet(restored_gc) -> None:
    assert await garbage_freed(lambda: 10.0, every_s=0.02, quiet_s=2.0, at_most_s=60.0)


async def test_no_full_pass_while_pops_flow_until_it_is_overdue(restored_gc) -> None:
    busy = lambda: 0.0  # noqa: E731
    assert not await garbage_freed(busy, every_s=0.02, quiet_s=2.0, at_most_s=60.0)
    assert await garbage_freed(busy, every_s=0.02, quiet_s=2.0, at_most_s=0.1)
