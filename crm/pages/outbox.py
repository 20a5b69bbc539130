"""«Исходящие сообщения» (administrators; supervisors may look): every SMS and e-mail sent, waiting or failed.

A table paged on the server with filters by channel, status and the day it was created; the counts by
status on top (a click filters by one); a row opens its attempts, and an administrator sends a failed
or expired one again. Message texts are shown as text, never as HTML.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from nicegui import ui

from crm.bootstrap import Services
from crm.domain import Role
from crm.domain import formatting as fmt
from crm.domain.actor import Actor
from crm.domain.messages import MESSAGE_CHANNEL_LABELS, OUTBOX_STATUS_LABELS
from crm.pages.components.dates import DateInput
from crm.pages.components.paging import page_number
from crm.pages.layout import admin_frame
from crm.pages.live import LiveHub
from crm.pages.off_loop import attempt
from crm.pages.route import page
from crm.pages.session import page_actor
from crm.services.outbox_views import OutboxDetail, OutboxFilters, OutboxPage

CHANNELS = {channel.value: label for channel, label in MESSAGE_CHANNEL_LABELS.items()}
COLUMNS: list[dict[str, Any]] = [
    {'name': 'created', 'label': 'Создано', 'field': 'created', 'align': 'left'},
    {'name': 'channel', 'label': 'Канал', 'field': 'channel', 'align': 'left'},
    {'name': 'recipient', 'label': 'Получатель', 'field': 'recipient', 'align': 'left'},
    {'name': 'borrower', 'label': 'Заёмщик', 'field': 'borrower', 'align': 'left'},
    {'name': 'purpose', 'label': 'Назначение', 'field': 'purpose', 'align': 'left'},
    {'name': 'status', 'label': 'Статус', 'field': 'status', 'align': 'left'},
    {'name': 'attempts', 'label': 'Попыток', 'field': 'attempts'},
    {'name': 'reason', 'label': 'Причина', 'field': 'reason', 'align': 'left'},
    {'name': 'sent', 'label': 'Отправлено', 'field': 'sent', 'align': 'left'},
    {'name': 'finished', 'label': 'Завершено', 'field': 'finished', 'align': 'left'},
]
BORROWER_CELL = (
    '<q-td :props="props"><a v-if="props.row.borrower_id" :href="\'/borrower/\' + props.row.borrower_id" '
    'class="text-primary" @click.stop>{{ props.value }}</a><span v-else class="text-grey-6">—</span></q-td>'
)
ATTEMPT_COLUMNS: list[dict[str, Any]] = [
    {'name': 'at', 'label': 'Когда', 'field': 'at', 'align': 'left'},
    {'name': 'outcome', 'label': 'Итог', 'field': 'outcome', 'align': 'left'},
    {'name': 'detail', 'label': 'Подробности', 'field': 'detail', 'align': 'left'},
    {'name': 'duration', 'label': 'мс', 'field': 'duration'},
]
PER_PAGE = 50
ABOUT = (
    'Все SMS и письма: отправленные, ожидающие и с ошибкой. Строка открывает попытки отправки; '
    'сообщение с ошибкой или с истёкшим сроком можно отправить повторно.'
)


def table_rows(page: OutboxPage) -> list[dict[str, Any]]:
    return [
        {
            'id': row.id,
            'created': fmt.moment(row.created_at),
            'channel': CHANNELS.get(row.channel, row.channel),
            'recipient': row.recipient,
            'borrower_id': row.borrower_id,
            'borrower': row.borrower_name or '—',
            'purpose': row.purpose_label,
            'status': row.status_label,
            'attempts': row.attempts,
            'reason': row.reason or '',
            'sent': fmt.moment(row.sent_at) if row.sent_at else '',
            'finished': fmt.moment(row.finished_at) if row.finished_at else '',
        }
        for row in page.items
    ]


def register(services: Services, hub: LiveHub) -> None:
    @page('/admin/outbox')
    async def outbox_page() -> None:
        actor = page_actor(Role.ADMIN, Role.SUPERVISOR)
        if actor is None:
            return
        with admin_frame(services, hub, actor, 'Исходящие сообщения', ABOUT) as workspace:
            view = OutboxView(services, actor)
        await view.load()
        await workspace.start()


class OutboxView:
    """One tab's list: the counts by status, the filters and the table paged on the server."""

    def __init__(self, services: Services, actor: Actor) -> None:
        self.services = services
        self.actor = actor
        self.filters = OutboxFilters()
        self.page = 1
        self.per_page = PER_PAGE
        self.counts = ui.row().classes('items-center gap-2')
        with ui.row().classes('items-end gap-4'):
            self.channel = ui.select(
                {None: 'Все каналы'} | CHANNELS, value=None, label='Канал', on_change=self.on_filter
            )
            self.channel.props('outlined dense').classes('w-40')
            self.status = ui.select(
                {None: 'Все статусы'} | dict(OUTBOX_STATUS_LABELS),
                value=None,
                label='Статус',
                on_change=self.on_filter,
            )
            self.status.props('outlined dense').classes('w-48')
            self.date_from = (
                DateInput('Создано с', on_change=self.on_filter).props('outlined dense').classes('w-44')
            )
            self.date_to = DateInput('по', on_change=self.on_filter).props('outlined dense').classes('w-44')
        self.table = ui.table(columns=COLUMNS, rows=[], row_key='id', pagination=PER_PAGE).classes('w-full')
        self.table.mark('outbox-table')
        self.table.props('flat bordered :rows-per-page-options="[25, 50, 100]" data-testid=outbox-table')
        self.table.props('no-data-label="Сообщений нет" rows-per-page-label="Строк на странице"')
        self.table.add_slot('body-cell-borrower', BORROWER_CELL)
        self.table.on('request', self.on_request)
        self.table.on('rowClick', self.open_row)

    async def load(self) -> None:
        page = await attempt(self.services.outbox.list, self.actor, self.filters, self.page, self.per_page)
        if page is None:
            return
        self.table.rows = table_rows(page)
        self.table.pagination = {'page': page.page, 'rowsPerPage': page.per_page, 'rowsNumber': page.total}
        self.draw_counts(page)

    def draw_counts(self, page: OutboxPage) -> None:
        """«Всего» and a button per status present (a click filters by it)."""
        self.counts.clear()
        with self.counts:
            ui.label(f'Всего: {sum(page.counts.values())}').classes('text-sm text-gray-600')
            for status, label in OUTBOX_STATUS_LABELS.items():
                if page.counts.get(status):
                    ui.button(
                        f'{label}: {page.counts[status]}', on_click=lambda s=status: self.status.set_value(s)
                    ).props('flat dense no-caps').classes('text-sm')

    async def on_filter(self) -> None:
        self.filters = OutboxFilters(
            channel=self.channel.value or None,
            status=self.status.value or None,
            created_from=self.date_from.day_or_none,
            created_to=self.date_to.day_or_none,
        )
        self.page = 1
        await self.load()

    async def on_request(self, event: Any) -> None:
        request = event.args.get('pagination', {}) if isinstance(event.args, dict) else {}
        self.page = page_number(request.get('page'), 1)
        self.per_page = page_number(request.get('rowsPerPage'), PER_PAGE)
        await self.load()

    async def open_row(self, event: Any) -> None:
        try:
            message_id = int(event.args[1]['id'])
        except (TypeError, ValueError, KeyError, IndexError):
            return  # not a row of this table
        detail = await attempt(self.services.outbox.attempts, self.actor, message_id)
        if detail is not None:
            show_detail(self.services, self.actor, detail, self.load)


