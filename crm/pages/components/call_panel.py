"""The call panel: state of the operator's call, the call buttons, and the result form after a call."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from html import escape
from typing import Any, Protocol

from nicegui import ui

from crm.bootstrap import Services
from crm.domain import formatting as fmt
from crm.domain.actor import Actor
from crm.domain.contact_rules import Verdict
from crm.domain.field_visibility import mask_phone
from crm.domain.identifiers import format_phone
from crm.domain.links import web_url
from crm.domain.telephony import CallState
from crm.pages.components.dates import BadDate, DateInput, MomentInput
from crm.pages.components.message_dialogs import MessageButtons
from crm.pages.off_loop import service
from crm.services.call_views import CallResult, CallView, OtherBorrower, ResultOption
from crm.services.views import BorrowerCard, Phone


class CallHost(Protocol):
    """What the call panel needs of the tab it is drawn in (the workspace)."""

    services: Services
    actor: Actor
    call: CallView | None
    card: BorrowerCard | None
    verdict: Verdict | None
    result_options: list[ResultOption]

    async def act(self, action: Any, *args: Any, **kwargs: Any) -> CallView | None: ...

    async def link_and_show(self, borrower_id: int) -> None: ...

    async def dial_phone(self, phone: Phone) -> None: ...


STATE_STYLES: dict[str, tuple[str, str]] = {
    'ringing': ('ring_volume', 'bg-green-100 border-green-600 text-green-900'),
    'dialing': ('phone_forwarded', 'bg-blue-50 border-blue-600 text-blue-900'),
    'active': ('phone_in_talk', 'bg-green-50 border-green-700 text-green-900'),
    'on_hold': ('phone_paused', 'bg-amber-50 border-amber-600 text-amber-900'),
    'transferred': ('phone_forwarded', 'bg-slate-100 border-slate-500 text-slate-800'),
    'ended': ('call_end', 'bg-slate-100 border-slate-500 text-slate-800'),
}
# The server says how long the call has lasted; the browser counts on from when it heard it, by its own
# clock (which may differ from the server's, e.g. under CRM_CLOCK_START).
CALL_TIMER_JS = """
<script>
setInterval(() => {
  for (const el of document.querySelectorAll('[data-call-elapsed]')) {
    if (!el.dataset.callBase) el.dataset.callBase = Date.now() - 1000 * Number(el.dataset.callElapsed);
    const s = Math.max(0, Math.floor((Date.now() - Number(el.dataset.callBase)) / 1000));
    el.textContent = Math.floor(s / 60) + ':' + String(s % 60).padStart(2, '0');
  }
}, 1000);
</script>
"""
BUSY = 'Сначала завершите текущий звонок'
RESULT_FIRST = 'Сначала сохраните результат предыдущего звонка'
NO_EXTENSION = 'У вас нет внутреннего номера: звонить можно только с привязанного телефона'


class CallPanel:
    """Built once per tab and changed in place: a ring then sends a few changed texts and props, not a
    new panel (the browser re-renders the page for every update; new Quasar components cost most)."""

    def __init__(self, ws: CallHost) -> None:
        self.ws = ws
        self.box = ui.card().props('flat bordered')
        self.box.set_visibility(False)  # until update() knows there is a call or a card to show
        with self.box:
            with ui.row().classes('w-full items-center gap-4'):
                self.icon = ui.icon('call', size='md')
                self.status = ui.html('', sanitize=False)  # markup built from escaped data in _status
                ui.space()
                with ui.row().classes('items-center gap-2'):
                    self.new_call = CallButton('Новый звонок', 'add_call', lambda: new_call(ws), 'positive')
                    self.dial = CallButton('Набрать номер', 'dialpad', lambda: dial_dialog(ws))
                    self.hold = CallButton('Удерживать звонок', 'pause', lambda: hold_or_resume(ws))
                    self.transfer = CallButton(
                        'Перевести звонок', 'phone_forwarded', lambda: transfer_dialog(ws)
                    )
                    self.hangup = CallButton('Завершить звонок', 'call_end', lambda: hang_up(ws), 'negative')
                self.messages = MessageButtons(ws)  # пароль ЛК, SMS, E-mail
            with ui.row().classes('items-center gap-1 text-sm text-red-800') as self.refusal_row:
                ui.icon('block', size='xs')
                self.refusal = ui.label('').props('data-testid=call-refusal')
            self.others = ui.row().classes('items-center gap-2 text-sm')
            self.result_area = ui.column().classes('w-full gap-0')
        self._others_shown: tuple[OtherBorrower, ...] = ()
        self._result_for: str | None = None
        self.result: ResultForm | None = None  # made at the first call that needs it, then reused
        self._style = ''

    def update(self) -> None:
        ws = self.ws
        call, card = ws.call, ws.card
        self.box.set_visibility(call is not None or card is not None)
        icon, style = STATE_STYLES.get(call.state if call else '', ('call', 'bg-white border-slate-300'))
        if style != self._style:  # only what changed goes to the browser
            self._style = style
            self.box.classes(replace=f'w-full border-l-4 {style}')
        set_prop(self.icon, 'name', icon)
        masked = ws.card is not None and 'phones' in ws.card.masked  # «Видимость полей»: phones masked
        self.status.set_content(_status(call, ws.services.clock(), masked=masked))
        self._buttons()
        reason = None
        if card is not None and ws.verdict is not None and not ws.verdict.allowed:
            reason = ws.verdict.reason or 'Звонок запрещён'
            if ws.verdict.next_allowed_at:
                reason += f'. Можно будет: {fmt.moment(ws.verdict.next_allowed_at)} МСК'
        self.refusal_row.set_visibility(reason is not None)
        self.refusal.set_text(reason or '')
        self._other_holders(call.others if call is not None else ())
        self._result_form(call if call is not None and call.needs_result else None)

    def _buttons(self) -> None:
        ws = self.ws
        call, card = ws.call, ws.card
        live = call is not None and call.live
        pending = call is not None and call.needs_result
        busy_reason = BUSY if live else RESULT_FIRST if pending else None
        if busy_reason is None and not ws.actor.extension:
            busy_reason = NO_EXTENSION
        # with a card shown, a number typed by hand is a call to that borrower: the same law applies
        refused = card is not None and ws.verdict is not None and not ws.verdict.allowed
        dial_reason = busy_reason or (ws.verdict.reason if refused and ws.verdict else None)
        new_call_reason = busy_reason
        if new_call_reason is None and card is not None and not card.phones:
            hidden = 'phones' in card.hidden  # «Видимость полей»
            new_call_reason = 'Телефоны скрыты для вашей роли' if hidden else 'У заёмщика нет телефона'
        self.new_call.show(card is not None, new_call_reason or dial_reason)
        self.dial.show(True, dial_reason)
        on_hold = call is not None and call.state == CallState.ON_HOLD
        self.hold.relabel(
            'Вернуть звонок' if on_hold else 'Удерживать звонок', 'play_arrow' if on_hold else 'pause'
        )
        talking = call is not None and call.state.talking
        self.hold.show(True, None if talking else 'Нет разговора')
        self.transfer.show(True, None if talking else 'Нет разговора')
        self.hangup.show(True, None if live else 'Нет звонка')
        self.messages.update(card)

    def _other_holders(self, others: tuple[OtherBorrower, ...]) -> None:
        """Other borrowers with the caller's number; redrawn only when they change."""
        if others == self._others_shown:
            return
        self._others_shown = others
        self.others.clear()
        self.others.set_visibility(bool(others))
        with self.others:
            if others:
                ui.label('Этот номер также у:')
            for other in others:
                ui.button(other.full_name, on_click=lambda o=other: self.ws.link_and_show(o.id)).props(
                    'flat dense no-caps size=sm'
                )

    def _result_form(self, call: CallView | None) -> None:
        """The result form while a finished call waits for it; kept as typed until the call changes."""
        call_id = call.call_id if call is not None else None
        if call_id == self._result_for:
            return
        self._result_for = call_id
        if call is not None and self.result is None:
            with self.result_area:
                self.result = ResultForm(self.ws)
        if self.result is not None:
            self.result.show(call)


