"""The list after login: the operator's borrowers, paged and sorted on the server."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from nicegui import ui

from crm.bootstrap import Services
from crm.domain import formatting as fmt
from crm.pages.components.paging import page_number
from crm.pages.layout import frame
from crm.pages.live import LiveHub
from crm.pages.off_loop import attempt, service
from crm.pages.route import page
from crm.pages.session import page_actor
from crm.services.views import SORTS, ListQuery, Page

COLUMNS: list[dict[str, Any]] = [
    {'name': 'name', 'label': 'ФИО', 'field': 'full_name', 'align': 'left', 'sortable': True},
    {'name': 'pin', 'label': 'PIN', 'field': 'pin', 'align': 'left'},
    {'name': 'city', 'label': 'Город', 'field': 'city', 'align': 'left'},
    {'name': 'loan', 'label': 'Заём', 'field': 'loan', 'align': 'left'},
    {'name': 'total_debt', 'label': 'Общий долг', 'field': 'total_debt', 'sortable': True},
    {'name': 'overdue_amount', 'label': 'Просрочено', 'field': 'overdue_amount', 'sortable': True},
    {'name': 'days_past_due', 'label': 'Дней просрочки', 'field': 'days_past_due', 'sortable': True},
    {'name': 'last_contact_at', 'label': 'Последний контакт', 'field': 'last_contact_at', 'sortable': True},
]
OPERATOR_COLUMN: dict[str, Any] = {
    'name': 'operator',
    'label': 'Сотрудник',
    'field': 'operator',
    'align': 'left',
    'classes': 'crm-wrap',  # a full name wraps instead of being cut off
    'headerClasses': 'crm-wrap',
}
PER_PAGE_OPTIONS = [25, 50, 100]

PROMISE_FILTERS = {None: 'Все', 'today': 'Обещания на сегодня', 'broken': 'Нарушенные обещания'}


def table_rows(page: Page) -> list[dict]:
    return [
        {
            'id': row.id,
            'full_name': row.full_name,
            'pin': row.pin,
            'city': row.city,
            'loan': f'№ {row.loan.number} · {row.loan.product}' if row.loan else '—',
            'total_debt': fmt.money(row.total_debt),
            'overdue_amount': fmt.money(row.overdue_amount),
            'days_past_due': row.days_past_due,
            'last_contact_at': fmt.moment(row.last_contact_at),
            'operator': row.operator_name or '—',
            'broken_promise': row.broken_promise,
        }
        for row in page.items
    ]


def pagination_props(query: ListQuery, page: Page) -> dict:
    return {
        'page': page.page,
        'rowsPerPage': page.per_page,
        'rowsNumber': page.total,
        'sortBy': query.sort,
        'descending': query.descending,
    }


def register(services: Services, hub: LiveHub) -> None:
    @page('/')
    async def borrower_list() -> None:
        actor = page_actor()
        if actor is None:
            return
        state = {'query': ListQuery()}
        operators = await service(services.borrowers.operators, actor) if actor.sees_everyone else []

        async def load(query: ListQuery) -> None:
            page = await attempt(services.borrowers.list_borrowers, actor, query)
            if page is None:
                return
            state['query'] = query
            table.rows = table_rows(page)
            table.pagination = pagination_props(query, page)
            summary.set_text(f'Всего: {page.total}')

        async def on_request(event) -> None:
            request = event.args.get('pagination', {}) if isinstance(event.args, dict) else {}
            sort = request.get('sortBy') or 'days_past_due'
            await load(
                replace(
                    state['query'],
                    page=page_number(request.get('page'), 1),
                    per_page=page_number(request.get('rowsPerPage'), 25),
                    sort=sort if sort in SORTS else 'days_past_due',
                    descending=bool(request.get('descending')),
                )
            )

        async def on_filter() -> None:
            await load(
                replace(
                    state['query'],
                    page=1,
                    overdue_only=bool(overdue.value),
                    promises=promise_select.value,
                    operator_id=operator_select.value if operator_select else None,
                )
            )

        title = 'Заёмщики' if actor.sees_everyone else 'Мои заёмщики'
        with frame(services, hub, actor, title) as workspace:
            with ui.row().classes('w-full items-center gap-6'):
                ui.label(title).classes('text-xl font-semibold')
                overdue = ui.checkbox('Только с просрочкой', on_change=on_filter)
                promise_select = ui.select(PROMISE_FILTERS, value=None, label='Обещания', on_change=on_filter)
                promise_select.props('outlined dense').classes('w-64').mark('promise-filter')
                operator_select = None
                if actor.sees_everyone:
                    options = {None: 'Все сотрудники'} | {
                        o.id: f'{o.full_name} ({o.login})' for o in operators
                    }
                    operator_select = ui.select(options, value=None, label='Сотрудник', on_change=on_filter)
                    operator_select.props('outlined dense').classes('w-72')
                ui.space()
                summary = ui.label('').classes('text-sm text-gray-600')
            columns = COLUMNS + ([OPERATOR_COLUMN] if actor.sees_everyone else [])
            table = ui.table(columns=columns, rows=[], row_key='id', pagination=25).classes('w-full')
            table.props(f'flat bordered :rows-per-page-options="{PER_PAGE_OPTIONS}"')
            table.props('data-testid=borrower-table')
            table.props('no-data-label="Нет заёмщиков" rows-per-page-label="Строк на странице"')
            table.on('request', on_request)
            table.on('rowClick', lambda e: ui.navigate.to(f'/borrower/{e.args[1]["id"]}'))
            table.add_slot(
                'body-cell-name',
                '<q-td :props="props"><a :href="\'/borrower/\' + props.row.id" '
                'class="text-primary font-medium" @click.stop>{{ props.value }}</a>'
                '<q-badge v-if="props.row.broken_promise" color="negative" class="q-ml-sm" '
                'label="Нарушено обещание" data-testid="broken-promise" /></q-td>',
            )
            table.add_slot(
                'body-cell-days_past_due',
                '<q-td :props="props"><q-badge v-if="props.value > 0" '
                ":color=\"props.value > 90 ? 'negative' : props.value > 30 ? 'deep-orange' : 'orange'\" "
                ':label="props.value" /><span v-else class="text-grey-6">0</span></q-td>',
            )
        await load(state['query'])
        await workspace.start()
