"""«Мониторинг»'s live part — the totals and a row per operator — as one element (``monitoring_board.js``).

NiceGUI redraws a page from its root for every element update: with a dashboard pushed a few times a
second that cost a browser ~15 ms a push even with nothing on screen, and twenty dashboards on a 2-core
machine could not keep up. So the board is changed only through ``patch`` (a ``run_method`` message that
touches this component alone), and a push sends only the rows whose figures changed — the time in a
state ticks in the browser (STATE_TIMER_JS), so most rows, most pushes, send nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from nicegui import ui

from crm.domain import formatting as fmt
from crm.domain.dashboard import LEVEL_CLASSES, Thresholds, level
from crm.domain.operator_states import BREAK_REASONS, STATE_COLORS, reason_label
from crm.pages.components.operator_state import elapsed_text
from crm.services.dashboard import OperatorRow

FIGURES = ('Вх.', 'Исх.', 'Дозв.', 'Разговор ср.', 'Постобр. ср.', 'SMS', 'E-mail', 'Обещания', 'Сумма',
           'Собрано', 'Выполнено')  # fmt: skip
COLUMNS = ('Сотрудник', 'Статус', 'В статусе', 'На линии', *FIGURES, '')
GRID = f'grid-template-columns: 13rem 9rem 4rem 10rem repeat({len(FIGURES)}, minmax(3rem, 1fr)) 12rem'

Total = tuple[str, str, str]  # label, value, marker (data-testid)


def row_figures(row: OperatorRow) -> dict[str, Any]:
    """What the browser draws for ``row`` that does not change with time (the time and colour do)."""
    return {
        'id': row.user_id,
        'name': row.name,
        'state': reason_label(row.state, row.reason),
        'color': STATE_COLORS[row.state],
        'key': f'{row.state}-{row.since.isoformat()}' if row.since is not None else None,
        'borrower': row.borrower_name or '',
        'href': f'/borrower/{row.borrower_id}' if row.borrower_id is not None else None,
        'figures': [
            str(row.calls_in),
            str(row.calls_out),
            str(row.reached),
            seconds_text(row.talk_avg_s),
            seconds_text(row.wrap_up_avg_s),
            str(row.sms),
            str(row.emails),
            str(row.promises),
            fmt.money(row.promised),
            fmt.money(row.collected),
            percent_text(row.kept_percent),
        ],
    }


@dataclass(frozen=True, slots=True)
class Line:
    """An operator's row at a moment: ``figures`` (shared, made once per change of the row), its colour
    level by the thresholds, and the seconds in the state (None: no state time)."""

    figures: dict[str, Any]
    level: int
    seconds: int | None

    def data(self) -> dict[str, Any]:
        """The row as the browser takes it."""
        return self.figures | {
            'level': LEVEL_CLASSES[self.level],
            'time': elapsed_text(self.seconds) if self.seconds is not None else '—',
            'elapsed': self.seconds,
        }


class Lines:
    """Operators' rows for every dashboard of a process: a row's figures are formatted once per change of
    the row, not once per dashboard and push (with forty state changes a second that was most of what the
    dashboards cost the process), and a dashboard compares them by identity."""

    def __init__(self) -> None:
        self._made: dict[int, tuple[OperatorRow, dict[str, Any]]] = {}

    def line(self, row: OperatorRow, now: datetime, thresholds: Thresholds) -> Line:
        made = self._made.get(row.user_id)
        if made is None or made[0] != row:
            made = self._made[row.user_id] = (row, row_figures(row))
        seconds = max(0, int((now - row.since).total_seconds())) if row.since is not None else None
        return Line(made[1], level(row.state, seconds or 0, thresholds), seconds)


class MonitoringBoard(ui.element, component='monitoring_board.js'):
    """``on_day`` / ``on_logout`` get an operator's id, ``on_break`` the id and the reason's code."""

    def __init__(
        self,
        on_day: Callable[[int], Any],
        on_break: Callable[[int, str], Any],
        on_logout: Callable[[int], Any],
    ) -> None:
        super().__init__()
        self._props.update(
            reasons=list(BREAK_REASONS.items()),
            grid=GRID,
            columns=list(COLUMNS),
            lines=[],
            totals=[],
            updated='',
        )
        self.classes('w-full').mark('monitoring-board')
        self.rows: dict[int, dict[str, Any]] = {}  # what the browser was last sent, by operator
        self._shown: dict[int, Line] = {}  # the lines last shown (sent or not: only the time moved)
        self.order: tuple[int, ...] = ()
        self.totals: dict[str, str] = {}  # marker → value
        self.updated = ''
        self._sent_totals: list[Total] = []
        self.on('day', lambda e: on_day(int(e.args)))
        self.on('pause', lambda e: on_break(int(e.args[0]), str(e.args[1])))
        self.on('logout', lambda e: on_logout(int(e.args)))

    def show(self, lines: Sequence[Line], totals: Sequence[Total], updated: str) -> None:
        """Send what changed since the last show (nothing at all when nothing did)."""
        delta: dict[str, Any] = {}
        order = tuple(line.figures['id'] for line in lines)
        if order != self.order:
            self.rows = {line.figures['id']: line.data() for line in lines}
            delta['lines'] = list(self.rows.values())
        else:
            changed = [line for line in lines if _moved(self._shown.get(line.figures['id']), line)]
            if changed:
                delta['rows'] = [line.data() for line in changed]
                self.rows.update((row['id'], row) for row in delta['rows'])
        self.order = order
        self._shown = {line.figures['id']: line for line in lines}
        if list(totals) != self._sent_totals:
            self._sent_totals = list(totals)
            self.totals = {marker: value for _, value, marker in totals}
            delta['totals'] = [list(t) for t in totals]
        if updated != self.updated:
            self.updated = delta['updated'] = updated
        if delta:
            self.run_method('patch', delta)


def _moved(shown: Line | None, line: Line) -> bool:
    """Whether the browser's row needs ``line`` (the time in a state ticks there by itself)."""
    return shown is None or shown.figures is not line.figures or shown.level != line.level


def seconds_text(value: int | None) -> str:
    return '—' if value is None else elapsed_text(value)


def percent_text(value: Decimal | None) -> str:
    return '—' if value is None else fmt.percent(value)
