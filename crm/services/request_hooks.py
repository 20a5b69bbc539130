"""Requests opened by what happens elsewhere, in that capability's own transaction (no transaction here).

- **Inbound contacts** (``join_contacts``): a ring from a known number (``call_events.calls_events``), a chat
  message from a known borrower (``chats.chat_received``, and a chat's messages when an operator links it
  to a borrower later) open the borrower's request of origin ``contact`` or join the open one. They are
  on the hot path of a ring, so the work is set-wise: ``request_store.open_or_join``. An e-mail from a
  known borrower (``mail_inbound.email_received``) joins with channel ``email``.
- **Broken promises** (``broken_promise_hook``): ``PromiseChecker`` calls it in its closing transaction
  with what it closed; for the broken ones a request «Нарушено обещание» (origin ``broken_promise``)
  opens for the borrower's assigned operator, or the open one gets a line. The checker tells the screens
  only about histories, so this hook publishes ``RequestsChanged`` itself once the transaction commits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, event, select
from sqlalchemy.orm import Session

from crm.db.bulk import any_of
from crm.db.engine import session_now
from crm.db.models import Borrower, Promise
from crm.domain.contact_rules import CallLimits
from crm.domain.formatting import day, money
from crm.domain.notifications import RequestsChanged
from crm.domain.promises import PromiseStatus
from crm.domain.requests import RequestChannel, RequestEventKind, RequestOrigin
from crm.services.notifier import Notifier
from crm.services.promises import ClosedPromise
from crm.services.request_store import Joined, Opening, changed, open_or_join

CALL_SUBJECT = 'Входящий звонок'
CHAT_SUBJECT = 'Сообщение в чате'
BROKEN_SUBJECT = 'Нарушено обещание'
BROKEN_TOPIC = 'broken_promise'

DEFAULT_LIMITS = CallLimits()  # the legal calendar without transfers; bootstrap passes the configured one
_promises = cast(Table, Promise.__table__)
_borrowers = cast(Table, Borrower.__table__)


@dataclass(frozen=True)
class Contact:
    """An inbound contact of a known borrower: it opens their request or joins the open one."""

    borrower_id: int
    channel: str  # RequestChannel: call | chat | email
    communication_id: int | None
    at: datetime
    subject: str  # of a request it opens
    text: str = ''  # the history line's (and an opened request's) text


def join_contacts(
    session: Session, contacts: Sequence[Contact], *, limits: CallLimits = DEFAULT_LIMITS
) -> list[Joined]:
    """Open or join each contact's request (origin ``contact``) in the caller's transaction."""
    openings = [
        Opening(
            borrower_id=c.borrower_id,
            channel=c.channel,
            at=c.at,
            subject=c.subject,
            text=c.text,
            communication_id=c.communication_id,
        )
        for c in contacts
    ]
    return open_or_join(session, RequestOrigin.CONTACT, openings, limits)


def contacts_changed(session: Session, joined: Sequence[Joined]) -> list[RequestsChanged]:
    """What to tell the screens about them (the new count only if a request opened)."""
    return changed(session, joined)


OnClosed = Callable[[Session, Sequence[ClosedPromise]], None]


def broken_promise_hook(notifier: Notifier, *, limits: CallLimits) -> OnClosed:
    """``PromiseChecker``'s ``on_closed``: «Нарушено обещание» for the assigned operator."""

    def on_closed(session: Session, closed: Sequence[ClosedPromise]) -> None:
        notes = broken_promises(session, closed, limits=limits)
        if notes:  # the checker commits after this returns: tell the screens once it did
            event.listen(session, 'after_commit', lambda _: notifier.publish(notes), once=True)

    return on_closed


def broken_promises(
    session: Session, closed: Sequence[ClosedPromise], *, limits: CallLimits
) -> list[RequestsChanged]:
    broken = sorted((c for c in closed if c.status == PromiseStatus.BROKEN), key=lambda c: c.id)
    if not broken:
        return []
    connection = session.connection()
    postgres = connection.dialect.name == 'postgresql'
    ids = [c.id for c in broken]
    terms = {
        row.id: row
        for row in connection.execute(
            select(_promises.c.id, _promises.c.amount, _promises.c.due_on).where(
                any_of(_promises.c.id, postgres)
            ),
            {'ids': ids},
        )
    }
    borrower_ids = sorted({c.borrower_id for c in broken})
    operators = dict(
        connection.execute(
            select(_borrowers.c.id, _borrowers.c.assigned_operator_id).where(
                any_of(_borrowers.c.id, postgres)
            ),
            {'ids': borrower_ids},
        ).all()
    )
    now = session_now(session)
    openings = [
        Opening(
            borrower_id=c.borrower_id,
            channel=RequestChannel.SYSTEM,
            at=now,
            subject=BROKEN_SUBJECT,
            text=_broken_text(terms.get(c.id)),
            topic_code=BROKEN_TOPIC,
            assignee_id=operators.get(c.borrower_id),
            join_kind=RequestEventKind.COMMENT,
        )
        for c in broken
    ]
    return changed(session, open_or_join(session, RequestOrigin.BROKEN_PROMISE, openings, limits))


def _broken_text(row: Row[Any, Any, Any] | None) -> str:
    if row is None:
        return BROKEN_SUBJECT
    return f'Не выполнено обещание оплатить {money(row.amount)} до {day(row.due_on)}'
