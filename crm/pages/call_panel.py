"""The call panel: state of the operator's call, the call buttons, and the result form after a call."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from nicegui import run, ui

from crm.db.normalize import format_phone
from crm.pages import format as fmt
from crm.services.calls import CallResult, CallView

if TYPE_CHECKING:
    from crm.pages.workspace import Workspace

STATE_STYLES = {
    'ringing': ('ring_volume', 'bg-green-100 border-green-600 text-green-900'),
    'dialing': ('phone_forwarded', 'bg-blue-50 border-blue-600 text-blue-900'),
    'active': ('phone_in_talk', 'bg-green-50 border-green-700 text-green-900'),
    'on_hold': ('phone_paused', 'bg-amber-50 border-amber-600 text-amber-900'),
    'transferred': ('phone_forwarded', 'bg-slate-100 border-slate-500 text-slate-800'),
    'ended': ('call_end', 'bg-slate-100 border-slate-500 text-slate-800'),
}
CALL_TIMER_JS = """
<script>
setInterval(() => {
  for (const el of document.querySelectorAll('[data-call-since]')) {
    const s = Math.max(0, Math.floor((Date.now() - Number(el.dataset.callSince)) / 1000));
    el.textContent = Math.floor(s / 60) + ':' + String(s % 60).padStart(2, '0');
  }
}, 1000);
</script>
"""
BUSY = 'Сначала завершите текущий звонок'
RESULT_FIRST = 'Сначала сохраните результат предыдущего звонка'


def render(ws: Workspace) -> None:
    call, card = ws.call, ws.card
    if call is None and card is None:
        return
    icon, style = STATE_STYLES.get(call.state if call else '', ('call', 'bg-white border-slate-300'))
    with ui.card().classes(f'w-full border-l-4 {style}').props('flat bordered'):
        with ui.row().classes('w-full items-center gap-4'):
            ui.icon(icon, size='md')
            status(call)
            ui.space()
            buttons(ws)
        if ws.card is not None and ws.verdict is not None and not ws.verdict.allowed:
            with ui.row().classes('items-center gap-1 text-sm text-red-800'):
                ui.icon('block', size='xs')
                reason = ws.verdict.reason or 'Звонок запрещён'
                if ws.verdict.next_allowed_at:
                    reason += f'. Можно будет: {fmt.moment(ws.verdict.next_allowed_at)} МСК'
                ui.label(reason).props('data-testid=call-refusal')
        if call is not None and call.others:
            with ui.row().classes('items-center gap-2 text-sm'):
                ui.label('Этот номер также у:')
                for other in call.others:
                    ui.button(other.full_name, on_click=lambda o=other: ws.link_and_show(o.id)).props(
                        'flat dense no-caps size=sm'
                    )
        if call is not None and call.needs_result:
            result_form(ws, call)


def status(call: CallView | None) -> None:
    with ui.column().classes('gap-0'):
        if call is None:
            ui.label('Нет активного звонка').classes('font-medium')
            return
        title = call.state_label
        if call.state == 'ringing':
            title += ' — снимите трубку'
        if call.state == 'transferred' and call.transferred_to:
            title += f' на {call.transferred_to}'
        ui.label(title).classes('text-base font-semibold').props('data-testid=call-state')
        who = call.borrower_name or 'Неизвестный номер'
        ui.label(f'{format_phone(call.number)} · {who}').classes('text-sm')
        if call.live:
            # the browser counts the seconds (CALL_TIMER_JS): a server push per second per tab would not scale
            start = call.answered_at or call.started_at
            seconds = max(0, int((datetime.now(UTC) - start).total_seconds()))
            ui.label(fmt.duration(seconds) or '0:00').classes('text-sm tabular-nums').props(
                f'data-call-since={int(start.timestamp() * 1000)}'
            )
        elif call.duration_s is not None:
            ui.label(f'Длительность {fmt.duration(call.duration_s) or "0:00"}').classes('text-sm')


def buttons(ws: Workspace) -> None:
    call, card = ws.call, ws.card
    live = call is not None and call.live
    pending = call is not None and call.needs_result
    busy_reason = BUSY if live else RESULT_FIRST if pending else None
    with ui.row().classes('items-center gap-2'):
        new_call_reason = busy_reason
        if new_call_reason is None and card is not None and not card.phones:
            new_call_reason = 'У заёмщика нет телефона'
        if new_call_reason is None and ws.verdict is not None and not ws.verdict.allowed:
            new_call_reason = ws.verdict.reason
        if card is not None:
            button('Новый звонок', 'add_call', lambda: new_call(ws), new_call_reason, color='positive')
        button('Набрать номер', 'dialpad', lambda: dial_dialog(ws), busy_reason)
        if call is not None and call.state == 'on_hold':
            button(
                'Вернуть звонок', 'play_arrow', lambda: ws.act(ws.services.calls.resume, call.call_id), None
            )
        else:
            hold_reason = None if call is not None and call.state == 'active' else 'Нет разговора'
            button(
                'Удерживать звонок',
                'pause',
                lambda: ws.act(ws.services.calls.hold, call.call_id),
                hold_reason,
            )
        transfer_reason = (
            None if call is not None and call.state in ('active', 'on_hold') else 'Нет разговора'
        )
        button('Перевести звонок', 'phone_forwarded', lambda: transfer_dialog(ws), transfer_reason)
        end_reason = None if live else 'Нет звонка'
        button(
            'Завершить звонок',
            'call_end',
            lambda: ws.act(ws.services.calls.hangup, call.call_id),
            end_reason,
            color='negative',
        )


def button(label: str, icon: str, action, refusal: str | None, color: str = 'primary') -> ui.button:
    """A call button; when it can't be used it is disabled and says why on hover."""
    with ui.element('span'):
        widget = ui.button(label, icon=icon, on_click=action, color=color).props('no-caps unelevated')
        if refusal:
            widget.disable()
            ui.tooltip(refusal)
    return widget


