"""One operator's row of «Мониторинг» as a single element (``operator_line.js``).

A row drawn from labels, links and a menu was ~30 NiceGUI elements: a hundred operators on twenty open
dashboards made 60,000 elements in one process, and the collector's full passes over them stalled every
socket for seconds. One element per row keeps a dashboard near 250 elements, and a push sends only the
rows whose figures changed (``OperatorLine.show`` skips the rest).
"""

from __future__ import annotations

from collections.abc import Callable
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
TICKING = ('time', 'elapsed')  # counted by the browser (STATE_TIMER_JS)
ROW_CLASSES = 'crm-mon-line grid w-full crm-mon-row text-sm items-center border-b'


def line_data(row: OperatorRow, now: datetime, thresholds: Thresholds) -> tuple[dict[str, Any], str]:
    """What the browser draws for ``row`` at ``now``, and the row's colour class by the thresholds."""
    seconds = max(0, int((now - row.since).total_seconds())) if row.since else 0
    data = {
        'id': row.user_id,
        'name': row.name,
        'state': reason_label(row.state, row.reason),
        'color': STATE_COLORS[row.state],
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
    return data, LEVEL_CLASSES[level(row.state, seconds, thresholds)]


class OperatorLine(ui.element, component='operator_line.js'):
    """A row; ``on_day``/``on_break``/``on_logout`` get the operator's id (and the break's reason code)."""

    def __init__(
        self,
        user_id: int,
        on_day: Callable[[int], Any],
        on_break: Callable[[int, str], Any],
        on_logout: Callable[[int], Any],
    ) -> None:
        super().__init__()
        self.user_id = user_id
        self.shown: tuple[dict[str, Any], str] | None = None
        self._props['reasons'] = list(BREAK_REASONS.items())
        self.classes(ROW_CLASSES).style(GRID).mark(f'monitoring-row-{user_id}')
        self.on('day', lambda: on_day(user_id))
        self.on('pause', lambda e: on_break(user_id, str(e.args)))
        self.on('logout', lambda: on_logout(user_id))

    @property
    def row(self) -> dict[str, Any]:
        return self._props.get('row', {})

    def show(self, data: dict[str, Any], level_class: str) -> None:
        """Sends the row only when something but the ticking time changed (most rows, most pushes: nothing):
        the browser counts the seconds in a state itself."""
        shown = ({k: v for k, v in data.items() if k not in TICKING}, level_class)
        if self.shown == shown:
            return
        self.shown = shown
        self._props['row'] = data
        self.classes(remove=' '.join(c for c in LEVEL_CLASSES if c), add=level_class)
        self.update()


def seconds_text(value: int | None) -> str:
    return '—' if value is None else elapsed_text(value)


def percent_text(value: Decimal | None) -> str:
    return '—' if value is None else fmt.percent(value)
