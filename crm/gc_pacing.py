"""Full garbage collections at a moment of our choosing, not in the middle of a screen pop.

CPython's cycle collector stops every thread while it runs; a full (generation 2) pass over a process
that holds a hundred operators' pages takes 50–150 ms, and left to itself it starts whenever enough
objects have survived, which is exactly while pops flow. So the objects alive after start-up are frozen
(never scanned again), automatic full passes are switched off, and a full pass runs every
``FULL_PASS_EVERY_S`` seconds on the event loop instead. The young generations still collect by
themselves: their passes take about a millisecond.

Python 3.14's incremental collector bounds its pauses by itself; there the defaults are kept.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import time

log = logging.getLogger(__name__)

FULL_PASS_EVERY_S = 60.0
NEVER = 1_000_000_000  # young collections before a full one is considered: in effect, never


def take_over_full_collections() -> bool:
    """Freeze what start-up made and stop automatic full passes; False where that is not needed."""
    if sys.version_info >= (3, 14):
        return False
    gc.collect()  # what start-up left as garbage goes now, not into the frozen set
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, NEVER)
    return True


async def collect_periodically(every_s: float = FULL_PASS_EVERY_S) -> None:
    """Run the full passes that ``take_over_full_collections`` took from the interpreter."""
    while True:
        await asyncio.sleep(every_s)
        started = time.perf_counter()
        found = gc.collect()
        log.debug(
            'full garbage collection: %d objects in %.0f ms', found, (time.perf_counter() - started) * 1000
        )