async def new_call(ws: Workspace) -> None:
    card = ws.card
    if card is None or not card.phones:
        return
    primary = next((p for p in card.phones if p.is_primary), card.phones[0])
    await ws.act(ws.services.calls.dial, primary.number, borrower_id=card.id)


async def dial_dialog(ws: Workspace) -> None:
    card = ws.card
    with ui.dialog() as dialog, ui.card().classes('w-96'):
        ui.label('Набрать номер').classes('text-lg font-semibold')
        number = ui.input('Номер телефона', placeholder='+7 900 000-00-00').props('outlined autofocus')
        number.classes('w-full')
        if card is not None and card.phones:
            with ui.row().classes('gap-1'):
                for phone in card.phones:
                    ui.chip(
                        format_phone(phone.number), on_click=lambda p=phone: number.set_value(p.number)
                    ).props('clickable outline')

        async def call() -> None:
            view = await ws.act(
                ws.services.calls.dial, number.value or '', borrower_id=card.id if card is not None else None
            )
            if view is not None:
                dialog.close()

        number.on('keydown.enter', call)
        with ui.row().classes('w-full justify-end'):
            ui.button('Отмена', on_click=dialog.close).props('flat')
            ui.button('Позвонить', icon='call', on_click=call, color='positive')
    dialog.open()


async def transfer_dialog(ws: Workspace) -> None:
    call = ws.call
    if call is None:
        return
    targets = await run.io_bound(ws.services.calls.transfer_targets, ws.actor)
    with ui.dialog() as dialog, ui.card().classes('w-96'):
        ui.label('Перевести звонок').classes('text-lg font-semibold')
        options = {ext: f'{ext} — {name}' for ext, name in targets or []}
        target = (
            ui.select(options, label='Внутренний номер', with_input=True).props('outlined').classes('w-full')
        )

        async def transfer() -> None:
            view = await ws.act(ws.services.calls.transfer, call.call_id, target.value or '')
            if view is not None:
                dialog.close()

        with ui.row().classes('w-full justify-end'):
            ui.button('Отмена', on_click=dialog.close).props('flat')
            ui.button('Перевести', icon='phone_forwarded', on_click=transfer)
    dialog.open()


def result_form(ws: Workspace, call: CallView) -> None:
    """What the call came to; required before the next outgoing call."""
    options = {o.code: o.name for o in ws.result_options}
    needs = {o.code: (o.needs_promise, o.needs_callback) for o in ws.result_options}
    with ui.column().classes('w-full gap-2 border-t pt-2'):
        ui.label('Результат звонка').classes('font-semibold')
        with ui.row().classes('w-full items-start gap-3'):
            code = (
                ui.select(options, label='Результат')
                .props('outlined dense')
                .classes('w-64')
                .mark('result-code')
            )
            amount = ui.input('Сумма обещания, ₽').props('outlined dense inputmode=decimal').classes('w-44')
            promise_date = (
                ui.input('Дата платежа').props('outlined dense type=date stack-label').classes('w-44')
            )
            callback = ui.input('Перезвонить (МСК)').props('outlined dense type=datetime-local stack-label')
            callback.classes('w-60')
            comment = ui.textarea('Комментарий').props('outlined dense autogrow').classes('flex-1 min-w-64')

        def show_fields() -> None:
            promise, again = needs.get(code.value or '', (False, False))
            amount.set_visibility(promise)
            promise_date.set_visibility(promise)
            callback.set_visibility(again)

        code.on_value_change(show_fields)
        show_fields()
        if call.recording_url:
            ui.link('Запись разговора', call.recording_url, new_tab=True).classes('text-sm')

        async def save() -> None:
            result = CallResult(
                code=code.value or '',
                comment=comment.value or '',
                promise_amount=amount.value or None,
                promise_date=_date(promise_date.value),
                callback_at=_office_moment(callback.value),
            )
            view = await ws.act(ws.services.calls.save_result, call.call_id, result)
            if view is not None:
                ui.notify('Результат сохранён', type='positive')

        ui.button('Сохранить результат', icon='save', on_click=save).props('unelevated')


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _office_moment(value: str | None) -> datetime | None:
    """A datetime-local field's value, read as office (Moscow) time."""
    try:
        return datetime.fromisoformat(value).replace(tzinfo=fmt.OFFICE_TZ).astimezone(UTC) if value else None
    except ValueError:
        return None
