"""«Журнал действий» (administrators): who did what to whom, when and from where.

Filters by user, borrower (PIN or number), action (or a group of them) and period; the table is paged on
the server; «Экспорт CSV» downloads what the filters select (itself an audited act).
"""

from __future__ import annotations

from typing import Any

from nicegui import ui

from crm.bootstrap import Services
from crm.domain import Role
from crm.domain import formatting as fmt
from crm.domain.actor import Actor
from crm.domain.audit_actions import action_choices
from crm.pages.components.dates import DateInput
from crm.pages.components.paging import page_number
from crm.pages.layout import admin_frame
from crm.pages.live import LiveHub
from crm.pages.off_loop import attempt
from crm.pages.route import page
from crm.pages.session import page_actor
from crm.services.audit_views import AuditFilters, AuditPage

COLUMNS: list[dict[str, Any]] = [
    {'name': 'at', 'label': 'Когда', 'field': 'at', 'align': 'left'},
    {'name': 'user', 'label': 'Пользователь', 'field': 'user', 'align': 'left'},
    {'name': 'action', 'label': 'Действие', 'field': 'action', 'align': 'left'},
    {'name': 'borrower', 'label': 'Заёмщик', 'field': 'borrower', 'align': 'left'},
    {'name': 'details', 'label': 'Подробности', 'field': 'details', 'align': 'left'},
    {'name': 'address', 'label': 'Откуда', 'field': 'address', 'align': 'left'},
]
BORROWER_CELL = (
    '<q-td :props="props"><a v-if="props.row.borrower_id" :href="\'/borrower/\' + props.row.borrower_id" '
    'class="text-primary">{{ props.value }}</a><span v-else class="text-grey-6">—</span></q-td>'
)
PER_PAGE = 50
ABOUT = (
    'Кто, что, с чьими данными, когда и откуда сделал: просмотры карточек, входы, запросы в БКИ, '
    'выгрузки и изменения. Журнал только для чтения.'
)


def table_rows(page: AuditPage) -> list[dict[str, Any]]:
    return [
        {
            'id': row.id,
            'at': fmt.moment(row.at),
            'user': row.user_name or '—',
            'action': row.action_label,
            'borrower_id': row.borrower_id,
            'borrower': f'{row.borrower_name} · {row.borrower_pin}' if row.borrower_name else '',
            'details': row.details,
            'address': row.address or '—',
        }
        for row in page.rows
    ]


def register(services: Services, hub: LiveHub) -> None:
    @page('/admin/audit')
    async def audit_page() -> None:
        actor = page_actor(Role.ADMIN)
        if actor is None:
            return
        users = await attempt(services.audit_views.users, actor)
        with admin_frame(services, hub, actor, 'Журнал действий', ABOUT) as workspace:
            view = AuditView(services, actor, {u.id: u.name for u in users or ()})
        await view.load()
        await workspace.start()


class AuditView:
    """One tab's log: the filters, the total and the table paged on the server."""

    def __init__(self, services: Services, actor: Actor, users: dict[int, str]) -> None:
        self.services = services
        self.actor = actor
        self.filters = AuditFilters()
        self.page = 1
        self.per_page = PER_PAGE
        self._loads = 0  # loads begun: only the latest one shows its page
        with ui.row().classes('items-end gap-4'):
            self.user = ui.select(
                {None: 'Все пользователи'} | users, value=None, label='Пользователь', on_change=self.on_filter
            )
            self.user.props('outlined dense use-input input-debounce=0').classes('w-56').mark('audit-user')
            self.borrower = ui.input('Заёмщик (PIN)').props('outlined dense clearable').classes('w-44')
            self.borrower.mark('audit-borrower').on('keydown.enter', self.on_filter).on(
                'blur', self.on_filter
            )
            self.action = ui.select(
                {None: 'Все действия'} | action_choices(),
                value=None,
                label='Действие',
                on_change=self.on_filter,
            )
            self.action.props('outlined dense').classes('w-64').mark('audit-action')
            self.date_from = DateInput('С', on_change=self.on_filter).props('outlined dense').classes('w-44')
            self.date_to = DateInput('По', on_change=self.on_filter).props('outlined dense').classes('w-44')
            ui.button('Экспорт CSV', icon='download', on_click=self.export).props('no-caps outline')
        self.total = ui.label('').classes('text-sm text-gray-600').mark('audit-total')
        self.table = ui.table(columns=COLUMNS, rows=[], row_key='id', pagination=PER_PAGE).classes('w-full')
        self.table.mark('audit-table')
        self.table.props('flat bordered :rows-per-page-options="[25, 50, 100, 200]" data-testid=audit-table')
        self.table.props('no-data-label="Записей нет" rows-per-page-label="Строк на странице"')
        self.table.add_slot('body-cell-borrower', BORROWER_CELL)
        self.table.on('request', self.on_request)

    def current_filters(self) -> AuditFilters:
        return AuditFilters(
            user_id=self.user.value,
            borrower=(self.borrower.value or '').strip(),
            action=self.action.value or None,
            date_from=self.date_from.day_or_none,
            date_to=self.date_to.day_or_none,
        )

    async def load(self) -> None:
        """Read the page for the current filters; a load overtaken by a later one (the first page still
        being read when a filter is applied) shows nothing of its own."""
        self._loads += 1
        this_load = self._loads
        page = await attempt(
            self.services.audit_views.page, self.actor, self.filters, self.page, self.per_page
        )
        if this_load != self._loads:
            return
        if page is None:
            self.table.rows = []
            self.total.set_text('')
            return
        self.table.rows = table_rows(page)
        self.table.pagination = {'page': page.page, 'rowsPerPage': page.per_page, 'rowsNumber': page.total}
        self.total.set_text(f'Записей: {page.total_label}')

    async def on_filter(self) -> None:
        filters = self.current_filters()
        if filters == self.filters and self.page == 1:
            return
        self.filters = filters
        self.page = 1
        await self.load()

    async def on_request(self, event: Any) -> None:
        request = event.args.get('pagination', {}) if isinstance(event.args, dict) else {}
        self.page = page_number(request.get('page'), 1)
        self.per_page = page_number(request.get('rowsPerPage'), PER_PAGE)
        await self.load()

    async def export(self) -> None:
        export = await attempt(self.services.audit_views.csv, self.actor, self.current_filters())
        if export is None:
            return
        ui.download.content(export.data, f'audit-{self.services.clock():%Y%m%d-%H%M}.csv', 'text/csv')
        if export.cut:
            ui.notify('Выгружены первые 100 000 строк: уточните фильтры', type='warning')
