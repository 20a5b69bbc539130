"""«Портфель» (/admin/portfolio, administrators): a segment of borrowers (days past due, overdue sum,
city, current operator) spread over operators evenly or by load; a leaving operator's borrowers handed
over to others. The operators' portfolios below; every operation is one audit entry."""

from __future__ import annotations

from nicegui import ui

from crm.bootstrap import Services
from crm.domain import Role
from crm.domain.actor import Actor
from crm.domain.errors import ServiceError
from crm.domain.text import plural
from crm.pages.layout import admin_frame
from crm.pages.live import LiveHub
from crm.pages.off_loop import attempt, service
from crm.pages.route import page
from crm.pages.session import page_actor
from crm.services.portfolios import MODE_LABELS, UNASSIGNED, Mode, OperatorLoad, PortfolioResult
from crm.services.segments import Segment, parse_money

ANY = -1  # «Любой» current operator


def register(services: Services, hub: LiveHub) -> None:
    @page('/admin/portfolio')
    async def portfolio_page() -> None:
        actor = page_actor(Role.ADMIN)
        if actor is None:
            return
        cities = await service(services.portfolios.cities, actor)
        about = (
            'Распределите сегмент заёмщиков между операторами поровну или по нагрузке (меньше всего '
            'заёмщиков с просрочкой — первым) или передайте портфель уходящего оператора. Каждое действие '
            'записывается в журнал действий.'
        )
        with admin_frame(services, hub, actor, 'Портфель', about):
            PortfolioForm(services, actor, cities)


class PortfolioForm:
    def __init__(self, services: Services, actor: Actor, cities: list[str]) -> None:
        self._services, self._actor = services, actor
        with ui.card().classes('w-full max-w-5xl'):
            ui.label('Сегмент').classes('text-lg font-medium')
            with ui.row().classes('w-full items-start gap-4'):
                self.dpd_min = ui.number('Дней просрочки от', min=0, precision=0).props('outlined')
                self.dpd_max = ui.number('до', min=0, precision=0).props('outlined').classes('w-28')
                self.overdue_min = ui.input('Сумма просрочки от, ₽').props('outlined').classes('w-52')
                self.overdue_max = ui.input('до, ₽').props('outlined').classes('w-32')
            with ui.row().classes('w-full items-start gap-4'):
                self.cities = ui.select(cities, label='Город', multiple=True, with_input=True, clearable=True)
                self.cities.props('outlined use-chips').classes('w-72')
                self.owner = ui.select({ANY: 'Любой'}, value=ANY, label='Текущий оператор')
                self.owner.props('outlined').classes('w-72')
                ui.button('Посчитать', icon='calculate', on_click=self.count).props('outline').mark(
                    'portfolio-count'
                )
            self.counted = ui.label('').classes('text-base')
        with ui.card().classes('w-full max-w-5xl'):
            ui.label('Распределить сегмент').classes('text-lg font-medium')
            with ui.row().classes('w-full items-center gap-4'):
                self.targets = ui.select({}, label='Операторы', multiple=True, clearable=True)
                self.targets.props('outlined use-chips').classes('w-96')
                self.mode = ui.radio(
                    {m.value: label for m, label in MODE_LABELS.items()}, value=Mode.EVEN.value
                )
                self.mode.props('inline')
                ui.button('Распределить', icon='call_split', on_click=self.distribute).mark(
                    'portfolio-distribute'
                )
        with ui.card().classes('w-full max-w-5xl'):
            ui.label('Передать портфель уходящего оператора').classes('text-lg font-medium')
            with ui.row().classes('w-full items-center gap-4'):
                self.leaving = ui.select({}, label='Уходящий оператор').props('outlined').classes('w-72')
                self.heirs = ui.select({}, label='Кому (поровну)', multiple=True, clearable=True)
                self.heirs.props('outlined use-chips').classes('w-96')
                ui.button('Передать портфель', icon='move_up', on_click=self.hand_over).mark(
                    'portfolio-hand-over'
                )
        with ui.card().classes('w-full max-w-5xl'):
            ui.label('Портфели операторов').classes('text-lg font-medium')
            self.table = ui.table(
                columns=[
                    {'name': 'name', 'label': 'Оператор', 'field': 'name', 'align': 'left'},
                    {'name': 'assigned', 'label': 'Заёмщиков', 'field': 'assigned'},
                    {'name': 'overdue', 'label': 'С просрочкой', 'field': 'overdue'},
                ],
                rows=[],
                row_key='id',
            ).classes('w-full')
        ui.timer(0, self.load, once=True)

    async def load(self) -> None:
        rows: list[OperatorLoad] = await service(self._services.portfolios.operators, self._actor)
        active = {row.id: row.full_name for row in rows if row.active}
        everyone = {row.id: row.full_name + ('' if row.active else ' (заблокирован)') for row in rows}
        self.owner.set_options({ANY: 'Любой', UNASSIGNED: 'Не назначен'} | everyone, value=self.owner.value)
        self.targets.set_options(active, value=[v for v in self.targets.value or [] if v in active])
        self.heirs.set_options(active, value=[v for v in self.heirs.value or [] if v in active])
        self.leaving.set_options(
            everyone, value=self.leaving.value if self.leaving.value in everyone else None
        )
        self.table.rows = [
            {'id': row.id, 'name': everyone[row.id], 'assigned': row.assigned, 'overdue': row.overdue}
            for row in rows
        ]
        self.table.update()

    def _segment(self) -> Segment | None:
        try:
            return Segment(
                dpd_min=_whole(self.dpd_min.value),
                dpd_max=_whole(self.dpd_max.value),
                overdue_min=parse_money(self.overdue_min.value, 'Сумма просрочки от'),
                overdue_max=parse_money(self.overdue_max.value, 'Сумма просрочки до'),
                cities=tuple(self.cities.value or ()),
            ).checked()
        except ServiceError as error:
            ui.notify(error.message, type='warning')
            return None

    def _owner(self) -> int | None:
        return None if self.owner.value == ANY else int(self.owner.value)

    async def count(self) -> None:
        segment = self._segment()
        if segment is None:
            return
        n = await attempt(self._services.portfolios.count, self._actor, segment, self._owner())
        if n is not None:
            self.counted.set_text(f'В сегменте {n} {plural(n, "заёмщик", "заёмщика", "заёмщиков")}')

    async def distribute(self) -> None:
        segment = self._segment()
        if segment is None:
            return
        result = await attempt(
            self._services.portfolios.distribute,
            self._actor,
            segment,
            list(self.targets.value or ()),
            Mode(self.mode.value),
            owner=self._owner(),
        )
        await self._done(result)

    async def hand_over(self) -> None:
        if self.leaving.value is None:
            ui.notify('Выберите уходящего оператора', type='warning')
            return
        result = await attempt(
            self._services.portfolios.hand_over,
            self._actor,
            int(self.leaving.value),
            list(self.heirs.value or ()),
        )
        await self._done(result)

    async def _done(self, result: PortfolioResult | None) -> None:
        if result is None:
            return
        ui.notify(f'Передано заёмщиков: {result.moved} из {result.selected}', type='positive')
        await self.load()


def _whole(value: float | None) -> int | None:
    return None if value is None else int(value)
