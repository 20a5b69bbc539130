"""«Мониторинг» (/monitoring, supervisors and admins): the team live — totals on top, one row per operator,
the day's charts. Pushed, never polled: the process's ``DashboardHub`` computes the figures once per tick
for every open dashboard and moves a row the moment an operator's state changes. A supervisor sees the
groups they lead, an admin every group; from a row either puts an operator on a break or logs them out.
Rows are coloured by the thresholds the figures carry; «Пороги» (``components/dashboard_thresholds``) lets
an admin change them (a supervisor sees them read-only).
"""

from __future__ import annotations

import logging

from nicegui import Client, ui

from crm.bootstrap import Services
from crm.domain import Role
from crm.domain import formatting as fmt
from crm.domain.actor import Actor
from crm.domain.formatting import OFFICE_TZ
from crm.domain.operator_states import STATE_LABELS
from crm.pages.components.dashboard_charts import DayCharts
from crm.pages.components.dashboard_thresholds import open_thresholds
from crm.pages.components.monitoring_board import (
    MonitoringBoard,
    Total,
    percent_text,
    seconds_text,
)
from crm.pages.components.operator_state import elapsed_text
from crm.pages.dashboard_hub import DashboardHub
from crm.pages.layout import frame
from crm.pages.live import LiveHub
from crm.pages.off_loop import attempt, service
from crm.pages.route import page
from crm.pages.session import page_actor
from crm.services.dashboard import DashboardFigures, GroupChoice, OperatorRow, team
from crm.services.operator_day import OperatorDay

log = logging.getLogger(__name__)

ALL = 0
LEVEL_CSS = """
.crm-level-1 { background: #fef9c3; }
.crm-level-2 { background: #fed7aa; }
.crm-level-3 { background: #fecaca; }
.crm-mon-row > * { padding: 2px 6px; }
.crm-mon-line { content-visibility: auto; contain-intrinsic-size: auto 34px; }
.crm-mon-action { padding: 2px 6px; border-radius: 4px; font-size: 0.8rem; font-weight: 500; }
.crm-mon-action:hover { background: rgba(0, 0, 0, 0.06); }
.crm-mon-action:focus-visible { outline: 2px solid currentColor; }
"""


def register(services: Services, hub: LiveHub) -> None:
    dashboards = DashboardHub(services, hub)
    services.metrics.gauge(
        'crm_dashboard_viewers', '«Мониторинг» dashboards open in this process', lambda: dashboards.viewers
    )
    services.metrics.counter(
        'crm_dashboard_ticks_total', 'Dashboard figure reads (ticks) here', lambda: dashboards.ticks
    )

    @page('/monitoring')
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
            ui.button('Пороги', icon='tune', on_click=lambda: open_thresholds(services, actor)).props(
                'flat no-caps'
            ).mark('monitoring-thresholds').tooltip('Пороги времени в статусе: когда строка окрашивается')
        if actor.role != Role.ADMIN and not groups:
            ui.label('Вы не руководите ни одной группой: операторов для мониторинга нет').classes(
                'text-gray-600'
            )
        self.board = MonitoringBoard(self._day, self._break, self._logout)
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
        self.board.show(
            [self.hub.lines.line(row, now, figures.thresholds) for row in rows],
            _totals(figures, rows),
            f'Обновлено в {now.astimezone(OFFICE_TZ):%H:%M:%S}',
        )
        self.charts.show(figures.hours, now)

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


def _totals(figures: DashboardFigures, rows: list[OperatorRow]) -> list[Total]:
    """The cards on top, for the operators shown."""
    summed = team(rows)
    calls = figures.calls
    return [
        *((STATE_LABELS[state], str(n), f'total-{state.value}') for state, n in summed.by_state),
        ('В очереди', str(figures.waiting), 'total-waiting'),
        ('Дольше всех ждёт', elapsed_text(figures.longest_wait_s), 'total-longest'),
        ('Уровень сервиса', percent_text(calls.service_level), 'total-service-level'),
        ('Потерянные', percent_text(calls.abandoned_percent), 'total-abandoned'),
        ('Ср. время обработки', seconds_text(calls.handle_avg_s), 'total-aht'),
        ('Дозвоны (RPC)', str(summed.reached), 'total-rpc'),
        ('Обещания', f'{summed.promises} · {fmt.money(summed.promised)}', 'total-promises'),
        ('Собрано по обещаниям', fmt.money(summed.collected), 'total-collected'),
        ('Платежи сегодня', fmt.money(calls.payments), 'total-payments'),
        ('Отказы по 230-ФЗ', str(calls.refusals), 'total-refusals'),
    ]


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
