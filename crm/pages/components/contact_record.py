"""«Добавить запись» on the card: a note, or a contact that was not a CRM call or message (a visit, a
letter, a call on another phone), with its result, comment and moment (``ContactRecordService.record``).

A refusal (bad input, a legal status against a visit) is shown in the dialog, which stays open with what
was typed. A contact that broke a 230-FZ rule is recorded all the same and the rule it broke stays on
screen as a warning until the operator closes it. The history shows the record through the
``HistoryChanged`` the service publishes (in every tab that shows the card).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from nicegui import ui

from crm.bootstrap import Services
from crm.domain import CHANNEL_LABELS
from crm.domain import formatting as fmt
from crm.domain.actor import Actor
from crm.domain.contact_records import RECORD_KINDS, ResultNeed
from crm.domain.errors import ServiceError
from crm.pages.components import dates
from crm.pages.off_loop import service
from crm.services.call_views import ResultOption

CHANNELS = {channel: CHANNEL_LABELS[channel] for channel in RECORD_KINDS}


def add_button(
    services: Services, actor: Actor, borrower_id: int, options: Callable[[], list[ResultOption]]
) -> ui.button:
    """The card's «Добавить запись»; ``options``: the active results as the tab knows them when clicked."""
    return (
        ui.button(
            'Добавить запись',
            icon='post_add',
            on_click=lambda: record_dialog(services, actor, borrower_id, options()),
        )
        .props('flat dense no-caps')
        .mark('record-new')
    )


def _office(moment: datetime | None) -> datetime | None:
    """A wall-clock moment typed in office (Moscow) time, as UTC."""
    return moment.replace(tzinfo=fmt.OFFICE_TZ).astimezone(UTC) if moment is not None else None


def record_dialog(services: Services, actor: Actor, borrower_id: int, options: list[ResultOption]) -> None:
    """Channel, result, comment, when; the promise's amount and date or the callback's time when the
    result needs them."""
    needs = {o.code: (o.needs_promise, o.needs_callback) for o in options}
    now = services.clock().astimezone(fmt.OFFICE_TZ)
    with ui.dialog() as dialog, ui.card().classes('w-[34rem]'):
        ui.label('Новая запись').classes('text-lg font-semibold')
        channel = ui.select(CHANNELS, label='Вид записи', value='note').props('outlined dense')
        channel.classes('w-full').mark('record-channel')
        result = ui.select({o.code: o.name for o in options}, label='Результат').props(
            'outlined dense clearable'
        )
        result.classes('w-full').mark('record-result')
        with ui.row().classes('w-full gap-3 no-wrap'):
            amount = ui.input('Сумма обещания, ₽').props('outlined dense inputmode=decimal').classes('flex-1')
            amount.mark('record-amount')
            due = (
                dates.DateInput('Дата платежа', min_day=now.date()).props('outlined dense').classes('flex-1')
            )
            due.mark('record-promise-date')
        callback = dates.MomentInput('Перезвонить (МСК)').props('outlined dense').classes('w-full')
        callback.mark('record-callback')
        when = dates.MomentInput('Когда был контакт (МСК)').props('outlined dense').classes('w-full')
        when.mark('record-at').set_value(now.strftime(dates.MOMENT_FORMAT))
        comment = ui.textarea('Комментарий').props('outlined dense autogrow').classes('w-full')
        comment.mark('record-comment')
        error = ui.label('').classes('text-sm text-negative').mark('record-error')
        error.set_visibility(False)

        def wanted() -> tuple[bool, bool]:
            """Whether the chosen result needs a promise, a callback."""
            return needs.get(result.value or '', (False, False)) if result.visible else (False, False)

        def show_fields() -> None:
            kind = RECORD_KINDS[channel.value or 'note']
            result.set_visibility(kind.result != ResultNeed.NONE)
            promise, again = wanted()
            amount.set_visibility(promise)
            due.set_visibility(promise)
            callback.set_visibility(again)

        channel.on_value_change(show_fields)
        result.on_value_change(show_fields)
        show_fields()

        def refuse(message: str) -> None:
            error.set_text(message)
            error.set_visibility(True)

        async def save() -> None:
            try:
                at, promise_day, again_at = when.moment, due.day, callback.moment
            except dates.BadDate as bad:
                refuse(str(bad))
                return
            promise, again = wanted()
            try:
                recorded = await service(
                    services.contact_records.record,
                    actor,
                    borrower_id,
                    channel=channel.value or '',
                    result_code=(result.value or None) if result.visible else None,
                    comment=comment.value or '',
                    at=_office(at),
                    promise_amount=(amount.value or None) if promise else None,
                    promise_date=promise_day if promise else None,
                    callback_at=_office(again_at) if again else None,
                )
            except ServiceError as refusal:
                refuse(refusal.message)
                return
            dialog.close()
            ui.notify(f'Запись добавлена: {CHANNELS[recorded.channel]}', type='positive')
            if recorded.warning:
                ui.notify(recorded.warning, type='warning', multi_line=True, timeout=0, close_button='OK')

        with ui.row().classes('w-full justify-end'):
            ui.button('Отмена', on_click=dialog.close).props('flat')
            ui.button('Записать', on_click=save).mark('record-save')
    dialog.on_value_change(lambda event: None if event.value else dialog.delete())
    dialog.open()
