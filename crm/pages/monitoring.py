"""«Мониторинг» (/monitoring, supervisors and admins): the team live — totals on top, one row per operator,
the day's charts. Pushed, never polled: the process's ``DashboardHub`` computes the figures once per tick
for every open dashboard and moves a row the moment an operator's state changes. A supervisor sees the
groups they lead, an admin every group; from a row either puts an operator on a break or logs them out.
Rows are coloured by the thresholds the figures carry; «Пороги» (``components/dashboard_thresholds``) lets
an admin change them (a supervisor sees them read-only).
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from typing import Any

from nicegui import Client, ui

from crm.bootstrap import Services
from crm.domain import Role
from crm.domain import formatting as fmt
from crm.domain.actor import Actor
from crm.domain.dashboard import LEVEL_CLASSES, Thresholds, level
from crm.domain.formatting import OFFICE_TZ
from crm.domain.operator_states import BREAK_REASONS, STATE_COLORS, STATE_LABELS, reason_label
from crm.pages.components.dashboard_charts import DayCharts
from crm.pages.components.dashboard_thresholds import open_thresholds
from crm.pages.components.operator_state import elapsed_text
from crm.pages.dashboard_hub import DashboardHub
from crm.pages.layout import frame
from crm.pages.live import LiveHub
from crm.pages.off_loop import attempt, service
from crm.pages.session import page_actor
from crm.services.dashboard import DashboardFigures, GroupChoice, OperatorRow, team
from crm.services.operator_day import OperatorDay

log = logging.getLogger(__name__)

ALL = 0
NUMBER = 'minmax(3rem, 1fr)'  # a figure's column
LEVEL_CSS = """
.crm-level-1 { background: #fef9c3; }
.crm-level-2 { background: #fed7aa; }
.crm-level-3 { background: #fecaca; }
.crm-mon-row > div { padding: 2px 6px; }
"""
COLUMNS = (
    'Сотрудник', 'Статус', 'В статусе', 'На линии', 'Вх.', 'Исх.', 'Дозв.', 'Разговор ср.',
    'Постобр. ср.', 'SMS', 'E-mail', 'Обещания', 'Сумма', 'Собрано', 'Выполнено', '',
)  # fmt: skip


def register(services: Services, hub: LiveHub) -> None:
    dashboards = DashboardHub(services, hub)
    services.metrics.gauge(
        'crm_dashboard_viewers', '«Мониторинг» dashboards open in this process', lambda: dashboards.viewers
    )
    services.metrics.counter(
        'crm_dashboard_ticks_total', 'Dashboard figure reads (ticks) here', lambda: dashboards.ticks
    )

    @ui.page('/monitoring')
    async def monitoring_page() -> None:
        actor = page_actor(Role.SUPERVISOR, Role.ADMIN)
        if actor is None:
            return
        groups = await service(services.dashboard.groups, actor)
        with frame(services, hub, actor, 'Мониторинг', search=False) as workspace:
            ui.add_css(LEVEL_CSS)
            ui.label('Мониторинг').classes('text-xl font-semibold')
            view = Dashboard(services, dashboards, actor, groups)
        await workspace.start()
        view.attach(ui.context.client)


class Dashboard:
    """One open dashboard: it filters the shared figures by its groups and draws them (on the loop)."""

    def __init__(
        self, services: Services, hub: DashboardHub, actor: Actor, groups: list[GroupChoice]
    ) -> None:
        self.services = services
        self.hub = hub
        self.actor = actor
        self.client: Client | None = None
        self.groups = {g.id: g.name for g in groups}
        self.figures: DashboardFigures | None = None
        self.cells: dict[int, dict[str, Any]] = {}
        self.shown_ids: tuple[int, ...] = ()
        everything = 'Все группы' if actor.role == Role.ADMIN else 'Все мои группы'
        with ui.row().classes('items-center gap-4'):
            self.group = (
                ui.select(
                    {ALL: everything} | self.groups,
                    value=ALL,
                    label='Группа',
                    on_change=lambda: self.redraw(),
                )
                .classes('w-64')
                .mark('monitoring-group')
            )
            self.updated = ui.label('').classes('text-xs text-gray-500').mark('monitoring-updated')
            ui.button('Пороги', icon='tune', on_click=lambda: open_thresholds(services, actor)).props(
                'flat no-caps'
            ).mark('monitoring-thresholds').tooltip('Пороги времени в статусе: когда строка окрашивается')
        if actor.role != Role.ADMIN and not groups:
            ui.label('Вы не руководите ни одной группой: операторов для мониторинга нет').classes(
                'text-gray-600'
            )
        self.totals = ui.row().classes('gap-3 flex-wrap').mark('monitoring-totals')
        self.total_values: dict[str, ui.label] = {}
        self.table = ui.column().classes('w-full gap-0 bg-white rounded shadow-sm overflow-x-auto')
        self.charts = DayCharts()

    def attach(self, client: Client) -> None:
        self.client = client
        key = client.id
        self.hub.add(key, self.show)
        client.on_delete(lambda: self.hub.remove(key))

    # --- what it shows ----------------------------------------------------------------------------
    def visible(self, figures: DashboardFigures) -> list[OperatorRow]:
        """An admin sees everyone (or a group); a supervisor only the groups they lead."""
        chosen = self.group.value
        if chosen:
            return [r for r in figures.operators if r.group_id == chosen]
        if self.actor.role == Role.ADMIN:
            return list(figures.operators)
        return [r for r in figures.operators if r.group_id in self.groups]

    async def show(self, figures: DashboardFigures) -> None:
        """Pushed by the hub (a tick or a state change)."""
        if self.client is None or self.client.is_deleted:
            return
        with self.client:
            self.figures = figures
            self.redraw()

    def redraw(self) -> None:
        figures = self.figures
        if figures is None:
            return
        rows = self.visible(figures)
        now = self.services.clock()
        self.updated.set_text(f'Обновлено в {now.astimezone(OFFICE_TZ):%H:%M:%S}')
        self._totals(figures, rows)
        ids = tuple(r.user_id for r in rows)
        if ids != self.shown_ids:
            self._rebuild(rows)
        for row in rows:
            self._fill(row, now, figures.thresholds)
        self.charts.show(figures.hours)

    def _totals(self, figures: DashboardFigures, rows: list[OperatorRow]) -> None:
        """The cards on top: drawn once, then only their values change (a push sends just those)."""
        summed = team(rows)
        calls = figures.calls
        items = [
            *((STATE_LABELS[state], str(n), f'total-{state.value}') for state, n in summed.by_state),
            ('В очереди', str(figures.waiting), 'total-waiting'),
            ('Дольше всех ждёт', elapsed_text(figures.longest_wait_s), 'total-longest'),
            ('Уровень сервиса', _percent(calls.service_level), 'total-service-level'),
            ('Потерянные', _percent(calls.abandoned_percent), 'total-abandoned'),
            ('Ср. время обработки', _seconds(calls.handle_avg_s), 'total-aht'),
            ('Дозвоны (RPC)', str(summed.reached), 'total-rpc'),
            ('Обещания', f'{summed.promises} · {fmt.money(summed.promised)}', 'total-promises'),
            ('Собрано по обещаниям', fmt.money(summed.collected), 'total-collected'),
            ('Платежи сегодня', fmt.money(calls.payments), 'total-payments'),
            ('Отказы по 230-ФЗ', str(calls.refusals), 'total-refusals'),
        ]
        for label, value, marker in items:
            shown = self.total_values.get(marker)
            if shown is None:
                with self.totals, ui.card().classes('px-3 py-2 gap-0'):
                    ui.label(label).classes('text-xs text-gray-500')
                    shown = ui.label('').classes('text-lg font-semibold tabular-nums').mark(marker)
                self.total_values[marker] = shown
            shown.set_text(value)

    def _rebuild(self, rows: list[OperatorRow]) -> None:
        self.table.clear()
        self.cells.clear()
        self.shown_ids = tuple(r.user_id for r in rows)
        grid = f'grid-template-columns: 13rem 9rem 4rem 10rem repeat({len(COLUMNS) - 5}, {NUMBER}) 12rem'
        with self.table:
            with (
                ui.element('div')
                .classes('grid w-full crm-mon-row text-xs font-medium text-gray-600 border-b')
                .style(grid)
            ):
                for title in COLUMNS:
                    ui.label(title)
            if not rows:
                ui.label('Операторов нет').classes('p-3 text-gray-600')
            for row in rows:
                self._line(row, grid)

    def _line(self, row: OperatorRow, grid: str) -> None:
        cells: dict[str, Any] = {}
        line = ui.element('div').classes('grid w-full crm-mon-row text-sm items-center border-b').style(grid)
        line.mark(f'monitoring-row-{row.user_id}')
        with line:
            ui.link(row.name).classes('truncate cursor-pointer').mark(f'monitoring-day-{row.user_id}').on(
                'click', lambda u=row.user_id: self._day(u)
            ).tooltip('Контакты за сегодня')
            cells['state'] = (
                ui.label('')
                .classes('rounded px-2 text-white')
                .mark(f'monitoring-state-{row.user_id}')
                .props(f'data-testid=monitoring-state-{row.user_id}')
            )
            cells['time'] = ui.label('').classes('tabular-nums')
            cells['borrower'] = (
                ui.link('', '/').classes('truncate').mark(f'monitoring-borrower-{row.user_id}')
            )
            for key in ('in', 'out', 'reached', 'talk', 'wrap', 'sms', 'emails', 'promises', 'promised',
                        'collected', 'kept'):  # fmt: skip
                cells[key] = ui.label('').classes('tabular-nums')
            with ui.row().classes('gap-1 no-wrap whitespace-nowrap'):
                pause = ui.button('Перерыв').props('dense flat no-caps color=orange-9')
                with pause.mark(f'monitoring-break-{row.user_id}'), ui.menu():
                    for code, label in BREAK_REASONS.items():
                        ui.menu_item(label, on_click=lambda c=code, u=row.user_id: self._break(u, c)).mark(
                            f'monitoring-break-{row.user_id}-{code}'
                        )
                ui.button('Вывести из сети', on_click=lambda u=row.user_id: self._logout(u)).props(
                    'dense flat no-caps color=negative'
                ).mark(f'monitoring-logout-{row.user_id}')
        cells['line'] = line
        self.cells[row.user_id] = cells

    def _fill(self, row: OperatorRow, now: datetime, thresholds: Thresholds) -> None:
        cells = self.cells.get(row.user_id)
        if cells is None:
            return
        seconds = max(0, int((now - row.since).total_seconds())) if row.since else 0
        level_class = LEVEL_CLASSES[level(row.state, seconds, thresholds)]  # «Пороги», read with the figures
        if cells.get('shown') == (row, level_class):  # most rows, most pushes: nothing to send
            return
        cells['shown'] = (row, level_class)
        cells['state'].set_text(reason_label(row.state, row.reason))
        cells['state'].classes(replace=f'rounded px-2 text-white bg-{STATE_COLORS[row.state]}')
        # the browser counts the seconds (STATE_TIMER_JS): the cell is sent again only when the state
        # changes, not at every push — 100 rows × 20 viewers × every push would swamp the event loop
        state_key = f'{row.state}-{row.since.isoformat()}' if row.since is not None else ''
        if cells.get('state_key') != state_key:
            cells['state_key'] = state_key
            time = cells['time']
            time.set_text(elapsed_text(seconds) if row.since is not None else '—')
            if row.since is not None:
                time.props(f'data-state-elapsed={seconds} data-state-key="{state_key}"')
        line = cells['line']
        line.classes(remove=' '.join(c for c in LEVEL_CLASSES if c), add=level_class)
        borrower = cells['borrower']
        borrower.set_text(row.borrower_name or '')
        if row.borrower_id is not None:
            borrower.props(f'href=/borrower/{row.borrower_id}')
        values = {
            'in': str(row.calls_in),
            'out': str(row.calls_out),
            'reached': str(row.reached),
            'talk': _seconds(row.talk_avg_s),
            'wrap': _seconds(row.wrap_up_avg_s),
            'sms': str(row.sms),
            'emails': str(row.emails),
            'promises': str(row.promises),
            'promised': fmt.money(row.promised),
            'collected': fmt.money(row.collected),
            'kept': _percent(row.kept_percent),
        }
        for key, value in values.items():
            cells[key].set_text(value)

    async def _day(self, user_id: int) -> None:
        day = await attempt(self.services.operator_day.today, self.actor, user_id)
        if day is not None:
            operator_day_dialog(day)

    async def _break(self, user_id: int, reason: str) -> None:
        if await attempt(self.services.operator_states.force_break, self.actor, user_id, reason) is not None:
            ui.notify('Оператор переведён на перерыв', type='positive')

    async def _logout(self, user_id: int) -> None:
        if await attempt(self.services.operator_states.force_logout, self.actor, user_id) is not None:
            ui.notify('Оператор выведен из сети', type='positive')


def operator_day_dialog(day: OperatorDay) -> None:
    """An operator's contacts of today, newest first, each borrower a link to the card."""
    with ui.dialog() as dialog, ui.card().classes('w-[56rem] max-w-full'):
        ui.label(f'{day.operator_name}: контакты за {fmt.day(day.day)}').classes('text-lg font-semibold')
        if not day.contacts:
            ui.label('Сегодня контактов не было').classes('text-gray-600')
        with ui.column().classes('w-full gap-1 max-h-[60vh] overflow-auto').mark('operator-day'):
            for contact in day.contacts:
                with ui.row().classes('w-full items-baseline gap-3 text-sm border-b py-1 no-wrap'):
                    ui.label(f'{contact.at.astimezone(OFFICE_TZ):%H:%M}').classes('tabular-nums w-12')
                    ui.label(contact.channel_label).classes('w-44')
                    if contact.borrower_id is not None:
                        ui.link(contact.borrower_name or '—', f'/borrower/{contact.borrower_id}').classes(
                            'w-56'
                        )
                    else:
                        ui.label('—').classes('w-56')
                    ui.label(contact.result or '').classes('w-40')
                    ui.label(contact.comment or '').classes('flex-1 truncate')
        with ui.row().classes('w-full justify-end'):
            ui.button('Закрыть', on_click=dialog.close).props('flat')
    dialog.open()


def _seconds(value: int | None) -> str:
    return '—' if value is None else elapsed_text(value)


def _percent(value: Decimal | None) -> str:
    return '—' if value is None else fmt.percent(value)
