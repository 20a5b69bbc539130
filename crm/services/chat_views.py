"""What the screens show of chats: conversations, the inbox and the unread counts; read by plain queries.

Shared by the inbound handler and the chat service (``crm.services.chats``): ``chat_rows`` and
``changes`` give the ``ChatChanged`` notifications with the unread counts as the transaction leaves them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from crm.db.models import Borrower, Chat, Communication, User
from crm.domain.notifications import ChatChanged

LINES = 100  # the newest messages a conversation shows
LISTED = 50  # chats a list of the inbox shows


@dataclass(frozen=True)
class ChatLine:
    """One message: the borrower's (``in``) or an answer (``out``, with the operator's name)."""

    id: int
    at: datetime
    direction: str  # in | out
    text: str
    operator_name: str | None
    failed: bool  # an answer the chat system never got (the bus was away)


@dataclass(frozen=True)
class Conversation:
    """A borrower's chats, or one chat of the common queue, as one conversation (oldest first)."""

    chat_id: str  # the chat the borrower last wrote in: answers go there
    borrower_id: int | None
    name: str  # the borrower's full name, or the sender as the chat system gave it
    sender: str
    lines: tuple[ChatLine, ...]
    unread: int  # what is still unread after this reading (the reader may not be the one to read it)


@dataclass(frozen=True)
class ChatSummary:
    """A chat in a list of the inbox."""

    chat_id: str
    borrower_id: int | None
    name: str
    sender: str
    unread: int
    last_message_at: datetime
    last_text: str | None


@dataclass(frozen=True)
class Inbox:
    mine: tuple[ChatSummary, ...]  # chats of the reader's borrowers with unread messages
    queue: tuple[ChatSummary, ...]  # unknown senders (read or not), and unread chats nobody is assigned to


@dataclass(frozen=True)
class UnreadCounts:
    """The header's badge: chats with unread messages of the reader's borrowers, and in the common queue."""

    mine: int
    queue: int

    @property
    def total(self) -> int:
        return self.mine + self.queue


@dataclass(frozen=True)
class CannedAnswer:
    """An answer template («Ответ в чат») filled in for the borrower; ``problem`` if it cannot be."""

    template_id: int
    name: str
    text: str | None
    problem: str | None


@dataclass(frozen=True)
class ChatRow:
    """A chat as the counts and the notifications need it."""

    chat_id: str
    borrower_id: int | None
    operator_id: int | None  # the borrower's assigned operator
    name: str
    sender: str
    unread: int
    last_message_at: datetime
    pin: str | None = None  # the borrower's: a sender who wrote as their PIN gave no phone


def _name(borrower_id: int | None, sender: str, *parts: str | None) -> str:
    return ' '.join(p for p in parts if p) if borrower_id is not None else sender


def chat_rows(session: Session, chat_ids: Iterable[str]) -> dict[str, ChatRow]:
    """The chats with their borrowers' names and operators, by chat id (one query)."""
    ids = sorted(set(chat_ids))
    if not ids:
        return {}
    rows = session.execute(
        select(
            Chat.chat_id,
            Chat.borrower_id,
            Borrower.assigned_operator_id,
            Chat.sender,
            Chat.unread,
            Chat.last_message_at,
            Borrower.pin,
            Borrower.last_name,
            Borrower.first_name,
            Borrower.middle_name,
        )
        .outerjoin(Borrower, Borrower.id == Chat.borrower_id)
        .where(Chat.chat_id.in_(ids))
    )
    found = {}
    for chat_id, borrower_id, operator_id, sender, unread, last_at, pin, *name in rows:
        name_shown = _name(borrower_id, sender, *name)
        found[chat_id] = ChatRow(chat_id, borrower_id, operator_id, name_shown, sender, unread, last_at, pin)
    return found


