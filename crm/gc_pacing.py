"""Full garbage collections at a moment of our choosing, not in the middle of a screen pop.

CPython's cycle collector stops every thread while it runs; a full (generation 2) pass over a process
that holds a hundred operators' pages takes 50–150 ms, and left to itself it starts whenever enough
objects have survived, which is exactly while pops flow. So the objects alive after start-up are frozen
(never scanned again), automatic full passes are switched off, and a full pass runs every
``FULL_PASS_EVERY_S`` seconds on the event loop instead. The young generations still collect by
themselves: their passes take about a millisecond. With a hundred tabs a full pass takes about a second,
so it waits for a quiet moment on the live path (no notification for a couple of seconds).

Python 3.14's incremental collector bounds its pauses by itself; there the defaults are kept.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

FULL_PASS_EVERY_S = 60.0  # at most this often...
QUIET_S = 2.0  # ...when the screens have had nothing for this long...
# ...and at least this often, busy or not: under constant pops it is never quiet, and ten minutes of
# garbage (3 million objects with 100 tabs at 10 calls/s) took a pass of 7-11 s that dropped every
# socket of the process (bench/cluster.py); a minute's took 0.5-0.8 s
AT_MOST_S = 90.0
CHECK_S = 1.0
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


async def collect_when_quiet(
    quiet_for: Callable[[], float],
    *,
    every_s: float = FULL_PASS_EVERY_S,
    quiet_s: float = QUIET_S,
    at_most_s: float = AT_MOST_S,
    check_s: float = CHECK_S,
) -> None:
    """Run the full passes that ``take_over_full_collections`` took from the interpreter.

    A pass runs once ``every_s`` has gone by and nothing has reached the screens for ``quiet_s``
    (``quiet_for`` tells how long it has been), and in any case after ``at_most_s``.
    """
    last = time.monotonic()
    while True:
        await asyncio.sleep(check_s)
        since = time.monotonic() - last
        if since < every_s or (since < at_most_s and quiet_for() < quiet_s):
            continue
        started = time.perf_counter()
        found = gc.collect()
        last = time.monotonic()
        log.info(
            'full garbage collection: %d objects freed in %.0f ms',
            found,
            (time.perf_counter() - started) * 1000,
        )
