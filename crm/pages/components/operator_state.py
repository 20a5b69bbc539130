"""The operator's state in the header: a coloured chip with the time in it, and a menu to set
«Готов» or «Перерыв → причина». It follows the calls live through ``OperatorStateChanged``, and the tab
says it is open every ``PRESENCE_S`` seconds (closing the last tab makes the operator Не в сети later).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Protocol

from nicegui import ui

from crm.bootstrap import Services
from crm.domain import Role
from crm.domain.actor import Actor
from crm.domain.notifications import OperatorStateChanged
from crm.domain.operator_states import BREAK_REASONS, STATE_COLORS, OperatorState, reason_label
from crm.pages.off_loop import attempt, service
from crm.services.operator_states import PRESENCE_S, OperatorStatus

log = logging.getLogger(__name__)

# the browser counts the seconds in a state: a server push per second per tab would not scale
STATE_TIMER_JS = """
<script>
setInterval(() => {
  for (const el of document.querySelectorAll('[data-state-elapsed]')) {
    if (el.dataset.stateShown !== el.dataset.stateKey) {
      el.dataset.stateShown = el.dataset.stateKey;
      el.dataset.stateBase = Date.now() - 1000 * Number(el.dataset.stateElapsed);
    }
    const s = Math.max(0, Math.floor((Date.now() - Number(el.dataset.stateBase)) / 1000));
    const m = Math.floor(s / 60), h = Math.floor(m / 60);
    const mm = h ? h + ':' + String(m % 60).padStart(2, '0') : String(m);
    el.textContent = mm + ':' + String(s % 60).padStart(2, '0');
  }
}, 1000);
</script>
"""


def elapsed_text(seconds: int) -> str:
    minutes, hours = seconds // 60, seconds // 3600
    head = f'{hours}:{minutes % 60:02d}' if hours else str(minutes)
    return f'{head}:{seconds % 60:02d}'


class StateChip:
    """Drawn by the frame for operators; ``live`` (the tab's StateLive) is set when the workspace starts."""

    def __init__(self) -> None:
        self.live: StateLive | None = None
        self.button = (
            ui.button().props('rounded unelevated dense no-caps color=grey-6').mark('operator-state')
        )
        with self.button:
            self.label = (
                ui.label('Не в сети').classes('text-sm font-medium px-1').mark('operator-state-label')
            )
            self.time = ui.label('').classes('text-xs tabular-nums opacity-90 pr-1')
            with ui.menu():
                ui.menu_item('Готов', on_click=lambda: self._choose(None)).mark('state-ready')
                ui.separator()
                for code, label in BREAK_REASONS.items():
                    ui.menu_item(f'Перерыв → {label}', on_click=lambda c=code: self._choose(c)).mark(
                        f'state-break-{code}'
                    )
        self.button.tooltip('Ваш статус: выберите «Готов» или перерыв')

    def show(self, state: OperatorState, reason: str | None, since: datetime, now: datetime) -> None:
        seconds = max(0, int((now - since).total_seconds()))
        self.label.set_text(reason_label(state, reason))
        self.time.set_text(elapsed_text(seconds))
        self.time.props(f'data-state-elapsed={seconds} data-state-key="{state}-{since.isoformat()}"')
        self.button.props(f'color={STATE_COLORS[state]}')

    async def _choose(self, reason: str | None) -> None:
        if self.live is not None:
            await self.live.choose(reason)


class StateHost(Protocol):
    services: Services
    actor: Actor


class StateLive:
    """A tab's operator-state side: the chip, the presence timer, the actor's own state changes."""

    def __init__(self, host: StateHost) -> None:
        self.host = host
        self.chip: StateChip | None = None  # set by the frame for operators
        self._changes = 0

    async def start(self) -> None:
        if self.chip is None or self.host.actor.role != Role.OPERATOR:
            return
        self.chip.live = self
        await self._seen()  # a tab opened: Не в сети becomes Готов
        seen = self._changes
        status = await service(self.host.services.operator_states.current, self.host.actor)
        if self._changes == seen:  # a notification newer than this read already drew the chip
            self._show_status(status)
        ui.timer(PRESENCE_S, self._seen)

    async def _seen(self) -> None:
        try:
            await service(self.host.services.operator_states.seen, self.host.actor)
        except Exception as error:  # the next beat tries again; a lost one costs nothing
            log.warning('presence of %s not recorded: %s', self.host.actor.login, error)

    async def choose(self, reason: str | None) -> None:
        """«Готов» (``reason`` None) or «Перерыв → reason» from the chip's menu."""
        states = self.host.services.operator_states
        if reason is None:
            status = await attempt(states.set_ready, self.host.actor)
        else:
            status = await attempt(states.set_break, self.host.actor, reason)
        if status is not None:
            self._show_status(status)

    async def on_change(self, change: OperatorStateChanged) -> None:
        """On the event loop: every tab hears every operator; the chip takes its actor's."""
        if self.chip is None or change.user_id != self.host.actor.id:
            return
        self._changes += 1
        self.chip.show(change.state, change.reason, change.since, self.host.services.clock())
        if change.forced_by:
            ui.notify(
                f'{change.forced_by} перевёл(а) вас в статус «{reason_label(change.state, change.reason)}»',
                type='warning',
                close_button='OK',
                timeout=0,
            )

    def _show_status(self, status: OperatorStatus) -> None:
        if self.chip is not None:
            self.chip.show(status.state, status.reason, status.since, self.host.services.clock())
