"""Chats with borrowers: messages in (``chat.message.received``), attached to the borrower by phone or PIN.

The inbound router hands the handler events whose idempotency keys it has claimed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.db.models import Borrower, Communication
from crm.domain.identifiers import phone_key
from crm.domain.notifications import HistoryChanged
from crm.services.event_schemas import ChatMessage, Event
from crm.services.inbound import Outcome
from crm.services.phone_holders import first_holder

log = logging.getLogger(__name__)


def chat_received(session: Session, events: Sequence[Event]) -> Outcome:
    """A chat message lands in the borrower's history (found by phone, else by PIN)."""
    outcome = Outcome()
    for event in events:
        assert isinstance(event, ChatMessage)
        number = phone_key(event.from_)
        holder_id = first_holder(session, number)
        if holder_id is not None:
            borrower = session.get(Borrower, holder_id)
        else:
            borrower = session.scalar(select(Borrower).where(Borrower.pin == event.from_))
        if borrower is None:
            log.warning('chat %s from an unknown sender: stored without a borrower', event.chat_id)
        session.add(
            Communication(
                borrower_id=borrower.id if borrower else None,
                channel='chat',
                direction='in',
                started_at=event.at,
                phone=number,
                body=event.text,
            )
        )
        if borrower is not None:
            borrower.last_contact_at = max(filter(None, [borrower.last_contact_at, event.at]))
            outcome.notifications.append(HistoryChanged(borrower.id))
    return outcome
