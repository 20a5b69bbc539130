"""The card's promises to pay: the borrower's promises with their status, «Добавить обещание» (the dialog
«Обещание оплаты»: a promise written by hand) and «Отменить» for an open one; the same dialog records a
promise made in the chat («Обещание из чата» in the card's chat).

Drawn after the card, as the bureau's part is: a screen pop puts the card on screen exactly as before and
the promises are read a moment later, off the event loop. Redrawn on ``HistoryChanged`` for the borrower
(``Workspace.on_notification``): a payment, a checker's verdict, a promise made in another tab.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import date
from decimal import Decimal, InvalidOperation

from nicegui import ui

from crm.bootstrap import Services
from crm.domain import formatting as fmt
from crm.domain.actor import Actor
from crm.domain.errors import ServiceError
from crm.domain.promises import PROMISE_SOURCE_LABELS, PROMISE_STATUS_LABELS, PromiseStatus
from crm.pages.components import dates
from crm.pages.off_loop import service
from crm.services.promises import PromiseView

STATUS_COLORS = {
    PromiseStatus.OPEN: 'primary',
    PromiseStatus.KEPT: 'positive',
    PromiseStatus.PARTLY_KEPT: 'orange',
    PromiseStatus.BROKEN: 'negative',
    PromiseStatus.CANCELLED: 'grey',
}
SHOWN = 20  # the newest promises on the card; the rest are counted
_AMOUNT = re.compile(r'\d+(?:[.,]\d{1,2})?')


def parse_amount(text: str) -> Decimal:
    """«5 000», «1250,50», «1 250.5 ₽» → a Decimal; anything else is refused in Russian."""
    cleaned = re.sub(r'[\s\u00a0₽]|руб\.?', '', text or '')
    if not _AMOUNT.fullmatch(cleaned):
        raise ServiceError('Укажите сумму обещания числом, например 5 000 или 1 250,50')
    try:
        return Decimal(cleaned.replace(',', '.'))
    except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
        raise ServiceError('Укажите сумму обещания числом, например 5 000 или 1 250,50') from None


def parse_day(text: str) -> date:
    """«ДД.ММ.ГГГГ» → a date; anything else is refused in Russian."""
    try:
        day = dates.parse_day(text)
    except dates.BadDate:
        day = None
    if day is None:
        raise ServiceError('Укажите дату обещания в виде ДД.ММ.ГГГГ, например 05.12.2026')
    return day


Made = Callable[[PromiseView], Awaitable[None]]


def promise_dialog(
    services: Services, actor: Actor, borrower_id: int, *, source: str = 'hand', made: Made | None = None
) -> None:
    """«Обещание оплаты»: amount and date. A refusal (bad input, a date in the past, no chat) is shown in
    the dialog, which stays open with what was typed."""
    title = 'Обещание оплаты в чате' if source == 'chat' else 'Обещание оплаты'
    with ui.dialog() as dialog, ui.card().classes('w-[26rem]'):
        ui.label(title).classes('text-lg font-semibold')
        if source == 'chat':
            ui.label('Обещание будет привязано к последнему сообщению заёмщика в чате.').classes('text-sm')
        amount = ui.input('Сумма, ₽').props('outlined dense').classes('w-full').mark('promise-amount')
        today = services.clock().astimezone(fmt.OFFICE_TZ).date()
        due = dates.DateInput('Дата обещания', min_day=today).props('outlined dense')
        due.classes('w-full').mark('promise-date')
        error = ui.label('').classes('text-sm text-negative').mark('promise-error')
        error.set_visibility(False)

        async def save() -> None:
            try:
                view = await service(
                    services.promises.create,
                    actor,
                    borrower_id,
                    parse_amount(amount.value or ''),
                    parse_day(due.value or ''),
                    source=source,
                )
            except ServiceError as refusal:
                error.set_text(refusal.message)
                error.set_visibility(True)
                return
            dialog.close()
            ui.notify(
                f'Обещание записано: {fmt.money(view.amount)} до {fmt.day(view.due_on)}', type='positive'
            )
            if made is not None:
                await made(view)

        with ui.row().classes('w-full justify-end'):
            ui.button('Отмена', on_click=dialog.close).props('flat')
            ui.button('Записать', on_click=save).mark('promise-save')
    _open_once(dialog)


def _open_once(dialog: ui.dialog) -> None:
    """Open a dialog made for one use: gone from the page once closed (a card may open many)."""
    dialog.on_value_change(lambda event: None if event.value else dialog.delete())
    dialog.open()


class PromisePanel:
    """The card's «Обещания оплаты»: read and drawn a moment after the card; ``refresh`` redraws it."""

    def __init__(self, services: Services, actor: Actor, borrower_id: int) -> None:
        self.services, self.actor, self.borrower_id = services, actor, borrower_id
        with ui.card().classes('w-full').props('flat bordered') as self.box:
            with ui.row().classes('w-full items-center gap-2'):
                ui.icon('event_available', size='sm').classes('text-primary')
                ui.label('Обещания оплаты').classes('crm-panel-title')
                ui.space()
                ui.button('Добавить обещание', icon='add', on_click=self.open_dialog).props(
                    'outline dense no-caps'
                ).mark('promise-new')
            self.rows = ui.column().classes('w-full gap-1')
        self._anchor = ui.timer(0.05, self.refresh, once=True)

    @property
    def gone(self) -> bool:
        return self.box.is_deleted

    def open_dialog(self) -> None:
        promise_dialog(self.services, self.actor, self.borrower_id, made=self._made)

    async def _made(self, _: PromiseView) -> None:
        await self.refresh()  # the HistoryChanged that follows redraws it again, in every tab

    async def refresh(self) -> None:
        promises = await service(self.services.promises.of_borrower, self.borrower_id)
        if self.gone:  # the card was replaced meanwhile
            return
        self.rows.clear()
        with self.rows:
            if not promises:
                ui.label('Обещаний нет').classes('text-sm text-gray-600')
            for promise in promises[:SHOWN]:
                self._row(promise)
            if len(promises) > SHOWN:
                ui.label(f'и ещё {len(promises) - SHOWN}').classes('text-sm text-gray-600')

    def _row(self, promise: PromiseView) -> None:
        with ui.row().classes('w-full items-center gap-4 no-wrap').mark(f'promise-{promise.id}'):
            ui.label(f'до {fmt.day(promise.due_on)}').classes('w-28')
            ui.label(fmt.money(promise.amount)).classes('w-32 text-right')
            paid = f'оплачено {fmt.money(promise.paid_amount)}' if promise.paid_amount else ''
            ui.label(paid).classes('w-44 text-sm text-gray-600')
            ui.badge(PROMISE_STATUS_LABELS[promise.status], color=STATUS_COLORS[promise.status])
            source = PROMISE_SOURCE_LABELS[promise.source]
            ui.label(f'{source} · {fmt.moment(promise.created_at)}').classes('text-sm text-gray-600')
            ui.space()
            if promise.status == PromiseStatus.OPEN:
                ui.button('Отменить', on_click=lambda p=promise: self.confirm_cancel(p)).props(
                    'flat dense no-caps color=negative'
                )

    def confirm_cancel(self, promise: PromiseView) -> None:
        with ui.dialog() as dialog, ui.card():
            ui.label('Отменить обещание?').classes('text-lg font-semibold')
            ui.label(f'{fmt.money(promise.amount)} до {fmt.day(promise.due_on)} станет «Отменено».')

            async def cancel() -> None:
                dialog.close()
                try:
                    await service(self.services.promises.cancel, self.actor, promise.id)
                except ServiceError as refusal:
                    ui.notify(refusal.message, type='warning', multi_line=True)
                else:
                    ui.notify('Обещание отменено', type='positive')
                await self.refresh()

            with ui.row().classes('w-full justify-end'):
                ui.button('Нет', on_click=dialog.close).props('flat')
                ui.button('Да, отменить', on_click=cancel).props('color=negative')
        _open_once(dialog)
