"""A built-in chat system («Симулятор чата») for trying the chat loop with `make run` alone.

It speaks the chat system's side of the contract: what a borrower writes goes out as the event
``chat.message.received`` ``{"chat_id","from","text","at"}`` on crm.events, and the operators' answers
come back as the command ``chat.reply`` ``{"chat_id","text","operator","message_id"}`` on crm.commands.
One conversation per sender (a phone or a PIN, as typed), kept in memory.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crm.domain.clock import Clock, system_clock
from crm.domain.errors import ServiceError
from crm.integrations.bus import EventBus

log = logging.getLogger(__name__)

MAX_TEXT = 10_000  # what the CRM accepts in one message (its event schema)
MAX_SENDER = 64
KEPT = 50  # conversations kept, the newest


@dataclass(frozen=True)
class SimLine:
    at: datetime
    from_borrower: bool
    text: str
    operator: str | None = None


@dataclass
class SimChat:
    chat_id: str
    sender: str
    lines: list[SimLine] = field(default_factory=list)
    answered: set[str] = field(default_factory=set)  # message ids of the answers heard (a repeat is one)

    @property
    def last_at(self) -> datetime:
        return self.lines[-1].at


class ChatSimulator:
    def __init__(self, bus: EventBus, *, clock: Clock = system_clock) -> None:
        self._bus = bus
        self._clock = clock
        self._chats: dict[str, SimChat] = {}  # chat id -> chat
        self._by_sender: dict[str, str] = {}  # sender -> chat id
        self._lock = threading.Lock()
        self.version = 0  # bumps on every change, so a page redraws only when needed

    def attach(self) -> None:
        self._bus.subscribe_commands(self.on_command)

    def write(self, sender: str, text: str) -> SimChat:
        """The borrower ``sender`` writes ``text``; it goes to the CRM as chat.message.received."""
        sender, text = (sender or '').strip(), (text or '').strip()
        if not sender:
            raise ServiceError('Укажите телефон или PIN отправителя')
        if len(sender) > MAX_SENDER:
            raise ServiceError(f'Отправитель — не длиннее {MAX_SENDER} символов')
        if not text:
            raise ServiceError('Введите текст сообщения')
        if len(text) > MAX_TEXT:
            raise ServiceError('Сообщение длиннее 10 000 символов')
        if '\x00' in sender + text:
            raise ServiceError('Недопустимый символ (NUL)')
        now = self._clock()
        with self._lock:
            chat_id = self._by_sender.get(sender)
            if chat_id is None:
                chat_id = self._by_sender[sender] = f'sim-chat-{uuid.uuid4().hex[:12]}'
                self._chats[chat_id] = SimChat(chat_id, sender)
            chat = self._chats[chat_id]
            chat.lines.append(SimLine(now, True, text))
            self._forget_old()
            self.version += 1
        self._bus.publish_event(
            'chat.message.received', {'chat_id': chat_id, 'from': sender, 'text': text, 'at': now.isoformat()}
        )
        return chat

    def on_command(self, command: str, body: dict[str, Any]) -> None:
        """An operator's answer reaches the borrower's conversation (other commands are not for chat)."""
        if command != 'chat.reply':
            return
        chat_id, text = str(body.get('chat_id', '')), str(body.get('text', ''))
        message_id = str(body.get('message_id') or uuid.uuid4())
        with self._lock:
            chat = self._chats.get(chat_id)
            if chat is None:
                log.info('chat simulator: an answer to chat %s it does not hold', chat_id)
                return
            if message_id in chat.answered:
                return
            chat.answered.add(message_id)
            operator = body.get('operator')
            chat.lines.append(SimLine(self._clock(), False, text, str(operator) if operator else None))
            self.version += 1

    def chats(self) -> list[SimChat]:
        """The conversations, the latest first (copies: the page reads them on the event loop)."""
        with self._lock:
            chats = [SimChat(c.chat_id, c.sender, list(c.lines)) for c in self._chats.values()]
        return sorted(chats, key=lambda c: c.last_at, reverse=True)

    def _forget_old(self) -> None:
        if len(self._chats) <= KEPT:
            return
        oldest = min(self._chats.values(), key=lambda c: c.last_at)
        del self._chats[oldest.chat_id]
        self._by_sender.pop(oldest.sender, None)
