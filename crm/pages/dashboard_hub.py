"""«Мониторинг»'s engine, one per process: the figures are computed once per tick, never per viewer.

While at least one dashboard is open here, a ticker reads ``DashboardService.figures`` every ``tick_s``
and hands the same frozen figures to every open dashboard. Between ticks an ``OperatorStateChanged``
(heard once per process through ``LiveHub.observe``) moves that operator's row in memory — no query —
and is pushed at once, unless a push went out less than ``PUSH_GAP_S`` ago: then together with whatever
else is heard until the gap is over. A busy floor changes forty states a second, and a push per change
kept every dashboard's process and browser redrawing for nothing the eye can follow. A
``QueueStatusChanged`` updates the calls waiting the same way. A tick that read the database before a
change it did not see keeps the newer state from memory (``since`` decides). The rows' browser form is
made once per change of a row for every dashboard (``Lines``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import replace
from typing import Any

from crm.bootstrap import Services
from crm.domain.notifications import Notification, OperatorStateChanged, QueueStatusChanged
from crm.pages.components.monitoring_board import Lines
from crm.pages.live import LiveHub
from crm.pages.off_loop import service
from crm.services.dashboard import DashboardFigures, OperatorRow, QueueBoard, snapshot

log = logging.getLogger(__name__)

Viewer = Callable[[DashboardFigures], Awaitable[None]]
PUSH_GAP_S = 0.25  # pushes of state changes are at least this far apart


class DashboardHub:
    def __init__(
        self,
        services: Services,
        live: LiveHub,
        *,
        tick_s: float | None = None,
        push_gap_s: float = PUSH_GAP_S,
    ) -> None:
        self._services = services
        self.tick_s = services.dashboard.tick_s if tick_s is None else tick_s  # CRM_DASHBOARD_TICK_S
        self.push_gap_s = push_gap_s
        self.lines = Lines()
        self._push_due: asyncio.Task[None] | None = None
        self._pushed_at = -PUSH_GAP_S  # loop time of the last push of changes
        self.board = QueueBoard()
        self.figures: DashboardFigures | None = None
        self._viewers: dict[str, Viewer] = {}
        self._changes: dict[int, OperatorStateChanged] = {}  # the latest heard per operator
        self._ticker: asyncio.Task[None] | None = None
        self.ticks = 0
        self._tasks: set[asyncio.Task[None]] = set()
        live.observe(self.on_notification)

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """A task on the running loop, kept until done (the loop holds tasks weakly)."""
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @property
    def viewers(self) -> int:
        return len(self._viewers)

    def add(self, key: str, viewer: Viewer) -> None:
        """A dashboard opened (on the loop): it gets the last figures now and every push after."""
        self._viewers[key] = viewer
        if self._ticker is None or self._ticker.done():
            self._ticker = self._spawn(self._run(), name='dashboard-ticker')
        elif self.figures is not None:
            self._spawn(self._push_one(viewer, self.figures), name='dashboard-first')

    def remove(self, key: str) -> None:
        self._viewers.pop(key, None)

    async def _run(self) -> None:
        while self._viewers:
            await self.tick()
            await asyncio.sleep(self.tick_s)
        self._ticker = None

    async def tick(self) -> None:
        """Read the figures once and push them to every dashboard of this process."""
        try:
            figures = await service(self._services.dashboard.figures, self.board.snapshots())
        except Exception:
            log.exception('dashboard figures failed; the next tick tries again')
            return
        self.ticks += 1
        self.figures = self._with_changes(figures)
        await self._push()

    def on_notification(self, notification: Notification) -> None:
        """On the loop, once per process: a state change moves its row now; a queue's status its totals."""
        match notification:
            case OperatorStateChanged():
                known = self._changes.get(notification.user_id)
                if known is None or known.since <= notification.since:
                    self._changes[notification.user_id] = notification
                self._push_soon()
            case QueueStatusChanged():
                if self.board.put(snapshot(notification)):
                    self._push_soon()

    def _push_soon(self) -> None:
        """A push now, or at the end of the gap after the last one for whatever is heard until then."""
        if self.figures is None or not self._viewers:
            return
        if self._push_due is None or self._push_due.done():
            wait = self._pushed_at + self.push_gap_s - asyncio.get_running_loop().time()
            self._push_due = self._spawn(self._push_changes(max(0.0, wait)), name='dashboard-changes')

    async def _push_changes(self, wait_s: float) -> None:
        await asyncio.sleep(wait_s)
        self._pushed_at = asyncio.get_running_loop().time()
        if self.figures is not None:
            self.figures = replace(self._with_changes(self.figures), queues=self.board.snapshots())
            await self._push()

    def _with_changes(self, figures: DashboardFigures) -> DashboardFigures:
        rows = tuple(_moved(row, self._changes.get(row.user_id)) for row in figures.operators)
        return replace(figures, operators=rows)

    async def _push(self) -> None:
        figures = self.figures
        if figures is None:
            return
        for viewer in list(self._viewers.values()):
            await self._push_one(viewer, figures)

    @staticmethod
    async def _push_one(viewer: Viewer, figures: DashboardFigures) -> None:
        try:
            await viewer(figures)
        except Exception:
            log.exception('a dashboard could not be updated')


def _moved(row: OperatorRow, change: OperatorStateChanged | None) -> OperatorRow:
    """The row with a state heard after (or at) what the tick read; the borrower stays on the same call."""
    if change is None or (row.since is not None and change.since < row.since):
        return row
    if change.state == row.state and change.since == row.since and change.reason == row.reason:
        return row
    same_call = change.call_id is not None and change.call_id == row.call_id
    return replace(
        row,
        state=change.state,
        reason=change.reason,
        since=change.since,
        call_id=change.call_id,
        borrower_id=row.borrower_id if same_call else None,
        borrower_name=row.borrower_name if same_call else None,
    )
