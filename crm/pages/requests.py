"""«Обращения»: borrowers' requests, searched, filtered, sorted and paged on the server, live.

Operators see «Мои» and «Очередь (не назначены)» and take a queued request with one click; supervisors
and administrators see all and reassign. A row opens the request (``request_dialog``). The table redraws
when any request changes (``RequestsChanged``, coalesced: one reload at a time); the header's count of
new requests is the frame's (``request_badge``).
"""

from __future__ import annotations

from typing import Any

from nicegui import ui

from crm.bootstrap import Services
from crm.domain import Role
from crm.domain import formatting as fmt
from crm.domain.actor import Actor
from crm.domain.notifications import RequestsChanged
from crm.domain.requests import REQUEST_CHANNEL_LABELS, REQUEST_STATUS_LABELS
from crm.pages.components.coalesce import Coalesced
from crm.pages.components.dates import DateInput
from crm.pages.components.paging import page_number
from crm.pages.components.request_dialog import (
    RequestDialog,
    assign_dialog,
    new_request_dialog,
    topics_dialog,
)
from crm.pages.layout import frame
from crm.pages.live import LiveHub
from crm.pages.off_loop import attempt, service
from crm.pages.route import page
from crm.pages.session import page_actor
from crm.services.request_views import DEADLINES, SORTS, RequestFilters, RequestPage, RequestRow

PER_PAGE = 50
UNASSIGNED = -1  # the operator filter's «Не назначено»
SCOPES = {'mine': 'Мои', 'queue': 'Очередь (не назначены)'}
COLUMNS: list[dict[str, Any]] = [
    {'name': 'number', 'label': '№', 'field': 'number', 'align': 'left', 'sortable': True},
    {'name': 'opened_at', 'label': 'Открыто', 'field': 'opened_at', 'align': 'left', 'sortable': True},
    {'name': 'borrower', 'label': 'Заёмщик', 'field': 'borrower', 'align': 'left', 'sortable': True},
    {'name': 'subject', 'label': 'Тема обращения', 'field': 'subject', 'align': 'left'},
    {'name': 'topic', 'label': 'Категория', 'field': 'topic', 'align': 'left', 'sortable': True},
    {'name': 'channel', 'label': 'Канал', 'field': 'channel', 'align': 'left', 'sortable': True},
    {'name': 'status', 'label': 'Статус', 'field': 'status', 'align': 'left', 'sortable': True},
    {'name': 'assignee', 'label': 'Исполнитель', 'field': 'assignee', 'align': 'left', 'sortable': True},
    {'name': 'due_on', 'label': 'Срок ответа', 'field': 'due_on', 'align': 'left', 'sortable': True},
    {'name': 'updated_at', 'label': 'Обновлено', 'field': 'updated_at', 'align': 'left', 'sortable': True},
    {'name': 'actions', 'label': '', 'field': 'id', 'align': 'right'},
]
BORROWER_CELL = (
    '<q-td :props="props"><a :href="\'/borrower/\' + props.row.borrower_id" class="text-primary" '
    '@click.stop>{{ props.value }}</a><div class="text-xs text-grey-7">PIN {{ props.row.pin }}</div></q-td>'
)
DUE_CELL = (
    '<q-td :props="props"><div>{{ props.value }}</div>'
    '<q-badge v-if="props.row.level" :color="props.row.level" :label="props.row.left" '
    'data-testid="request-deadline" />'
    '<span v-else class="text-xs text-grey-7">{{ props.row.left }}</span></q-td>'
)
ACTIONS_CELL = (
    '<q-td :props="props" auto-width>'
    '<q-btn v-if="props.row.can_take" dense no-caps unelevated color="primary" label="Взять" '
    'data-testid="request-take" @click.stop="() => $parent.$emit(\'take\', props.row)" />'
    '<q-btn v-if="props.row.can_assign" dense no-caps flat color="primary" label="Назначить" '
    '@click.stop="() => $parent.$emit(\'assign\', props.row)" /></q-td>'
)


def deadline_cells(row: RequestRow) -> dict[str, Any]:
    """The due day, the working days left, and the badge's colour: orange from the 10th working day,
    red once overdue, none for a request in time or finished."""
    if row.deadline is None:
        return {'left': 'ответ дан' if row.status == 'resolved' else '', 'level': None}
    level = 'negative' if row.deadline.overdue else 'orange' if row.deadline.warning else None
    return {'left': row.deadline.label, 'level': level}