def unread_counts(session: Session, operator_ids: Iterable[int]) -> tuple[dict[int, int], int]:
    """Chats with unread messages per operator (of their borrowers), and in the common queue."""
    ids = sorted(set(operator_ids))
    per_operator: dict[int, int] = dict.fromkeys(ids, 0)
    if ids:
        rows = session.execute(
            select(Borrower.assigned_operator_id, func.count())
            .select_from(Chat)
            .join(Borrower, Borrower.id == Chat.borrower_id)
            .where(Chat.unread > 0, Borrower.assigned_operator_id.in_(ids))
            .group_by(Borrower.assigned_operator_id)
        )
        per_operator |= {operator_id: count for operator_id, count in rows if operator_id is not None}
    unknown = select(func.count()).select_from(Chat).where(Chat.unread > 0, Chat.borrower_id.is_(None))
    unassigned = (
        select(func.count())
        .select_from(Chat)
        .join(Borrower, Borrower.id == Chat.borrower_id)
        .where(Chat.unread > 0, Borrower.assigned_operator_id.is_(None))
    )
    queue = session.execute(select(unknown.scalar_subquery(), unassigned.scalar_subquery())).one()
    return per_operator, int(queue[0]) + int(queue[1])


def changes(session: Session, chats: Iterable[ChatRow], event: str) -> list[ChatChanged]:
    """What every tab is told about these chats, with the unread counts as this transaction leaves them."""
    chats = list(chats)
    if not chats:
        return []
    per_operator, queue = unread_counts(session, {c.operator_id for c in chats if c.operator_id is not None})
    return [
        ChatChanged(
            chat_id=c.chat_id,
            borrower_id=c.borrower_id,
            operator_id=c.operator_id,
            name=c.name,
            event=event,
            unread=c.unread,
            operator_unread=per_operator.get(c.operator_id, 0) if c.operator_id is not None else 0,
            queue_unread=queue,
        )
        for c in chats
    ]


def lines_of(
    session: Session, condition: ColumnElement[bool], limit: int = LINES, *, with_hidden: bool = False
) -> tuple[ChatLine, ...]:
    """The newest chat messages matching ``condition``, oldest first; a message an administrator hid
    only for an administrator (``with_hidden``)."""
    if not with_hidden:
        condition = and_(condition, Communication.hidden_at.is_(None))
    rows = session.execute(
        select(
            Communication.id,
            Communication.started_at,
            Communication.direction,
            Communication.body,
            User.full_name,
            Communication.delivery_status,
        )
        .outerjoin(User, User.id == Communication.operator_id)
        .where(condition, Communication.channel == 'chat')
        .order_by(Communication.started_at.desc(), Communication.id.desc())
        .limit(limit)
    ).all()
    return tuple(
        ChatLine(id_, at, direction, body or '', operator, status == 'failed')
        for id_, at, direction, body, operator, status in reversed(rows)
    )


def summaries(session: Session, *conditions: Any, limit: int = LISTED) -> tuple[ChatSummary, ...]:
    """Chats matching ``conditions`` (over chats outer-joined with borrowers): unread, then latest first."""
    last_text = (
        select(Communication.body)
        .where(Communication.chat_id == Chat.chat_id, Communication.channel == 'chat')
        .order_by(Communication.started_at.desc(), Communication.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    rows = session.execute(
        select(
            Chat.chat_id,
            Chat.borrower_id,
            Chat.sender,
            Chat.unread,
            Chat.last_message_at,
            last_text,
            Borrower.last_name,
            Borrower.first_name,
            Borrower.middle_name,
        )
        .outerjoin(Borrower, Borrower.id == Chat.borrower_id)
        .where(*conditions)
        .order_by((Chat.unread > 0).desc(), Chat.last_message_at.desc(), Chat.id.desc())
        .limit(limit)
    )
    return tuple(
        ChatSummary(chat_id, borrower_id, _name(borrower_id, sender, *name), sender, unread, last_at, text)
        for chat_id, borrower_id, sender, unread, last_at, text, *name in rows
    )


def inbox(session: Session, user_id: int) -> Inbox:
    mine = summaries(session, Chat.unread > 0, Borrower.assigned_operator_id == user_id)
    queue = summaries(
        session,
        or_(Chat.borrower_id.is_(None), (Borrower.assigned_operator_id.is_(None)) & (Chat.unread > 0)),
    )
    return Inbox(mine, queue)
