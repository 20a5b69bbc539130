"""Messages from the card: «Отправить пароль ЛК», «Отправить SMS», «Отправить E-mail» and their dialogs.

The buttons sit in the call panel's row and are drawn once; a button the borrower has no address for
is disabled and says why on hover. A dialog asks the service what it may send (the borrower's addresses
and the 230-FZ verdict for a message now): when the law forbids it, the send button is disabled with the
reason before anything is typed. A template SMS is four clicks from the open card: the button, the
«Вид шаблона» select, the template, «Отправить SMS». A refusal is shown in the dialog, which stays open
with the text as typed; a queued message lands in the history «В очереди» (the service tells every tab).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from nicegui import ui

from crm.bootstrap import Services
from crm.domain.actor import Actor
from crm.domain.errors import ServiceError
from crm.domain.messages import MESSAGE_CHANNEL_LABELS, MessageChannel
from crm.domain.sms_text import sms_parts
from crm.pages.off_loop import service
from crm.services.message_checks import NO_EMAIL, NO_MOBILE, RefusedByLaw, valid_email
from crm.services.messaging import Queued, SendingOptions
from crm.services.templates import TemplateView
from crm.services.views import BorrowerCard

PASSWORD_NOTE = (
    'Новый пароль от личного кабинета получит только заёмщик: сотруднику он не показывается '
    'и нигде не сохраняется в открытом виде.'
)

HIDDEN_FROM_ROLE = 'Для вашей роли {} скрыты настройками «Видимость полей»'


class MessageHost(Protocol):
    """What the dialogs need of the tab they are opened in (the workspace)."""

    services: Services
    actor: Actor
    card: BorrowerCard | None


class MessageButtons:
    """The three buttons of the call panel's row, built once and changed in place."""

    def __init__(self, ws: MessageHost) -> None:
        self.ws = ws
        self.wrapper = ui.row().classes('items-center gap-2')
        with self.wrapper:
            self.password = _Button('Отправить пароль ЛК', 'key', lambda: password_dialog(ws))
            self.sms = _Button('Отправить SMS', 'sms', lambda: sms_dialog(ws))
            self.email = _Button('Отправить E-mail', 'mail', lambda: email_dialog(ws))

    def update(self, card: BorrowerCard | None) -> None:
        self.wrapper.set_visibility(card is not None)
        if card is None:
            return
        mobile = any(phone.kind == 'mobile' for phone in card.phones)
        email = valid_email(card.email) or ('email' in card.masked and card.email is not None)  # shown masked
        no_mobile = HIDDEN_FROM_ROLE.format('телефоны') if 'phones' in card.hidden else NO_MOBILE
        no_email = HIDDEN_FROM_ROLE.format('e-mail') if 'email' in card.hidden else NO_EMAIL
        self.sms.refuse(None if mobile else no_mobile)
        self.email.refuse(None if email else no_email)
        self.password.refuse(None if mobile or email else f'{no_mobile}; {no_email}')


class _Button:
    """A button that, when it can't be used, is disabled and says why on hover (the wrapper's title)."""

    def __init__(self, label: str, icon: str, action: Callable[[], Awaitable[None]]) -> None:
        self.wrapper = ui.element('span')
        with self.wrapper:
            self.button = ui.button(label, icon=icon, on_click=action).props('no-caps outline')

    def refuse(self, reason: str | None) -> None:
        self.button.set_enabled(reason is None)
        if self.wrapper.props.get('title') != reason:
            if reason is None:
                self.wrapper.props.pop('title', None)
            else:
                self.wrapper.props['title'] = reason
            self.wrapper.update()


class _Refusal:
    """The dialog's line for a refusal (the law, a bad text): shown until the next attempt."""

    def __init__(self) -> None:
        with ui.row().classes('w-full items-start gap-1 text-sm text-red-800 no-wrap') as self.row:
            ui.icon('block', size='xs').classes('mt-0.5')
            self.label = ui.label('').props('data-testid=message-refusal').mark('message-refusal')
        self.show(None)

    def show(self, reason: str | None) -> None:
        self.label.set_text(reason or '')
        self.row.set_visibility(reason is not None)


async def _options(ws: MessageHost) -> SendingOptions | None:
    """The borrower's addresses and the law's verdict, read off the loop; None (said) when refused."""
    if ws.card is None:
        return None
    try:
        return await service(ws.services.messaging.options, ws.actor, ws.card.id)
    except ServiceError as error:
        ui.notify(error.message, type='warning', multi_line=True)
        return None


def _template_options(templates: list[TemplateView]) -> dict[int, str]:
    """«Вид шаблона»: each template labelled by its kind, in the kinds' order."""
    return {t.id: f'{t.kind_label} · {t.name}' for t in templates}


async def sms_dialog(ws: MessageHost) -> None:
    await _message_dialog(ws, MessageChannel.SMS)


async def email_dialog(ws: MessageHost) -> None:
    await _message_dialog(ws, MessageChannel.EMAIL)


async def _message_dialog(ws: MessageHost, channel: MessageChannel) -> None:
    options = await _options(ws)
    if options is None:
        return
    templates = await service(ws.services.templates.offered, ws.actor, channel.value)
    _MessageDialog(ws, options.borrower_id, channel, options, templates).dialog.open()


