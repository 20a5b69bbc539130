"""What the screens are told: typed UI notifications with one wire form (the ``crm.ui`` fanout).

A service returns notifications with its result; after the commit they are published as one message
(``to_wire``), and every app process turns that message back into the same objects (``from_wire``) for
its live hub, which routes them by type to the tabs (and, later, the dashboards) that show them.

A new kind of notification is a frozen dataclass here with a ``kind`` and an entry in ``_KINDS``;
the wire form is its fields, with ``kind`` beside them (datetimes as ISO 8601 text).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, ClassVar

from crm.domain.operator_states import OperatorState
from crm.domain.telephony import CallState


@dataclass(frozen=True)
class ScreenPop:
    """A call rings at an operator's extension: the name goes out before anything else is read."""

    kind: ClassVar[str] = 'screen_pop'
    extension: str
    call_id: str
    borrower_id: int | None
    borrower_name: str | None
    number: str
    at: datetime


@dataclass(frozen=True)
class CallStateChanged:
    """A call of the operator at ``extension`` moved to another state."""

    kind: ClassVar[str] = 'call_state'
    extension: str | None
    call_id: str
    state: CallState
    borrower_id: int | None


@dataclass(frozen=True)
class HistoryChanged:
    """Something new in a borrower's communication history: every tab showing that card redraws it."""

    kind: ClassVar[str] = 'history'
    borrower_id: int


@dataclass(frozen=True)
class ChatChanged:
    """A chat got a message, an answer, was read or linked to a borrower (``event``: message | reply |
    read | linked). Every tab takes the unread counts for its badge (``operator_unread`` is the count of
    ``operator_id``, the borrower's assigned operator; ``queue_unread`` the common queue's: unknown
    senders and borrowers nobody is assigned to); a tab showing the borrower's card redraws its chat."""

    kind: ClassVar[str] = 'chat'
    chat_id: str
    borrower_id: int | None
    operator_id: int | None
    name: str  # the borrower's full name, or the unknown sender as the chat system gave it
    event: str
    unread: int  # this chat's unread messages
    operator_unread: int  # chats with unread messages among operator_id's borrowers
    queue_unread: int  # chats with unread messages in the common queue


@dataclass(frozen=True)
class MailingProgress:
    """A mailing queued a batch or changed its state: the pages showing mailings redraw its progress."""

    kind: ClassVar[str] = 'mailing'
    mailing_id: int
    status: str  # scheduled | running | paused | cancelled | done


@dataclass(frozen=True)
class RequestsChanged:
    """Requests (обращения) were opened, joined by a contact, taken, assigned, answered or moved on.

    Every tab hears it: the header's badge takes ``new_count`` (requests in status «Новое»; None when
    this change did not alter it), a card of one of ``borrower_ids`` redraws its requests, the
    «Обращения» page its rows."""

    kind: ClassVar[str] = 'requests'
    new_count: int | None
    borrower_ids: tuple[int, ...]
    request_ids: tuple[int, ...]


@dataclass(frozen=True)
class OperatorStateChanged:
    """An operator's state changed (``crm.domain.operator_states``): every tab hears it — the operator's
    header chip follows it, a dashboard moves the row. ``forced_by`` names the supervisor or admin who
    forced a break or a logout (the operator is told who and why); None when the operator, a call or a
    time-out moved it."""

    kind: ClassVar[str] = 'operator_state'
    user_id: int
    state: OperatorState
    reason: str | None
    since: datetime
    call_id: str | None
    forced_by: str | None = None


@dataclass(frozen=True)
class QueueStatusChanged:
    """The PBX's latest ``telephony.queue.status`` of a queue: every process's dashboards keep it in memory
    (the consumer that got the event is one process of many)."""

    kind: ClassVar[str] = 'queue_status'
    queue: str
    waiting: int
    longest_wait_s: int
    at: datetime


Notification = (
    ScreenPop
    | CallStateChanged
    | HistoryChanged
    | ChatChanged
    | MailingProgress
    | RequestsChanged
    | OperatorStateChanged
    | QueueStatusChanged
)
_KINDS: dict[str, type[Notification]] = {
    k.kind: k
    for k in (
        ScreenPop,
        CallStateChanged,
        HistoryChanged,
        ChatChanged,
        MailingProgress,
        RequestsChanged,
        OperatorStateChanged,
        QueueStatusChanged,
    )
}
_FIELDS: dict[str, tuple[str, ...]] = {kind: tuple(f.name for f in fields(k)) for kind, k in _KINDS.items()}
_BATCH = 'batch'


class BadNotification(ValueError):
    """A message on the UI fanout this version cannot read (from a newer or broken sender)."""


def to_wire(notifications: Iterable[Notification]) -> dict[str, Any]:
    """One message for everything a transaction changed: a publish is a broker round trip."""
    items = [_item(n) for n in notifications]
    return items[0] if len(items) == 1 else {'kind': _BATCH, 'items': items}


def from_wire(body: Mapping[str, Any]) -> list[Notification]:
    kind = body.get('kind')
    if kind == _BATCH:
        return [n for item in body.get('items', ()) for n in from_wire(item)]
    model = _KINDS.get(str(kind))
    if model is None:
        raise BadNotification(f'unknown notification kind {kind!r}')
    try:
        values = {f.name: body[f.name] for f in fields(model)}
    except KeyError as missing:
        raise BadNotification(f'{kind} without {missing}') from None
    if model is ScreenPop:
        values['at'] = datetime.fromisoformat(str(values['at']))
    if model is OperatorStateChanged:
        values['state'] = OperatorState(values['state'])
        values['since'] = datetime.fromisoformat(str(values['since']))
    if model is QueueStatusChanged:
        values['at'] = datetime.fromisoformat(str(values['at']))
    if model is CallStateChanged:
        values['state'] = CallState(values['state'])
    if model is RequestsChanged:
        values['borrower_ids'] = tuple(int(i) for i in values['borrower_ids'])
        values['request_ids'] = tuple(int(i) for i in values['request_ids'])
    return [model(**values)]


def _item(notification: Notification) -> dict[str, Any]:
    item: dict[str, Any] = {'kind': notification.kind}
    for name in _FIELDS[notification.kind]:  # flat fields: no deep copy (asdict) per item
        value = getattr(notification, name)
        item[name] = value.isoformat() if isinstance(value, datetime) else value  # tuples go as lists
    return item
