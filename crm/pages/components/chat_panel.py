"""Chat on the screen: the header's unread badge, the card's chat panel, and a conversation as markup.

Chat text comes from anyone who can reach the chat system, so it is shown as text: the conversation is
markup built here from ``html.escape``-d data (one element, changed in place when a message arrives),
and everything else is in NiceGUI labels. A tab's chat side (``ChatLive``) takes the unread counts from
every ``ChatChanged`` notification — no query per message — and redraws the card's panel when the
notification is about the borrower on it.

The panel is built after the card is on screen (it is read apart, so a screen pop does not wait for it)
and only for a borrower who has written: a chat the borrower did not start cannot be answered.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Protocol

from nicegui import background_tasks, ui

from crm.bootstrap import Services
from crm.domain import formatting as fmt
from crm.domain.actor import Actor
from crm.domain.notifications import ChatChanged
from crm.pages.components.promise_panel import promise_dialog
from crm.pages.off_loop import attempt, service
from crm.services.chat_views import ChatLine, Conversation
from crm.services.chats import MAX_ANSWER

log = logging.getLogger(__name__)

CHAT_CSS = """
.crm-chat-link { display: inline-flex; align-items: center; gap: 0.25rem; }
.crm-chat-panel { width: 100%; padding: 1rem; display: flex; flex-direction: column; gap: 0.75rem; }
.crm-chat-scroll { display: flex; flex-direction: column-reverse; width: 100%; max-height: 24rem;
  overflow-y: auto; background: #f8fafc; border: 1px solid #e2e8f0; border-radius: 6px; padding: 0.5rem; }
.crm-chat-lines { display: flex; flex-direction: column; gap: 0.5rem; }
.crm-chat-line { display: flex; flex-direction: column; max-width: 75%; }
.crm-chat-left { align-self: flex-start; align-items: flex-start; }
.crm-chat-right { align-self: flex-end; align-items: flex-end; }
.crm-chat-bubble { border-radius: 10px; padding: 6px 10px; font-size: 0.875rem; white-space: pre-wrap;
  overflow-wrap: anywhere; }
.crm-chat-left .crm-chat-bubble { background: white; border: 1px solid #cbd5e1; }
.crm-chat-right .crm-chat-bubble { background: #dbeafe; }
.crm-chat-failed .crm-chat-bubble { background: #fee2e2; }
.crm-chat-meta { font-size: 0.75rem; color: #64748b; }
.crm-chat-empty { font-size: 0.875rem; color: #64748b; padding: 0.5rem; }
"""


@dataclass(frozen=True)
class Bubble:
    """One message as a conversation shows it: on the left (the other side) or the right (this side)."""

    at: datetime
    left: bool
    text: str
    who: str | None = None
    failed: bool = False


def conversation_markup(bubbles: Sequence[Bubble], empty: str = 'Сообщений нет') -> str:
    """The messages, oldest first, as markup: every text escaped (a message is text, never markup)."""
    if not bubbles:
        return f'<div class="crm-chat-empty">{escape(empty)}</div>'
    parts = []
    for bubble in bubbles:
        side = 'crm-chat-left' if bubble.left else 'crm-chat-right'
        meta = [fmt.moment(bubble.at)]
        if bubble.who:
            meta.append(bubble.who)
        if bubble.failed:
            meta.append('не доставлено')
            side += ' crm-chat-failed'
        parts.append(
            f'<div class="crm-chat-line {side}"><div class="crm-chat-bubble">{escape(bubble.text)}</div>'
            f'<div class="crm-chat-meta">{escape(" · ".join(meta))}</div></div>'
        )
    return '<div class="crm-chat-lines">' + ''.join(parts) + '</div>'


def operator_view(lines: Sequence[ChatLine]) -> list[Bubble]:
    """The borrower on the left, the answers (with who wrote them) on the right."""
    return [
        Bubble(line.at, line.direction == 'in', line.text, line.operator_name, line.failed) for line in lines
    ]


def scroll_view(content: str) -> ui.html:
    """The conversation's element: kept scrolled to the newest message by its layout (column-reverse)."""
    return ui.html(content, sanitize=False).classes('crm-chat-scroll')


class ChatBadge:
    """«Чаты» in the header, with the number of chats that wait for this operator (hidden at 0)."""

    def __init__(self) -> None:
        with ui.link(target='/chats').classes('text-white no-underline opacity-90 crm-chat-link'):
            ui.label('Чаты')
            self.count = ui.badge('', color='red').props('rounded').mark('chat-unread')
        self.count.set_visibility(False)

    def show(self, count: int) -> None:
        self.count.set_text(str(count))
        self.count.set_visibility(count > 0)


class Answering:
    """The answer box under a conversation: text, «Шаблоны ответов» (on the card), «Отправить»."""

    def __init__(
        self,
        services: Services,
        actor: Actor,
        sent: Callable[[], Awaitable[None]],
        borrower_id: int | None = None,
    ) -> None:
        self.services, self.actor, self.sent, self.borrower_id = services, actor, sent, borrower_id
        self.chat_id: str | None = None
        with ui.row().classes('w-full items-end gap-2'):
            self.text = ui.textarea('Ответ в чат').props(f'outlined dense autogrow maxlength={MAX_ANSWER}')
            self.text.classes('flex-1').mark('chat-answer')
            if borrower_id is not None:
                ui.button('Шаблоны ответов', icon='quickreply', on_click=self.pick_answer).props(
                    'flat no-caps'
                )
                ui.button('Обещание из чата', icon='event_available', on_click=self.promise).props(
                    'flat no-caps'
                ).mark('chat-promise')
            self.send_button = ui.button('Отправить', icon='send', on_click=self.send).props('no-caps')
            self.send_button.mark('chat-send')

    async def send(self) -> None:
        if self.chat_id is None:
            return
        self.send_button.props('loading')
        try:
            line = await attempt(self.services.chats.reply, self.actor, self.chat_id, self.text.value or '')
        finally:
            self.send_button.props(remove='loading')
        if line is not None:
            self.text.set_value('')
            await self.sent()

    def promise(self) -> None:
        """A promise the borrower made in the chat: the card's promise dialog, tied to the chat."""
        if self.borrower_id is not None:
            promise_dialog(self.services, self.actor, self.borrower_id, source='chat')

    async def pick_answer(self) -> None:
        """The answer templates filled in for this borrower; a click puts one in the box to edit."""
        if self.borrower_id is None:
            return
        answers = await attempt(self.services.chats.canned, self.actor, self.borrower_id)
        if answers is None:
            return
        with ui.dialog() as dialog, ui.card().classes('w-[36rem]'):
            ui.label('Шаблоны ответов').classes('text-lg font-semibold')
            if not answers:
                ui.label('Нет активных шаблонов вида «Ответ в чат» (SMS)').classes('text-sm text-gray-600')
            for answer in answers:
                with ui.column().classes('w-full gap-1'):
                    button = ui.button(answer.name, on_click=lambda a=answer: self._use(dialog, a.text))
                    button.props('flat dense no-caps align=left')
                    if answer.text is None:
                        button.disable()
                    ui.label(answer.text or answer.problem or '').classes('text-sm text-gray-700')
            with ui.row().classes('w-full justify-end'):
                ui.button('Отмена', on_click=dialog.close).props('flat')
        dialog.open()

    def _use(self, dialog: ui.dialog, text: str | None) -> None:
        dialog.close()
        if text:
            self.text.set_value(text)


class ChatPanel:
    """The card's chat: the conversation (newest at the bottom) and the answer box."""

    def __init__(self, services: Services, actor: Actor, borrower_id: int) -> None:
        self.services, self.actor, self.borrower_id = services, actor, borrower_id
        self.slot = ui.element('div').classes('w-full')  # filled once the borrower turns out to have written
        self.view: ui.html | None = None
        self.answering: Answering | None = None
        self.title: ui.label | None = None
        self.unread = 0  # as last shown

    @property
    def gone(self) -> bool:
        return self.slot.is_deleted

    async def load(self) -> None:
        """Read the conversation (read by the assigned operator, as the service decides) and show it."""
        if self.gone:
            return
        with self.slot:
            try:
                conversation = await service(self.services.chats.conversation, self.actor, self.borrower_id)
            except Exception:
                log.exception('the chat of borrower %s could not be read', self.borrower_id)
                return
            if conversation is not None and not self.gone:
                self._show(conversation)

    def _show(self, conversation: Conversation) -> None:
        markup = conversation_markup(operator_view(conversation.lines))
        if self.view is None or self.answering is None or self.title is None:
            with ui.card().classes('crm-chat-panel').props('flat bordered'):
                with ui.row().classes('w-full items-center gap-2'):
                    ui.icon('forum', size='sm').classes('text-primary')
                    self.title = ui.label().classes('crm-panel-title')
                self.view = scroll_view(markup)
                self.answering = Answering(self.services, self.actor, self.load, self.borrower_id)
        else:
            self.view.set_content(markup)
        self.unread = conversation.unread
        unread = f' · непрочитанных: {conversation.unread}' if conversation.unread else ''
        self.title.set_text(f'Чат с заёмщиком{unread}')
        self.answering.chat_id = conversation.chat_id


class ChatHost(Protocol):
    services: Services
    actor: Actor


ChatListener = Callable[[ChatChanged], Awaitable[None]]


class ChatLive:
    """A tab's chat side: the header badge, the card's chat panel, and pages that list chats."""

    def __init__(self, host: ChatHost) -> None:
        self.host = host
        self.badge: ChatBadge | None = None  # set by the frame that drew the header
        self.panel: ChatPanel | None = None
        self.listeners: list[ChatListener] = []  # e.g. the «Чаты» page
        self.mine = 0
        self.queue = 0
        self._changes = 0  # notifications applied: a count read before one of them is older than it

    async def start(self) -> None:
        if self.badge is None:
            return
        for _ in range(3):  # a change while reading (e.g. the card's chat marked read) makes it stale
            seen = self._changes
            counts = await service(self.host.services.chats.unread, self.host.actor)
            if self._changes == seen:
                break
        self.mine, self.queue = counts.mine, counts.queue
        self.badge.show(counts.total)

    def show_for(self, borrower_id: int) -> None:
        """Under the card being drawn: the borrower's chat, read apart from the card."""
        self.panel = ChatPanel(self.host.services, self.host.actor, borrower_id)
        background_tasks.create(self.panel.load(), name='chat-panel')

    async def on_change(self, change: ChatChanged) -> None:
        """On the event loop: the counts for the badge, the panel of that borrower, a toast for a message."""
        self._changes += 1
        if change.operator_id == self.host.actor.id:
            self.mine = change.operator_unread
        self.queue = change.queue_unread
        if self.badge is not None:
            self.badge.show(self.mine + self.queue)
        panel = self.panel
        shown = panel is not None and not panel.gone and panel.borrower_id == change.borrower_id
        if shown and panel is not None and (change.event != 'read' or panel.unread):
            await panel.load()
        elif change.event == 'message' and change.operator_id == self.host.actor.id:
            ui.notify(f'Новое сообщение в чате: {change.name}', type='info', position='top-right')
        for listener in list(self.listeners):
            await listener(change)
