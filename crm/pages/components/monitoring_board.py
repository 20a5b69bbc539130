"""«Мониторинг»'s live part — the totals and a row per operator — as one element (``monitoring_board.js``).

NiceGUI redraws a page from its root for every element update: with a dashboard pushed a few times a
second that cost a browser ~15 ms a push even with nothing on screen, and twenty dashboards on a 2-core
machine could not keep up. So the board is changed only through ``patch`` (a ``run_method`` message that
touches this component alone), and a push sends only the rows whose figures changed — the time in a
state ticks in the browser (STATE_TIMER_JS), so most rows, most pushes, send nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
TICKING = ('time', 'elapsed')  # counted by the browser: a change of these alone is not sent

Total = tuple[str, str, str]  # label, value, marker (data-testid)


def line_data(row: OperatorRow, now: datetime, thresholds: Thresholds) -> dict[str, Any]:
    """What the browser draws for ``row`` at ``now``, its colour class by the thresholds included."""
    seconds = max(0, int((now - row.since).total_seconds())) if row.since else 0
    return {
        'id': row.user_id,
        'name': row.name,
        'state': reason_label(row.state, row.reason),
        'color': STATE_COLORS[row.state],
        'level': LEVEL_CLASSES[level(row.state, seconds, thresholds)],
        'time': elapsed_text(seconds) if row.since is not None else '—',
        'elapsed': seconds if row.since is not None else None,
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
        self.order: tuple[int, ...] = ()
        self.totals: dict[str, str] = {}  # marker → value
        self.updated = ''
        self._sent_totals: list[Total] = []
        self.on('day', lambda e: on_day(int(e.args)))
        self.on('pause', lambda e: on_break(int(e.args[0]), str(e.args[1])))
        self.on('logout', lambda e: on_logout(int(e.args)))

    def show(self, lines: Sequence[dict[str, Any]], totals: Sequence[Total], updated: str) -> None:
        """Send what changed since the last show (nothing at all when nothing did)."""
        delta: dict[str, Any] = {}
        order = tuple(line['id'] for line in lines)
        if order != self.order:
            delta['lines'] = list(lines)
        else:
            changed = [line for line in lines if _moved(self.rows.get(line['id']), line)]
            if changed:
                delta['rows'] = changed
        self.order = order
        if 'lines' in delta:
            self.rows = {line['id']: line for line in lines}
        for line in delta.get('rows', ()):
            self.rows[line['id']] = line
        if list(totals) != self._sent_totals:
            self._sent_totals = list(totals)
            self.totals = {marker: value for _, value, marker in totals}
            delta['totals'] = [list(t) for t in totals]
        if updated != self.updated:
            self.updated = delta['updated'] = updated
        if delta:
            self.run_method('patch', delta)


def _moved(shown: dict[str, Any] | None, line: dict[str, Any]) -> bool:
    if shown is None:
        return True
    return any(shown.get(key) != value for key, value in line.items() if key not in TICKING)


def seconds_text(value: int | None) -> str:
    return '—' if value is None else elapsed_text(value)


def percent_text(value: Decimal | None) -> str:
    return '—' if value is None else fmt.percent(value)
