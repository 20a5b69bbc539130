"""One redraw at a time: calls during a run fold into one more run, which starts after the last call."""

from __future__ import annotations

import asyncio

from crm.pages.components.coalesce import Coalesced


async def test_calls_during_a_run_fold_into_one_more_run_that_reads_the_latest() -> None:
    state = {'version': 0}  # what a reload would read
    read: list[int] = []
    gate = asyncio.Event()

    async def reload() -> None:
        seen = state['version']
        await gate.wait()  # a slow read
        read.append(seen)

    refresh = Coalesced(reload)
    first = asyncio.create_task(refresh())
    await asyncio.sleep(0)
    for version in (1, 2, 3):  # three changes while the first read is on its way
        state['version'] = version
        await refresh()  # folded: returns at once
    gate.set()
    await first
    assert read == [0, 3]  # not one run per change, and never an older read after a newer one