def show_detail(
    services: Services, actor: Actor, detail: OutboxDetail, reload: Callable[[], Awaitable[None]]
) -> None:
    """One message: its text (as text), its attempts, and «Отправить повторно» for an administrator."""
    row = detail.row

    async def resend() -> None:
        done = await attempt(services.outbox.resend, actor, row.id)
        if done is None:
            return
        ui.notify('Сообщение снова поставлено в очередь', type='positive')
        dialog.close()
        await reload()

    with ui.dialog() as dialog, ui.card().classes('w-[48rem] max-w-full'):
        ui.label(f'{CHANNELS.get(row.channel, row.channel)} · {row.recipient}').classes(
            'text-lg font-semibold'
        )
        ui.label(f'{row.status_label} · {row.purpose_label} · попыток: {row.attempts}').classes('text-sm')
        if row.reason:
            ui.label(row.reason).classes('text-sm text-negative')
        if detail.subject:
            ui.label(f'Тема: {detail.subject}').classes('text-sm font-medium')
        ui.label(detail.body).classes('text-sm whitespace-pre-wrap border rounded p-2 w-full')
        attempts = [
            {
                'id': index,
                'at': fmt.moment(a.at),
                'outcome': a.outcome_label,
                'detail': a.detail or '',
                'duration': a.duration_ms if a.duration_ms is not None else '',
            }
            for index, a in enumerate(detail.attempts)
        ]
        ui.table(columns=ATTEMPT_COLUMNS, rows=attempts, row_key='id').props(
            'flat bordered dense hide-pagination no-data-label="Попыток ещё не было"'
        ).classes('w-full').mark('outbox-attempts')
        with ui.row().classes('w-full justify-end gap-2'):
            ui.button('Закрыть', on_click=dialog.close).props('flat')
            if actor.role == Role.ADMIN and row.status in ('failed', 'expired'):
                ui.button('Отправить повторно', icon='send', on_click=resend)
    dialog.open()