class CallButton:
    """A call button; when it can't be used it is disabled and says why on hover (the title)."""

    def __init__(self, label: str, icon: str, action, color: str = 'primary') -> None:
        self.wrapper = ui.element('span')
        with self.wrapper:
            self.button = ui.button(label, icon=icon, on_click=action, color=color).props(
                'no-caps unelevated'
            )

    def show(self, visible: bool, refusal: str | None) -> None:
        self.wrapper.set_visibility(visible)
        self.button.set_enabled(refusal is None)
        set_prop(self.wrapper, 'title', refusal)

    def relabel(self, label: str, icon: str) -> None:
        self.button.set_text(label)
        set_prop(self.button, 'icon', icon)


def set_prop(element: ui.element, name: str, value: str | None) -> None:
    """Change a prop (None removes it) only if it differs: an unchanged element is not sent again."""
    if element.props.get(name) == value:
        return
    if value is None:
        element.props.pop(name, None)
    else:
        element.props[name] = value


def _status(call: CallView | None, now: datetime, *, masked: bool = False) -> str:
    """The call's state, number (masked when the card shows phones masked), caller and timer as markup
    (every datum escaped)."""
    if call is None:
        return '<div class="font-medium">Нет активного звонка</div>'
    title = call.state_label
    if call.state == CallState.RINGING:
        title += ' — снимите трубку'
    if call.state == CallState.TRANSFERRED and call.transferred_to:
        title += f' на {call.transferred_to}'
    who = call.borrower_name or 'Неизвестный номер'
    shown_number = mask_phone(call.number) if masked and call.borrower_id else format_phone(call.number)
    lines = [
        f'<div class="text-base font-semibold" data-testid="call-state">{escape(title)}</div>',
        f'<div class="text-sm">{escape(shown_number)} · {escape(who)}</div>',
    ]
    if call.live:
        # the browser counts the seconds (CALL_TIMER_JS): a server push per second per tab would not scale
        start = call.answered_at or call.started_at
        seconds = max(0, int((now - start).total_seconds()))
        shown = fmt.duration(seconds) or '0:00'
        lines.append(f'<div class="text-sm tabular-nums" data-call-elapsed="{seconds}">{shown}</div>')
    elif call.duration_s is not None:
        lines.append(
            f'<div class="text-sm">Длительность {escape(fmt.duration(call.duration_s) or "0:00")}</div>'
        )
    return ''.join(lines)


