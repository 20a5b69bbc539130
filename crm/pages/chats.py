"""«Чаты»: the chats waiting for this operator and the common queue (unknown senders are linked here);
and «Симулятор чата», the built-in chat system of the demo, to write as a borrower."""

from __future__ import annotations

import random

from nicegui import ui

from crm.bootstrap import Services
from crm.domain import Role
from crm.domain import formatting as fmt
from crm.domain.actor import Actor
from crm.domain.errors import BadQuery, ServiceError
from crm.domain.notifications import ChatChanged
from crm.integrations.chat_simulator import ChatSimulator, SimChat
from crm.pages.components.chat_panel import (
    Answering,
    Bubble,
    conversation_markup,
    operator_view,
    scroll_view,
)
from crm.pages.components.coalesce import Coalesced
from crm.pages.layout import admin_frame, frame
from crm.pages.live import LiveHub
from crm.pages.off_loop import attempt, service
from crm.pages.route import page
from crm.pages.session import page_actor
from crm.services.chat_views import ChatSummary, Inbox

PREVIEW = 120  # characters of the last message shown in a list


def register(services: Services, hub: LiveHub) -> None:
    @page('/chats')
    async def chats_page() -> None:
        actor = page_actor()
        if actor is None:
            return
        with frame(services, hub, actor, 'Чаты') as workspace:
            ui.label('Чаты').classes('text-xl font-semibold')
            inbox = InboxView(services, actor)
        await inbox.refresh()
        workspace.chats.listeners.append(inbox.on_change)
        await workspace.start()

    simulator = services.chat_simulator
    if simulator is not None:
        register_simulator(services, hub, simulator)


class InboxView:
    """The two lists, redrawn when a chat changes (a burst of messages: one redraw at a time)."""

    def __init__(self, services: Services, actor: Actor) -> None:
        self.services, self.actor = services, actor
        self.area = ui.column().classes('w-full gap-4')
        self.dialogs = ui.element('div')  # not in the area: a redraw of the lists must not close a dialog
        self.open_chat: QueueChat | None = None
        self.refresh = Coalesced(self._reload)

    async def _reload(self) -> None:
        inbox = await service(self.services.chats.inbox, self.actor)
        if not self.area.is_deleted:
            self._draw(inbox)

    async def on_change(self, change: ChatChanged) -> None:
        chat = self.open_chat
        if chat is not None and chat.chat_id == change.chat_id and change.event in ('message', 'reply'):
            await chat.load()
        await self.refresh()

    def _draw(self, inbox: Inbox) -> None:
        self.area.clear()
        with self.area:
            ui.label('Мои непрочитанные').classes('text-lg font-medium')
            self._list(inbox.mine, 'Непрочитанных чатов ваших заёмщиков нет')
            ui.label('Общая очередь').classes('text-lg font-medium')
            ui.label(
                'Неизвестные отправители и заёмщики без ответственного сотрудника. Неизвестного '
                'отправителя найдите и привяжите к заёмщику — чат и его сообщения перейдут к нему.'
            ).classes('text-sm text-gray-600')
            self._list(inbox.queue, 'Очередь пуста')

    def _list(self, chats: tuple[ChatSummary, ...], empty: str) -> None:
        if not chats:
            ui.label(empty).classes('text-gray-600')
            return
        with ui.list().props('bordered separator').classes('w-full bg-white'):
            for chat in chats:
                with ui.item(), ui.item_section(), ui.row().classes('w-full items-center gap-3'):
                    ui.icon('forum' if chat.borrower_id is not None else 'contact_support')
                    with ui.column().classes('gap-0 flex-1 min-w-0'):
                        with ui.row().classes('items-center gap-2'):
                            ui.label(chat.name).classes('font-medium')
                            if chat.borrower_id is None:
                                ui.badge('Неизвестный отправитель', color='orange')
                            if chat.unread:
                                ui.badge(f'непрочитанных: {chat.unread}', color='red')
                        ui.label(_preview(chat.last_text)).classes('text-sm text-gray-700')
                    ui.label(fmt.moment(chat.last_message_at)).classes('text-sm text-gray-600')
                    button = ui.button('Открыть', on_click=lambda c=chat: self.open(c)).props(
                        'dense outline no-caps'
                    )
                    button.mark(f'chat-{chat.chat_id}')

    async def open(self, chat: ChatSummary) -> None:
        if chat.borrower_id is not None:
            ui.navigate.to(f'/borrower/{chat.borrower_id}')
            return
        self.dialogs.clear()
        with self.dialogs:
            self.open_chat = QueueChat(self.services, self.actor, chat.chat_id, chat.sender)
        await self.open_chat.load()


