"""«Рассылки» (supervisors and administrators): the list of mailings, a new one, and one mailing's progress.

Live: the mailing worker tells every «Рассылки» page when it queued a batch (``MailingProgress``); the
sending itself is the outbox dispatcher's, in any process, so while a mailing is still going the page
also re-reads its counts every ``REFRESH_S`` seconds — one grouped count over that mailing's rows, for
the few supervisors who watch one.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from datetime import datetime
from typing import Any

from nicegui import ui

from crm.bootstrap import Services
from crm.domain import Role
from crm.domain import formatting as fmt
from crm.domain.actor import Actor
from crm.domain.errors import ServiceError
from crm.domain.notifications import MailingProgress, Notification
from crm.pages.components.coalesce import Coalesced
from crm.pages.components.dates import BadDate, MomentInput
from crm.pages.errors import not_found, valid_id
from crm.pages.layout import frame
from crm.pages.live import LiveHub
from crm.pages.off_loop import attempt, service
from crm.pages.route import page
from crm.pages.session import page_actor
from crm.services.mailing_law import TEXT_RULE, SegmentPreview
from crm.services.mailing_views import MailingReport, MailingView
from crm.services.segments import Segment, SegmentOptions, parse_money

MANAGERS = (Role.SUPERVISOR, Role.ADMIN)
REFRESH_S = 1.5
CHANNELS = {'sms': 'SMS', 'email': 'E-mail'}
LIST_COLUMNS: list[dict[str, Any]] = [
    {'name': 'name', 'label': 'Название', 'field': 'name', 'align': 'left'},
    {'name': 'channel', 'label': 'Канал', 'field': 'channel', 'align': 'left'},
    {'name': 'template', 'label': 'Шаблон', 'field': 'template', 'align': 'left'},
    {'name': 'status', 'label': 'Статус', 'field': 'status', 'align': 'left'},
    {'name': 'progress', 'label': 'Выполнено', 'field': 'progress', 'align': 'left'},
    {'name': 'start_at', 'label': 'Запуск (МСК)', 'field': 'start_at', 'align': 'left'},
    {'name': 'author', 'label': 'Автор', 'field': 'author', 'align': 'left'},
]
PROGRESS_CELL = (
    '<q-td :props="props"><div class="row items-center no-wrap" style="min-width:10rem">'
    '<q-linear-progress :value="props.row.fraction" size="10px" class="col q-mr-sm" rounded />'
    '<span>{{ props.value }}</span></div></q-td>'
)


def register(services: Services, hub: LiveHub) -> None:
    @page('/mailings')
    async def list_page() -> None:
        actor = page_actor(*MANAGERS)
        if actor is None:
            return
        with frame(services, hub, actor, 'Рассылки') as workspace:
            with ui.row().classes('items-center w-full'):
                ui.label('Рассылки').classes('text-xl font-semibold')
                ui.space()
                ui.button('Новая рассылка', icon='add', on_click=lambda: ui.navigate.to('/mailings/new'))
            table = ui.table(columns=LIST_COLUMNS, rows=[], row_key='id').classes('w-full')
            table.add_slot('body-cell-progress', PROGRESS_CELL)
            table.on('rowClick', lambda event: ui.navigate.to(f'/mailings/{event.args[1]["id"]}'))
            empty = ui.label('Рассылок ещё не было').classes('text-gray-600')

        async def load() -> bool:
            views = await service(services.mailings.list, actor)
            table.rows = [list_row(view) for view in views]
            table.update()
            empty.set_visibility(not views)
            return any(view.active for view in views)

        await Live(hub, load, lambda _: True).start()
        await workspace.start()

    @page('/mailings/new')
    async def new_page() -> None:
        actor = page_actor(*MANAGERS)
        if actor is None:
            return
        options = await service(services.mailings.options, actor)
        with frame(services, hub, actor, 'Новая рассылка') as workspace:
            ui.link('← Рассылки', '/mailings').classes('text-sm')
            ui.label('Новая рассылка').classes('text-xl font-semibold')
            form = MailingForm(services, actor, options)
        await form.load_templates()
        await workspace.start()

    @page('/mailings/{mailing_id}')
    async def mailing_page(mailing_id: int) -> None:
        actor = page_actor(*MANAGERS)
        if actor is None:
            return
        if not valid_id(mailing_id):
            with frame(services, hub, actor, 'Рассылка'):
                not_found()
            return
        report = await attempt(services.mailings.report, actor, mailing_id)
        with frame(services, hub, actor, 'Рассылка') as workspace:
            ui.link('← Рассылки', '/mailings').classes('text-sm')
            if report is None:
                ui.label('Рассылка не найдена').classes('text-lg')
            else:
                panel = MailingPanel(services, actor, report)
        if report is not None:
            live = Live(hub, panel.load, lambda notice: notice.mailing_id == mailing_id)
            panel.reload = live.refresh  # after pause or resume the timer must know it is going again
            await live.start()
        await workspace.start()


def list_row(view: MailingView) -> dict[str, Any]:
    return {
        'id': view.id,
        'name': view.name,
        'channel': view.channel_label,
        'template': view.template_name,
        'status': view.status_label,
        'fraction': round(view.progress, 4),
        'progress': f'{view.progress:.0%}'.replace('%', ' %'),
        'start_at': fmt.moment(view.start_at),
        'author': view.created_by or '—',
    }


class Live:
    """Re-reads a page's data when a mailing it shows tells of progress, and every ``REFRESH_S`` while
    ``load`` says something is still going; one read at a time, a burst of notices read once more."""

    def __init__(
        self, hub: LiveHub, load: Callable[[], Awaitable[bool]], wanted: Callable[[MailingProgress], bool]
    ) -> None:
        self._hub = hub
        self._load = load
        self._wanted = wanted
        self._active = True
        self.refresh = Coalesced(self._reload)
        self._last = 0.0

    async def start(self) -> None:
        await self.refresh()
        self._hub.watch_mailings(ui.context.client, self._on_notice)
        ui.timer(REFRESH_S, self._tick)

    async def _on_notice(self, notification: Notification, _prepared: Future[Any] | None = None) -> None:
        if isinstance(notification, MailingProgress) and self._wanted(notification):
            await self.refresh()

    async def _tick(self) -> None:
        if self._active and time.monotonic() - self._last >= REFRESH_S / 2:
            await self.refresh()

    async def _reload(self) -> None:
        self._last = time.monotonic()
        self._active = await self._load()


class MailingForm:
    """The name, the channel and template, the segment, «Проверить сегмент», and when to start."""

    def __init__(self, services: Services, actor: Actor, options: SegmentOptions) -> None:
        self._services = services
        self._actor = actor
        with ui.card().classes('w-full max-w-5xl'), ui.row().classes('w-full items-start gap-4'):
            self.name = ui.input('Название рассылки').props('outlined maxlength=200').classes('w-96')
            self.channel = ui.select(CHANNELS, value='sms', label='Канал', on_change=self.load_templates)
            self.channel.props('outlined').classes('w-32')
            self.template = ui.select({}, label='Шаблон').props('outlined').classes('w-96')
        with ui.card().classes('w-full max-w-5xl'):
            ui.label('Сегмент').classes('text-lg font-medium')
            self._segment_fields(options)
            with ui.row().classes('items-center gap-4'):
                ui.button('Проверить сегмент', icon='rule', on_click=self.check)
            self.preview_area = ui.column().classes('w-full gap-1')
        with ui.card().classes('w-full max-w-5xl'), ui.row().classes('items-center gap-4'):
            ui.button('Запустить сейчас', icon='send', color='positive', on_click=self.start_now)
            ui.label('или').classes('text-gray-600')
            self.when = MomentInput('Запланировать на (МСК)').props('outlined').classes('w-64')
            ui.button('Запланировать', icon='schedule', on_click=self.schedule).props('outline')

    def _segment_fields(self, options: SegmentOptions) -> None:
        with ui.row().classes('w-full items-start gap-4'):
            self.dpd_min = (
                ui.number('Дней просрочки от', min=0, precision=0).props('outlined').classes('w-44')
            )
            self.dpd_max = ui.number('до', min=0, precision=0).props('outlined').classes('w-28')
            self.overdue_min = ui.input('Сумма просрочки от, ₽').props('outlined').classes('w-56')
            self.overdue_max = ui.input('до, ₽').props('outlined').classes('w-32')
            self.no_contact = ui.number('Без контакта, дней', min=0, precision=0).props('outlined')
            self.no_contact.classes('w-44').tooltip(
                'Последний контакт старше этого числа дней, или его не было'
            )
        with ui.row().classes('w-full items-start gap-4'):
            self.products = self._many('Продукт', list(options.products))
            self.statuses = self._many(
                'Статус займа', {code: f'{name} ({code})' for code, name in options.statuses}
            )
            self.cities = self._many('Город', list(options.cities))
            self.zones = self._many('Часовой пояс', list(options.timezones))
        self.archived = ui.checkbox('Включая архивных заёмщиков и архивные займы')

    @staticmethod
    def _many(label: str, options: Any) -> ui.select:
        select = ui.select(options, label=label, multiple=True, with_input=True, clearable=True)
        return select.props('outlined use-chips').classes('w-64')

    def segment(self) -> Segment:
        """The segment the fields describe (a Russian ServiceError for a sum that is not one)."""
        return Segment(
            dpd_min=_whole(self.dpd_min.value),
            dpd_max=_whole(self.dpd_max.value),
            overdue_min=parse_money(self.overdue_min.value, 'Сумма просрочки от'),
            overdue_max=parse_money(self.overdue_max.value, 'Сумма просрочки до'),
            products=tuple(self.products.value or ()),
            statuses=tuple(int(code) for code in self.statuses.value or ()),
            cities=tuple(self.cities.value or ()),
            timezones=tuple(self.zones.value or ()),
            no_contact_days=_whole(self.no_contact.value),
            include_archived=bool(self.archived.value),
        )

    async def load_templates(self) -> None:
        choices = await service(self._services.mailings.templates, self._actor, self.channel.value)
        self.template.set_options({c.id: f'{c.name} ({c.kind_label})' for c in choices}, value=None)

    async def check(self) -> None:
        segment = self._checked_segment()
        if segment is None:
            return
        preview = await attempt(self._services.mailings.preview, self._actor, segment, self.channel.value)
        if preview is not None:
            self.preview_area.clear()
            with self.preview_area:
                show_preview(preview)

    async def start_now(self) -> None:
        await self._create(None)

    async def schedule(self) -> None:
        try:
            start_at = self.when.moment
        except BadDate as error:
            ui.notify(str(error), type='warning')
            return
        if start_at is None:
            ui.notify('Укажите дату и время запуска', type='warning')
            return
        await self._create(start_at.replace(tzinfo=fmt.OFFICE_TZ))

    async def _create(self, start_at: datetime | None) -> None:
        segment = self._checked_segment()
        if segment is None:
            return
        created = await attempt(
            self._services.mailings.create,
            self._actor,
            self.name.value or '',
            self.channel.value,
            self.template.value,
            segment,
            start_at,
        )
        if created is not None:
            ui.navigate.to(f'/mailings/{created.id}')

    def _checked_segment(self) -> Segment | None:
        try:
            return self.segment()
        except ServiceError as error:
            ui.notify(error.message, type='warning')
            return None


def _whole(value: float | None) -> int | None:
    return None if value is None else int(value)


def show_preview(preview: SegmentPreview) -> None:
    lines = [
        ('В сегменте', preview.in_segment),
        (f'С адресом ({preview.no_address_label}: {preview.no_address})', preview.with_address),
        ('Можно отправить сейчас', preview.allowed_now),
        ('Позже сегодня, в разрешённые часы', preview.held_today),
        ('В другие дни', preview.held_later),
    ]
    lines += [(f'Задержит 230-ФЗ: {item.label}', item.count) for item in preview.held]
    lines += [(f'Запретит 230-ФЗ: {item.label}', item.count) for item in preview.refused]
    counts_table(lines)
    ui.label(f'Пройдёт сегодня: {preview.allowed_today}').classes('font-medium')


def counts_table(lines: list[tuple[str, int]]) -> ui.table:
    columns = [
        {'name': 'what', 'label': 'Показатель', 'field': 'what', 'align': 'left'},
        {'name': 'count', 'label': 'Количество', 'field': 'count', 'align': 'right'},
    ]
    rows = [{'what': what, 'count': count} for what, count in lines]
    return (
        ui.table(columns=columns, rows=rows, row_key='what').props('dense flat bordered').classes('w-[36rem]')
    )


class MailingPanel:
    """One mailing: its progress bar, its counts, and what may be done with it."""

    def __init__(self, services: Services, actor: Actor, report: MailingReport) -> None:
        self._services = services
        self._actor = actor
        view = report.mailing
        ui.label(view.name).classes('text-xl font-semibold')
        ui.label(
            f'{view.channel_label} · шаблон «{view.template_name}» · {view.segment.describe()} · '
            f'запуск {fmt.moment(view.start_at)} МСК · автор {view.created_by or "—"}'
        ).classes('text-sm text-gray-600')
        with ui.row().classes('items-center gap-4 w-full max-w-3xl no-wrap'):
            self.status = ui.label().classes('font-medium w-48 shrink-0')
            self.bar = ui.linear_progress(0.0, show_value=False, size='14px').props('rounded')
            self.bar.classes('flex-1').style('width:auto')
            self.percent = ui.label().classes('w-40 shrink-0 text-right')
        with ui.row().classes('gap-2'):
            self.pause = ui.button('Пауза', icon='pause', on_click=lambda: self._act(services.mailings.pause))
            self.resume = ui.button(
                'Продолжить', icon='play_arrow', on_click=lambda: self._act(services.mailings.resume)
            )
            self.cancel = ui.button(
                'Отменить', icon='cancel', color='negative', on_click=self._confirm_cancel
            )
            ui.button('Скачать CSV', icon='download', on_click=self._download).props('outline')
        self.table = counts_table([])
        self._id = view.id
        self.reload: Callable[[], Awaitable[Any]] = self.load
        self._show(report)

    async def load(self) -> bool:
        report = await service(self._services.mailings.report, self._actor, self._id)
        self._show(report)
        return report.mailing.active

    def _show(self, report: MailingReport) -> None:
        view = report.mailing
        self.status.set_text(view.status_label)
        self.bar.set_value(round(view.progress, 4))
        self.percent.set_text(f'{view.finished} из {view.total} · {view.progress:.0%}'.replace('%', ' %'))
        self.pause.set_visibility(
            view.status in ('scheduled', 'running') or (view.status == 'done' and view.active)
        )
        self.resume.set_visibility(view.status == 'paused')
        self.cancel.set_visibility(view.status != 'cancelled' and (view.active or view.status == 'paused'))
        self.table.rows = [{'what': what, 'count': count} for what, count in report_lines(report)]
        self.table.update()

    async def _act(self, action: Callable[[Actor, int], MailingView]) -> None:
        if await attempt(action, self._actor, self._id) is not None:
            await self.reload()

    def _confirm_cancel(self) -> None:
        with ui.dialog() as dialog, ui.card():
            ui.label('Отменить рассылку? Сообщения, которые ещё не ушли, отправлены не будут.')
            with ui.row():
                ui.button('Отменить рассылку', color='negative', on_click=lambda: self._cancel(dialog))
                ui.button('Назад', on_click=dialog.close).props('flat')
        dialog.open()

    async def _cancel(self, dialog: ui.dialog) -> None:
        dialog.close()
        await self._act(self._services.mailings.cancel)

    async def _download(self) -> None:
        data = await attempt(self._services.mailings.report_csv, self._actor, self._id)
        if data is not None:
            ui.download.content(data, f'mailing-{self._id}.csv', 'text/csv; charset=utf-8')


def _refused(rule: str, label: str) -> str:
    return f'Не отправлено: {label.lower()}' if rule == TEXT_RULE else f'Запрещено 230-ФЗ: {label}'


def report_lines(report: MailingReport) -> list[tuple[str, int]]:
    lines = [
        ('В сегменте', report.mailing.total),
        (f'Не отправлялось: {report.no_address_label}', report.no_address),
        ('В очереди', report.waiting),
    ]
    lines += [(f'Ожидают по 230-ФЗ: {item.label}', item.count) for item in report.held]
    lines += [
        ('На паузе', report.paused),
        ('Отправлено', report.sent),
        ('Доставлено', report.delivered),
        ('Ошибка', report.failed),
        ('Истёк срок', report.expired),
    ]
    lines += [(_refused(item.rule, item.label), item.count) for item in report.refused]
    lines.append(('Отменено', report.cancelled))
    return lines