async def hold_or_resume(ws: CallHost) -> None:
    call = ws.call
    if call is None:
        return
    action = ws.services.calls.resume if call.state == CallState.ON_HOLD else ws.services.calls.hold
    await ws.act(action, call.call_id)


async def hang_up(ws: CallHost) -> None:
    if ws.call is not None:
        await ws.act(ws.services.calls.hangup, ws.call.call_id)


async def new_call(ws: CallHost) -> None:
    card = ws.card
    if card is None or not card.phones:
        return
    primary = next((p for p in card.phones if p.is_primary), card.phones[0])
    await ws.dial_phone(primary)  # by its row: the number may be masked on the card


async def _pick(ws: CallHost, dialog: ui.dialog, number: ui.input, phone: Phone) -> None:
    """A phone of the card in «Набрать номер»: into the field, or, masked, dialled at once by its row."""
    if ws.card is not None and 'phones' in ws.card.masked:
        dialog.close()
        await ws.dial_phone(phone)
    else:
        number.set_value(phone.number)


async def dial_dialog(ws: CallHost) -> None:
    card = ws.card
    with ui.dialog() as dialog, ui.card().classes('w-96'):
        ui.label('Набрать номер').classes('text-lg font-semibold')
        number = ui.input('Номер телефона', placeholder='+7 900 000-00-00').props('outlined autofocus')
        number.classes('w-full')
        if card is not None and card.phones:
            with ui.row().classes('gap-1'):
                for phone in card.phones:
                    pick = partial(_pick, ws, dialog, number, phone)
                    ui.chip(format_phone(phone.number), on_click=pick).props('clickable outline')

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


