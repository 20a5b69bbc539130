"""Chats with borrowers: messages in (``chat.message.received``), the operator's answers out (``chat.reply``).

A chat is the chat system's conversation (``chat_id``), attached to the borrower the first message came
from (by phone, else by PIN); a chat nobody could be found for waits in the common queue as
«Неизвестный отправитель» until an operator links it. Every message is a ``chat`` communication in the
borrower's history. Nothing here is a collection contact: the borrower started the conversation, so
neither the inbound messages nor the answers inside it count against the 230-FZ limits
(``collection=False``), and the law's hours and legal-status blocks, which are about contact at the
creditor's initiative, do not stop an answer.

Unread: each chat counts the borrower's messages nobody has read yet. Screens show, per operator, how
many chats of their borrowers have unread messages, plus the common queue (unknown senders and borrowers
nobody is assigned to). A chat is read when its conversation is shown to the borrower's assigned operator
(to anyone, if nobody is assigned), and when anyone answers it.

The inbound router hands ``chat_received`` a run of events whose idempotency keys it has claimed; they
are recorded set-wise, with the same dozen statements for one message or a burst of hundreds.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, case, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from crm.db.bulk import insert_many
from crm.db.models import Borrower, Chat, Communication
from crm.db.types import UtcDateTime
from crm.db.upsert import insert_ignoring_conflicts
from crm.domain import Role
from crm.domain.actor import Actor
from crm.domain.clock import Clock, system_clock
from crm.domain.contact_rules import CallLimits
from crm.domain.errors import NotFound, ServiceError
from crm.domain.identifiers import phone_key
from crm.domain.messages import Creditor
from crm.domain.notifications import HistoryChanged, Notification
from crm.integrations.bus import EventBus
from crm.services import audit, message_text
from crm.services.chat_views import (
    CannedAnswer,
    ChatLine,
    ChatRow,
    Conversation,
    Inbox,
    UnreadCounts,
    changes,
    chat_rows,
    inbox,
    lines_of,
    unread_counts,
)
from crm.services.event_schemas import ChatMessage, Event
from crm.services.inbound import Outcome
from crm.services.notifier import Notifier
from crm.services.phone_holders import holders_of
from crm.services.request_hooks import CHAT_SUBJECT, DEFAULT_LIMITS, Contact, contacts_changed, join_contacts
from crm.services.templates import TemplateService

log = logging.getLogger(__name__)

_chats = cast(Table, Chat.__table__)
_communications = cast(Table, Communication.__table__)
_borrowers = cast(Table, Borrower.__table__)
_AT = bindparam('b_at', type_=UtcDateTime())
# Built once; a run of messages binds its rows at execution.
ADD_UNREAD = (
    update(_chats)
    .where(_chats.c.chat_id == bindparam('b_chat'))
    .values(
        unread=_chats.c.unread + bindparam('b_count'),
        last_message_at=case((_chats.c.last_message_at < _AT, _AT), else_=_chats.c.last_message_at),
    )
)
LAST_CONTACT = (
    update(_borrowers)
    .where(
        _borrowers.c.id == bindparam('b_id'),
        or_(_borrowers.c.last_contact_at.is_(None), _borrowers.c.last_contact_at < _AT),
    )
    .values(last_contact_at=_AT)
)


def chat_received(session: Session, events: Sequence[Event], limits: CallLimits = DEFAULT_LIMITS) -> Outcome:
    """Record a run of chat messages: new chats attached to their senders, the messages in the history
    and in the borrowers' requests (``request_hooks``), the unread counts up; every tab hears the counts,
    the cards of those borrowers redraw."""
    messages = sorted((e for e in events if isinstance(e, ChatMessage)), key=lambda e: e.at)
    outcome = Outcome()
    if not messages:
        return outcome
    chat_ids = {m.chat_id for m in messages}
    known = set(session.scalars(select(Chat.chat_id).where(Chat.chat_id.in_(sorted(chat_ids)))))
    _start_chats(session, [m for m in messages if m.chat_id not in known])
    connection = session.connection()
    counts: dict[str, tuple[int, datetime]] = {}
    for m in messages:
        count, _ = counts.get(m.chat_id, (0, m.at))
        counts[m.chat_id] = (count + 1, m.at)  # in time order: the last one is the latest
    connection.execute(
        ADD_UNREAD, [{'b_chat': c, 'b_count': n, 'b_at': at} for c, (n, at) in sorted(counts.items())]
    )
    chats = chat_rows(session, chat_ids)
    message_ids = insert_many(  # their ids, for the requests' history lines
        connection,
        _communications,
        [
            {
                'borrower_id': chats[m.chat_id].borrower_id,
                'operator_id': None,
                'channel': 'chat',
                'direction': 'in',
                'started_at': m.at,
                'phone': None if m.from_ == chats[m.chat_id].pin else phone_key(m.from_),
                'body': m.text,
                'chat_id': m.chat_id,
                'collection': False,
            }
            for m in messages
        ],
    )
    contacts = [
        Contact(borrower_id, 'chat', message_id, m.at, CHAT_SUBJECT, m.text)
        for m, message_id in zip(messages, message_ids, strict=True)
        if (borrower_id := chats[m.chat_id].borrower_id) is not None
    ]
    outcome.notifications += contacts_changed(session, join_contacts(session, contacts, limits=limits))
    latest: dict[int, datetime] = {}
    for m in messages:
        borrower_id = chats[m.chat_id].borrower_id
        if borrower_id is not None:
            latest[borrower_id] = m.at
    if latest:
        connection.execute(LAST_CONTACT, [{'b_id': b, 'b_at': at} for b, at in sorted(latest.items())])
    outcome.notifications += changes(session, chats.values(), 'message')
    outcome.notifications += [HistoryChanged(b) for b in sorted(latest)]
    return outcome


def _start_chats(session: Session, first_messages: Sequence[ChatMessage]) -> None:
    """New chats, each attached to the borrower its first message came from (or to nobody yet).

    ``ON CONFLICT DO NOTHING``: a chat started by another process at the same moment is theirs.
    """
    first: dict[str, ChatMessage] = {}
    for m in first_messages:
        first.setdefault(m.chat_id, m)
    if not first:
        return
    owners = senders_of(session, {m.from_ for m in first.values()})
    for m in first.values():
        if m.from_ not in owners:
            log.info('chat %s from an unknown sender: waits in the common queue', m.chat_id)
    rows = [
        {
            'chat_id': m.chat_id,
            'borrower_id': owners.get(m.from_),
            'sender': m.from_,
            'unread': 0,
            'started_at': m.at,
            'last_message_at': m.at,
        }
        for m in first.values()
    ]
    insert_ignoring_conflicts(session, Chat, rows, Chat.chat_id)


def senders_of(session: Session, senders: set[str]) -> dict[str, int]:
    """The borrower each sender is: by phone (the holder with the most recent loan), else by PIN."""
    numbers = {sender: phone_key(sender) for sender in senders}
    holders = holders_of(session, {n for n in numbers.values() if n})
    found = {s: holders[n][0].id for s, n in numbers.items() if n and holders.get(n)}
    rest = sorted(senders - found.keys())
    if rest:
        rows = session.execute(select(Borrower.pin, Borrower.id).where(Borrower.pin.in_(rest)))
        found |= {pin: borrower_id for pin, borrower_id in rows}
    return found


MAX_ANSWER = 4000  # characters of one answer
ANSWER_KIND = 'chat_answer'  # the templates offered as «Шаблоны ответов» (their SMS texts)
NOT_STARTED = 'Ответить можно только в чат, который начал заёмщик'


class ChatService:
    """What operators do with chats: read them, answer, link an unknown sender to a borrower."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        bus: EventBus,
        templates: TemplateService,
        creditor: Creditor,
        clock: Clock = system_clock,
        *,
        limits: CallLimits = DEFAULT_LIMITS,
    ) -> None:
        self._sessions = sessions
        self._limits = limits  # the requests' deadline calendar (a linked chat joins the borrower's request)
        self._bus = bus
        self._notifier = Notifier(bus)
        self._templates = templates
        self._creditor = creditor
        self._clock = clock

    # --- reading ------------------------------------------------------------------------------
    def unread(self, actor: Actor) -> UnreadCounts:
        with self._sessions() as session:
            per_operator, queue = unread_counts(session, [actor.id])
        return UnreadCounts(per_operator.get(actor.id, 0), queue)

    def inbox(self, actor: Actor) -> Inbox:
        with self._sessions() as session:
            return inbox(session, actor.id)

    def conversation(self, actor: Actor, borrower_id: int) -> Conversation | None:
        """The borrower's chats as one conversation (None if they never wrote); read, if ``actor`` is
        the one to read it (the card shows it; the card's view is audited already)."""
        with self._sessions.begin() as session:
            chat_ids = session.scalars(select(Chat.chat_id).where(Chat.borrower_id == borrower_id)).all()
            if not chat_ids:
                return None
            rows = chat_rows(session, chat_ids)
            read = self._read(session, actor, rows.values())
            lines = lines_of(
                session, Communication.borrower_id == borrower_id, with_hidden=actor.role == Role.ADMIN
            )
            notes = changes(session, read, 'read')
            newest = rows[_last_written(session, borrower_id) or chat_ids[0]]
        read_ids = {r.chat_id for r in read}
        unread = sum(r.unread for r in rows.values() if r.chat_id not in read_ids)
        self._notifier.publish(notes)
        return Conversation(newest.chat_id, borrower_id, newest.name, newest.sender, lines, unread)

    def chat(self, actor: Actor, chat_id: str) -> Conversation:
        """One chat by its id (the common queue's); read, and the view audited (it may name anyone)."""
        with self._sessions.begin() as session:
            row = chat_rows(session, [chat_id]).get(chat_id)
            if row is None:
                raise NotFound('Чат не найден')
            read = self._read(session, actor, [row])
            lines = lines_of(session, Communication.chat_id == chat_id, with_hidden=actor.role == Role.ADMIN)
            audit.record(session, 'chat.view', user_id=actor.id, borrower_id=row.borrower_id, chat_id=chat_id)
            notes = changes(session, read, 'read')
        self._notifier.publish(notes)
        unread = 0 if read else row.unread
        return Conversation(chat_id, row.borrower_id, row.name, row.sender, lines, unread)

    def canned(self, actor: Actor, borrower_id: int) -> list[CannedAnswer]:
        """«Шаблоны ответов»: the SMS templates of kind «Ответ в чат», filled in for this borrower."""
        offered = self._templates.offered(actor, 'sms', ANSWER_KIND)
        answers = []
        with self._sessions() as session:
            for template in offered:
                try:
                    text = message_text.render(session, borrower_id, None, template.body, self._creditor).text
                except ServiceError as error:
                    answers.append(CannedAnswer(template.id, template.name, None, error.message))
                else:
                    answers.append(CannedAnswer(template.id, template.name, text[:MAX_ANSWER], None))
        return answers

    @staticmethod
    def _read(session: Session, actor: Actor, rows: Iterable[ChatRow]) -> list[ChatRow]:
        """Mark read the chats this reader is the one to read: their borrower's assigned operator, or
        anyone where nobody is assigned (unknown senders among them)."""
        read = [r for r in rows if r.unread > 0 and r.operator_id in (actor.id, None)]
        if read:
            session.execute(
                update(Chat).where(Chat.chat_id.in_([r.chat_id for r in read])).values(unread=0),
                execution_options={'synchronize_session': False},
            )
        return [replace(r, unread=0) for r in read]

    # --- acting -------------------------------------------------------------------------------
    def reply(self, actor: Actor, chat_id: str, text: str) -> ChatLine:
        """Answer in a chat the borrower started: recorded in the history (not a collection contact),
        then sent as the ``chat.reply`` command. If the bus does not take it, the answer stays in the
        history marked undelivered and the operator is told to send it again."""
        text = answer_text(text)
        now = self._clock()
        with self._sessions.begin() as session:
            chat = session.scalar(select(Chat).where(Chat.chat_id == chat_id))
            if chat is None or not _started(session, chat_id):
                raise ServiceError(NOT_STARTED)
            message = Communication(
                borrower_id=chat.borrower_id,
                operator_id=actor.id,
                channel='chat',
                direction='out',
                started_at=now,
                body=text,
                chat_id=chat_id,
                collection=False,
            )
            session.add(message)
            chat.unread = 0
            chat.last_message_at = max(chat.last_message_at, now)
            if chat.borrower_id is not None:
                session.connection().execute(LAST_CONTACT, {'b_id': chat.borrower_id, 'b_at': now})
            session.flush()
            audit.record(
                session, 'chat.reply', user_id=actor.id, borrower_id=chat.borrower_id, chat_id=chat_id
            )
            notes: list[Notification] = list(
                changes(session, chat_rows(session, [chat_id]).values(), 'reply')
            )
            borrower_id, message_id = chat.borrower_id, message.id
        if borrower_id is not None:
            notes.insert(0, HistoryChanged(borrower_id))
        command = {
            'chat_id': chat_id,
            'text': text,
            'operator': actor.full_name,
            'message_id': f'crm-chat-{message_id}',
        }
        try:
            self._bus.publish_command('chat.reply', command)
        except Exception as error:
            self._undelivered(message_id, notes, error)
        self._notifier.publish(notes)
        return ChatLine(message_id, now, 'out', text, actor.full_name, False)

    def _undelivered(self, message_id: int, notes: list[Notification], error: Exception) -> None:
        log.warning('chat answer %s not sent: %s', message_id, type(error).__name__)
        with self._sessions.begin() as session:
            session.execute(
                update(Communication).where(Communication.id == message_id).values(delivery_status='failed')
            )
        self._notifier.publish(notes)
        raise ServiceError(
            'Ответ не ушёл в чат: нет связи с чат-системой. Он сохранён в истории как '
            'недоставленный — отправьте его ещё раз.'
        )

    def link(self, actor: Actor, chat_id: str, borrower_id: int) -> None:
        """An unknown sender's chat is the borrower's: the chat and its messages so far get the borrower."""
        with self._sessions.begin() as session:
            if session.get(Borrower, borrower_id) is None:
                raise NotFound('Заёмщик не найден')
            connection = session.connection()
            claimed = connection.execute(
                update(_chats)
                .where(_chats.c.chat_id == chat_id, _chats.c.borrower_id.is_(None))
                .values(borrower_id=borrower_id)
            )
            if claimed.rowcount == 0:  # nobody else linked it meanwhile: the update is the check
                known = session.scalar(select(Chat.id).where(Chat.chat_id == chat_id))
                raise (
                    NotFound('Чат не найден')
                    if known is None
                    else ServiceError('Чат уже привязан к заёмщику')
                )
            c_ = _communications.c
            moved = connection.execute(
                update(_communications)
                .where(_communications.c.chat_id == chat_id, _communications.c.borrower_id.is_(None))
                .values(borrower_id=borrower_id)
                .returning(c_.id, c_.direction, c_.started_at, c_.body)
            ).all()
            contacts = [  # the borrower's messages so far join their request, in order
                Contact(borrower_id, 'chat', row.id, row.started_at, CHAT_SUBJECT, row.body or '')
                for row in sorted(moved, key=lambda row: (row.started_at, row.id))
                if row.direction == 'in'
            ]
            joined = join_contacts(session, contacts, limits=self._limits)
            last = session.scalar(
                select(func.max(Communication.started_at)).where(Communication.chat_id == chat_id)
            )
            if last is not None:
                connection.execute(LAST_CONTACT, {'b_id': borrower_id, 'b_at': last})
            audit.record(
                session,
                'chat.link',
                user_id=actor.id,
                borrower_id=borrower_id,
                chat_id=chat_id,
                messages=len(moved),
            )
            notes: list[Notification] = list(
                changes(session, chat_rows(session, [chat_id]).values(), 'linked')
            )
            notes += contacts_changed(session, joined)
        self._notifier.publish([HistoryChanged(borrower_id), *notes])