class _MessageDialog:
    """«Шаблон SMS сообщения» / «Шаблон E-mail сообщения»: a template fills the text, which may be edited;
    the counter under it follows every change (encoding and parts of an SMS)."""

    def __init__(
        self,
        ws: MessageHost,
        borrower_id: int,
        channel: MessageChannel,
        options: SendingOptions,
        templates: list[TemplateView],
    ) -> None:
        self.ws, self.borrower_id, self.channel = ws, borrower_id, channel
        self.sms = channel is MessageChannel.SMS
        self.blocked = options.refusal(channel)  # the law or a missing address, known before typing
        label = MESSAGE_CHANNEL_LABELS[channel]
        with ui.dialog() as self.dialog, ui.card().classes('w-[36rem] max-w-full'):
            ui.label(f'Шаблон {label} сообщения').classes('text-lg font-semibold')
            address = options.mobile if self.sms else options.email
            ui.label(f'Кому: {address or "—"}').classes('text-sm text-gray-700')
            self.kind = ui.select(_template_options(templates), label='Вид шаблона', on_change=self.fill)
            self.kind.props('outlined autofocus data-testid=message-template').classes('w-full')
            self.kind.mark('message-template')
            self.subject = ui.input('Тема').props('outlined').classes('w-full').mark('message-subject')
            self.subject.set_visibility(not self.sms)
            self.body = ui.textarea('Текст к отправке', on_change=self.count).classes('w-full')
            self.body.props('outlined autogrow data-testid=message-text').mark('message-text')
            self.counter = ui.label('').classes('text-xs text-gray-600 tabular-nums')
            self.counter.props('data-testid=message-counter').mark('message-counter')
            self.refusal = _Refusal()
            with ui.row().classes('w-full justify-end'):
                ui.button('Отмена', on_click=self.dialog.close).props('flat')
                self.send = ui.button(f'Отправить {label}', icon='send', on_click=self.submit)
                self.send.props('data-testid=message-send').mark('message-send')
        self.count()
        self.allow(self.blocked)

    def count(self) -> None:
        text = self.body.value or ''
        self.counter.set_text(sms_parts(text).describe() if self.sms else f'{len(text.strip())} симв.')

    def allow(self, reason: str | None) -> None:
        self.blocked = reason
        self.send.set_enabled(reason is None)
        self.refusal.show(reason)

    async def fill(self) -> None:
        """The chosen template rendered for the borrower into «Тема» and «Текст к отправке»."""
        if self.kind.value is None:
            return
        self.send.set_enabled(False)  # until the text is there
        messaging = self.ws.services.messaging
        try:
            composed = await service(messaging.compose, self.ws.actor, self.borrower_id, self.kind.value)
        except ServiceError as error:
            self.refusal.show(error.message)
            self.body.set_value('')
        else:
            self.refusal.show(self.blocked)
            self.subject.set_value(composed.subject or '')
            self.body.set_value(composed.text)
        self.send.set_enabled(self.blocked is None)

    async def submit(self) -> None:
        """Send; a refusal stays in the dialog with the text as typed (the law's also disables sending)."""
        messaging, actor, text = self.ws.services.messaging, self.ws.actor, self.body.value or ''
        self.send.props('loading')
        try:
            if self.sms:
                queued = await service(
                    messaging.send_sms, actor, self.borrower_id, text, template_id=self.kind.value
                )
            else:
                subject = self.subject.value or ''
                queued = await service(
                    messaging.send_email, actor, self.borrower_id, subject, text, template_id=self.kind.value
                )
        except RefusedByLaw as refused:
            self.allow(refused.message)
            return
        except ServiceError as error:
            self.refusal.show(error.message)
            return
        finally:
            self.send.props(remove='loading')
        self.dialog.close()
        _queued(queued)


def _queued(queued: Queued) -> None:
    what = 'SMS поставлено' if queued.channel is MessageChannel.SMS else 'Письмо поставлено'
    ui.notify(f'{what} в очередь', type='positive')


async def password_dialog(ws: MessageHost) -> None:
    """«Отправить пароль ЛК»: by SMS or e-mail (those the borrower has); the operator never sees it."""
    options = await _options(ws)
    if options is None:
        return
    borrower_id = options.borrower_id
    addresses = {MessageChannel.SMS: options.mobile, MessageChannel.EMAIL: options.email}
    choices = {
        channel.value: f'{MESSAGE_CHANNEL_LABELS[channel]} ({addresses[channel]})'
        for channel in options.password_channels
    }
    with ui.dialog() as dialog, ui.card().classes('w-[32rem] max-w-full'):
        ui.label('Отправить пароль ЛК').classes('text-lg font-semibold')
        ui.label(PASSWORD_NOTE).classes('text-sm')
        first = next(iter(choices), None)
        channel = ui.radio(choices, value=first).props('data-testid=password-channel')
        refusal = _Refusal()
        if not choices:
            refusal.show(f'{NO_MOBILE} и e-mail')
        with ui.row().classes('w-full justify-end'):
            ui.button('Отмена', on_click=dialog.close).props('flat')
            send = ui.button('Отправить пароль ЛК', icon='key').props('data-testid=password-send')
            send.mark('password-send')
        send.set_enabled(bool(choices))

        async def submit() -> None:
            send.props('loading')
            try:
                queued = await service(
                    ws.services.messaging.send_password, ws.actor, borrower_id, channel.value or ''
                )
            except ServiceError as error:
                refusal.show(error.message)
                return
            finally:
                send.props(remove='loading')
            dialog.close()
            ui.notify(
                f'Пароль ЛК поставлен в очередь: {MESSAGE_CHANNEL_LABELS[queued.channel]} на {queued.to}',
                type='positive',
            )

        send.on_click(submit)
    dialog.open()