class QueueChat:
    """An unknown sender's conversation in a dialog: read it, answer, find the borrower and link."""

    def __init__(self, services: Services, actor: Actor, chat_id: str, sender: str) -> None:
        self.services, self.actor, self.chat_id = services, actor, chat_id
        with ui.dialog() as self.dialog, ui.card().classes('w-[48rem] max-w-full'):
            ui.label(f'Неизвестный отправитель: {sender}').classes('text-lg font-semibold')
            self.view = scroll_view(conversation_markup([]))
            self.answering = Answering(services, actor, self.load)
            self.answering.chat_id = chat_id
            ui.separator()
            ui.label('Кто это? Найдите заёмщика по ФИО, телефону, паспорту или PIN:').classes('text-sm')
            with ui.row().classes('items-center gap-2'):
                self.query = ui.input('Поиск заёмщика', value=sender).props('outlined dense clearable')
                self.query.classes('w-96').on('keydown.enter', self.search)
                ui.button('Найти', icon='search', on_click=self.search).props('outline')
            self.results = ui.column().classes('gap-1')
            with ui.row().classes('w-full justify-end'):
                ui.button('Закрыть', on_click=self.dialog.close).props('flat')
        self.dialog.open()

    async def load(self) -> None:
        conversation = await attempt(self.services.chats.chat, self.actor, self.chat_id)
        if conversation is not None and not self.view.is_deleted:
            self.view.set_content(conversation_markup(operator_view(conversation.lines)))

    async def search(self) -> None:
        try:
            found = await service(self.services.borrowers.search, self.actor, self.query.value or '')
        except BadQuery as error:
            self.results.clear()
            with self.results:
                ui.label(error.message).classes('text-warning')
            return
        self.results.clear()
        with self.results:
            if not found.items:
                ui.label('Никого не нашли — попробуйте ФИО, паспорт или PIN').classes('text-gray-600')
            for row in found.items:
                with ui.row().classes('items-center gap-3'):
                    ui.label(f'{row.full_name} · PIN: {row.pin} · {row.city}').classes('text-sm')
                    ui.button('Привязать', on_click=lambda r=row: self.link(r.id, r.full_name)).props(
                        'dense flat no-caps'
                    )

    async def link(self, borrower_id: int, name: str) -> None:
        try:
            await service(self.services.chats.link, self.actor, self.chat_id, borrower_id)
        except ServiceError as error:
            ui.notify(error.message, type='warning')
            return
        self.dialog.close()
        ui.notify(f'Чат привязан: {name}', type='positive')
        ui.navigate.to(f'/borrower/{borrower_id}')


def _preview(text: str | None) -> str:
    text = ' '.join((text or '').split())
    return text if len(text) <= PREVIEW else text[: PREVIEW - 1] + '…'


def register_simulator(services: Services, hub: LiveHub, simulator: ChatSimulator) -> None:
    @page('/chat-simulator')
    async def simulator_page() -> None:
        actor = page_actor(Role.ADMIN)
        if actor is None:
            return
        phones = await service(services.borrowers.sample_phones, actor)

        def write() -> None:
            try:
                simulator.write(sender.value or '', text.value or '')
            except ServiceError as error:
                ui.notify(error.message, type='warning')
                return
            text.set_value('')
            redraw()

        about = (
            'Встроенная чат-система для проверки: пишите как заёмщик — сообщение уходит в CRM событием '
            'chat.message.received, ответы сотрудников (команда chat.reply) появляются здесь.'
        )
        with admin_frame(services, hub, actor, 'Симулятор чата', about) as workspace:
            with ui.card().classes('w-full'):
                with ui.row().classes('items-end gap-4'):
                    sender = ui.input('Телефон или PIN отправителя', value=phones[0] if phones else '')
                    sender.props('outlined').classes('w-72')
                    ui.button(
                        'Случайный заёмщик',
                        icon='casino',
                        on_click=lambda: sender.set_value(random.choice(phones)) if phones else None,
                    ).props('flat')
                with ui.row().classes('w-full items-end gap-2'):
                    text = ui.textarea('Сообщение').props('outlined dense autogrow').classes('flex-1')
                    ui.button('Написать в чат', icon='send', on_click=write).props('no-caps')
            chats_area = ui.column().classes('w-full gap-4')

        seen = {'version': -1}

        def redraw() -> None:
            if seen['version'] == simulator.version or chats_area.is_deleted:
                return
            seen['version'] = simulator.version
            chats_area.clear()
            with chats_area:
                simulated_chats(simulator.chats())

        redraw()
        ui.timer(0.5, redraw)
        await workspace.start()


def simulated_chats(chats: list[SimChat]) -> None:
    """The borrower's side: their own messages on the right, the operators' answers on the left."""
    if not chats:
        ui.label('Сообщений ещё не было').classes('text-gray-600')
        return
    for chat in chats:
        with ui.card().classes('w-full').props('flat bordered'):
            ui.label(f'Отправитель: {chat.sender}').classes('font-medium')
            ui.label(f'Чат {chat.chat_id}').classes('text-xs text-gray-500')
            bubbles = [
                Bubble(line.at, not line.from_borrower, line.text, line.operator) for line in chat.lines
            ]
            scroll_view(conversation_markup(bubbles))