def answer_text(text: str) -> str:
    """An answer as it is sent: trimmed, not empty, at most MAX_ANSWER characters (Russian refusals)."""
    text = (text or '').strip()
    if not text:
        raise ServiceError('Введите текст ответа')
    if len(text) > MAX_ANSWER:
        raise ServiceError(
            f'Ответ длиннее {_count(MAX_ANSWER)} символов ({_count(len(text))}): сократите его'
        )
    if '\x00' in text:
        raise ServiceError('Ответ содержит недопустимый символ (NUL)')
    return text


def _count(n: int) -> str:
    return f'{n:,}'.replace(',', ' ')  # 4 000, as Russian writes it


def _last_written(session: Session, borrower_id: int) -> str | None:
    """The chat the borrower last wrote in, by arrival (the time a chat system gives may lag or lead):
    answers go there."""
    return session.scalar(
        select(Communication.chat_id)
        .where(
            Communication.borrower_id == borrower_id,
            Communication.channel == 'chat',
            Communication.direction == 'in',
        )
        .order_by(Communication.id.desc())
        .limit(1)
    )


def _started(session: Session, chat_id: str) -> bool:
    """Whether the borrower wrote in this chat (only then may an operator answer in it)."""
    first = select(Communication.id).where(Communication.chat_id == chat_id, Communication.direction == 'in')
    return session.scalar(first.limit(1)) is not None