async def transfer_dialog(ws: CallHost) -> None:
    call = ws.call
    if call is None:
        return
    targets = await service(ws.services.calls.transfer_targets, ws.actor)
    with ui.dialog() as dialog, ui.card().classes('w-96'):
        ui.label('Перевести звонок').classes('text-lg font-semibold')
        options = {ext: f'{ext} — {name}' for ext, name in targets}
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


class ResultForm:
    """What the call came to; required before the next outgoing call. Made once per tab and cleared for
    each call that needs it: a new form per call was ~25 elements (the date and time pickers among them)
    for the event loop to make and the browser to mount, at every call's end."""

    def __init__(self, ws: CallHost) -> None:
        self.ws = ws
        self.call: CallView | None = None
        options = {o.code: o.name for o in ws.result_options}
        self.needs = {o.code: (o.needs_promise, o.needs_callback) for o in ws.result_options}
        with ui.column().classes('w-full gap-2 border-t pt-2') as self.box:
            ui.label('Результат звонка').classes('font-semibold')
            with ui.row().classes('w-full items-start gap-3'):
                self.code = (
                    ui.select(options, label='Результат', on_change=self._show_fields)
                    .props('outlined dense')
                    .classes('w-64')
                    .mark('result-code')
                )
                self.amount = (
                    ui.input('Сумма обещания, ₽').props('outlined dense inputmode=decimal').classes('w-44')
                )
                self.promise_date = DateInput('Дата платежа').props('outlined dense').classes('w-44')
                self.callback = MomentInput('Перезвонить (МСК)').props('outlined dense').classes('w-60')
                self.comment = (
                    ui.textarea('Комментарий').props('outlined dense autogrow').classes('flex-1 min-w-64')
                )
            self.recording = ui.link('Запись разговора', '#', new_tab=True).classes('text-sm')
            ui.button('Сохранить результат', icon='save', on_click=self.save).props('unelevated')

    def show(self, call: CallView | None) -> None:
        """Empty, for ``call`` (hidden when None)."""
        self.call = call
        self.box.set_visibility(call is not None)
        if call is None:
            return
        self.code.set_value(None)
        for field in (self.amount, self.promise_date, self.callback, self.comment):
            field.set_value('')
        self.promise_date.limit(min_day=self.ws.services.clock().astimezone(fmt.OFFICE_TZ).date())
        recording = web_url(call.recording_url)
        self.recording.set_visibility(recording is not None)
        if recording is not None and self.recording.props.get('href') != recording:
            self.recording.props['href'] = recording
        self._show_fields()

    def _show_fields(self) -> None:
        promise, again = self.needs.get(self.code.value or '', (False, False))
        self.amount.set_visibility(promise)
        self.promise_date.set_visibility(promise)
        self.callback.set_visibility(again)

    async def save(self) -> None:
        call = self.call
        if call is None:
            return
        try:
            day, again_at = self.promise_date.day, self.callback.moment
        except BadDate as error:
            ui.notify(str(error), type='warning')
            return
        result = CallResult(
            code=self.code.value or '',
            comment=self.comment.value or '',
            promise_amount=self.amount.value or None,
            promise_date=day,
            callback_at=again_at.replace(tzinfo=fmt.OFFICE_TZ).astimezone(UTC) if again_at else None,
        )
        view = await self.ws.act(self.ws.services.calls.save_result, call.call_id, result)
        if view is not None:
            ui.notify('Результат сохранён', type='positive')
