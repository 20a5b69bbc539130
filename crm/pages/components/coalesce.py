"""One redraw at a time: a burst of notifications makes at most one more run, not one per notification."""

from __future__ import annotations

from collections.abc import Awaitable, Callable


class Coalesced:
    """Calls ``run`` (an async reload and redraw); a call while it runs is folded into one more run."""

    def __init__(self, run: Callable[[], Awaitable[None]]) -> None:
        self._run = run
        self._busy = False
        self._again = False

    async def __call__(self) -> None:
        if self._busy:
            self._again = True
            return
        self._busy = True
        try:
            while True:
                self._again = False
                await self._run()
                if not self._again:
                    return
        finally:
            self._busy = False