def table_rows(page: RequestPage, actor: Actor) -> list[dict[str, Any]]:
    return [
        {
            'id': row.id,
            'number': row.id,
            'opened_at': fmt.moment(row.opened_at),
            'borrower_id': row.borrower_id,
            'borrower': row.borrower_name,
            'pin': row.borrower_pin,
            'subject': row.subject,
            'topic': row.topic_name or '—',
            'channel': row.channel_label,
            'status': row.status_label,
            'assignee': row.assignee_name or 'не назначено',
            'due_on': fmt.day(row.due_on),
            'updated_at': fmt.moment(row.updated_at),
            'can_take': row.open and row.assignee_id is None and actor.role == Role.OPERATOR,
            'can_assign': row.open and actor.sees_everyone,
        }
        | deadline_cells(row)
        for row in page.rows
    ]


def register(services: Services, hub: LiveHub) -> None:
    @page('/requests')
    async def requests_page() -> None:
        actor = page_actor()
        if actor is None:
            return
        with frame(services, hub, actor, 'Обращения') as workspace:
            view = RequestsView(services, actor)
            await view.prepare()
        workspace.requests.listeners.append(view.on_change)
        await view.load()
        await workspace.start()


class RequestsView:
    """One tab's list: the search line and filters, the table paged on the server, the actions."""

    def __init__(self, services: Services, actor: Actor) -> None:
        self.services = services
        self.actor = actor
        self.filters = RequestFilters()
        self.scope = 'mine'
        self.sort, self.descending = 'opened_at', True
        self.page, self.per_page = 1, PER_PAGE
        self.reload = Coalesced(self.load)
        with ui.row().classes('w-full items-center gap-4'):
            ui.label('Обращения').classes('text-xl font-semibold')
            if not actor.sees_everyone:
                self.scope_toggle = ui.toggle(SCOPES, value=self.scope, on_change=self.on_filter)
                self.scope_toggle.props('no-caps').mark('request-scope')
            ui.space()
            self.summary = ui.label('').classes('text-sm text-gray-600').mark('request-total')
            ui.button('Новое обращение', icon='add', on_click=self.new_request).props('no-caps')
            ui.button('Экспорт CSV', icon='download', on_click=self.export).props('no-caps outline')
            if actor.role == Role.ADMIN:
                ui.button('Темы', icon='label', on_click=self.edit_topics).props('no-caps flat')
        self.filter_row = ui.row().classes('w-full items-end gap-3')
        self.dialogs = ui.element('div')  # the dialogs' place: not inside the table, which redraws
        self.table = ui.table(columns=COLUMNS, rows=[], row_key='id', pagination=PER_PAGE).classes('w-full')
        self.table.mark('request-table')
        self.table.props('flat bordered :rows-per-page-options="[25, 50, 100]" data-testid=request-table')
        self.table.props('no-data-label="Обращений нет" rows-per-page-label="Строк на странице"')
        self.table.add_slot('body-cell-borrower', BORROWER_CELL)
        self.table.add_slot('body-cell-due_on', DUE_CELL)
        self.table.add_slot('body-cell-actions', ACTIONS_CELL)
        self.table.on('request', self.on_request)
        self.table.on('rowClick', self.open_row)
        self.table.on('take', self.take)
        self.table.on('assign', self.assign)

    async def prepare(self) -> None:
        """The filters, with the topics and (for supervisors) the operators to choose from."""
        topics = await service(self.services.requests.topics, True)
        operators = (
            await service(self.services.borrowers.operators, self.actor) if self.actor.sees_everyone else []
        )
        with self.filter_row:
            self.query = ui.input(placeholder='Текст, ФИО, PIN, телефон').props('outlined dense clearable')
            self.query.props('maxlength=100 type=search').classes('w-72').mark('request-search')
            self.query.on('keydown.enter', self.on_filter)
            self.query.on('clear', self.on_filter)
            with self.query.add_slot('prepend'):
                ui.icon('search')
            self.statuses = self._select(dict(REQUEST_STATUS_LABELS), 'Статус', 'w-56', multiple=True)
            self.channel = self._select({None: 'Все каналы'} | dict(REQUEST_CHANNEL_LABELS), 'Канал', 'w-36')
            self.topic = self._select({None: 'Все темы'} | {t.code: t.name for t in topics}, 'Тема', 'w-48')
            self.operator = None
            if self.actor.sees_everyone:
                options: dict[Any, str] = {None: 'Все сотрудники', UNASSIGNED: 'Не назначено'}
                options |= {o.id: o.full_name for o in operators}
                self.operator = self._select(options, 'Исполнитель', 'w-56')
            self.deadline = self._select({None: 'Любой срок'} | DEADLINES, 'Срок', 'w-40')
            self.date_from = (
                DateInput('Открыто с', on_change=self.on_filter).props('outlined dense').classes('w-44')
            )
            self.date_to = DateInput('по', on_change=self.on_filter).props('outlined dense').classes('w-44')

    def _select(
        self, options: dict[Any, str], label: str, width: str, *, multiple: bool = False
    ) -> ui.select:
        value: Any = [] if multiple else None
        select = ui.select(options, value=value, label=label, multiple=multiple, on_change=self.on_filter)
        select.props('outlined dense' + (' use-chips' if multiple else '')).classes(width)
        return select

    # --- loading ----------------------------------------------------------------------------------
    def current_filters(self) -> RequestFilters:
        operator = self.operator.value if self.operator is not None else None
        mine = not self.actor.sees_everyone and self.scope == 'mine'
        queue = not self.actor.sees_everyone and self.scope == 'queue'
        return RequestFilters(
            query=(self.query.value or '').strip(),
            statuses=tuple(self.statuses.value or ()),
            channel=self.channel.value or None,
            topic=self.topic.value or None,
            assignee_id=self.actor.id if mine else operator if operator not in (None, UNASSIGNED) else None,
            unassigned=queue or operator == UNASSIGNED,
            deadline=self.deadline.value or None,
            opened_from=self.date_from.day_or_none,
            opened_to=self.date_to.day_or_none,
        )

    async def load(self) -> None:
        page = await attempt(
            self.services.request_views.page,
            self.actor,
            self.filters,
            self.sort,
            self.descending,
            self.page,
            self.per_page,
        )
        if page is None or self.table.is_deleted:
            return
        self.table.rows = table_rows(page, self.actor)
        self.table.pagination = {
            'page': page.page,
            'rowsPerPage': page.per_page,
            'rowsNumber': page.total,
            'sortBy': self.sort,
            'descending': self.descending,
        }
        self.summary.set_text(f'Найдено: {page.total_label}')

    async def on_change(self, change: RequestsChanged) -> None:
        """Any request changed somewhere: redraw this page's rows (one reload at a time)."""
        del change
        await self.reload()

    async def on_filter(self) -> None:
        if not self.actor.sees_everyone:
            self.scope = self.scope_toggle.value or 'mine'
        self.filters = self.current_filters()
        self.page = 1
        await self.reload()

    async def on_request(self, event: Any) -> None:
        request = event.args.get('pagination', {}) if isinstance(event.args, dict) else {}
        sort = request.get('sortBy')
        self.sort = sort if sort in SORTS else 'opened_at'
        self.descending = bool(request.get('descending')) if sort else True
        self.page = page_number(request.get('page'), 1)
        self.per_page = page_number(request.get('rowsPerPage'), PER_PAGE)
        await self.reload()

    # --- actions ----------------------------------------------------------------------------------
    @staticmethod
    def _row_id(row: Any) -> int | None:
        try:
            return int(row['id'])
        except (TypeError, ValueError, KeyError):
            return None

    async def take(self, event: Any) -> None:
        request_id = self._row_id(event.args)
        if request_id is None:
            return
        if await attempt(self.services.requests.take, self.actor, request_id) is not None:
            ui.notify(f'Обращение № {request_id} взято в работу', type='positive')
        await self.reload()

    async def assign(self, event: Any) -> None:
        request_id = self._row_id(event.args)
        if request_id is not None:
            with self.dialogs:
                await assign_dialog(self.services, self.actor, request_id, self.reload)

    async def open_row(self, event: Any) -> None:
        request_id = self._row_id(
            event.args[1] if isinstance(event.args, list) and len(event.args) > 1 else None
        )
        if request_id is not None:
            with self.dialogs:
                dialog = RequestDialog(self.services, self.actor, request_id, self.reload)
            await dialog.open()

    async def new_request(self) -> None:
        with self.dialogs:
            await new_request_dialog(self.services, self.actor, self.reload)

    async def edit_topics(self) -> None:
        with self.dialogs:
            await topics_dialog(self.services, self.actor)

    async def export(self) -> None:
        export = await attempt(
            self.services.request_views.csv, self.actor, self.filters, self.sort, self.descending
        )
        if export is None:
            return
        ui.download.content(export.data, f'requests-{self.services.clock():%Y%m%d-%H%M}.csv', 'text/csv')
        if export.note:
            ui.notify(export.note, type='warning', multi_line=True)
