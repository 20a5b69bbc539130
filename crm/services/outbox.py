"""The outbox: every SMS and e-mail is a row written in the transaction that recorded its communication.

``queue`` / ``queue_many`` are called inside the caller's transaction (the card's «Отправить SMS», a
mailing's batch, the password reset): the communication and its outbox row commit together or not at
all. The dispatcher (below) sends them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from crm.db.models import Communication, OutboxMessage
from crm.domain.messages import PASSWORD_MASK, MessageChannel, OutboxStatus, Purpose
from crm.services.event_schemas import Event, SmsStatus
from crm.services.inbound import Outcome

_communications = cast(Table, Communication.__table__)
_outbox = cast(Table, OutboxMessage.__table__)


@dataclass(frozen=True)
class NewMessage:
    """A message to queue. ``secret``: the text holds a password, kept only until the gateway took it."""

    channel: MessageChannel
    purpose: Purpose
    to: str  # 7XXXXXXXXXX or an e-mail address
    body: str
    subject: str | None = None
    borrower_id: int | None = None
    operator_id: int | None = None
    mailing_id: int | None = None
    secret: bool = False
    not_before: datetime | None = None  # when the law lets it go (None: now)
    reason: str | None = (
        None  # why it waits or was refused (the law's reason), shown on «Исходящие сообщения»
    )
    rule: str | None = None
    status: OutboxStatus = OutboxStatus.QUEUED  # REFUSED: recorded as refused by the law, never sent


def masked(body: str, secret: bool) -> str:
    """What the history and the outbox show of a secret text: never the password."""
    return f'Новый пароль ЛК: {PASSWORD_MASK}' if secret else body


def queue_many(
    session: Session, messages: Sequence[NewMessage], *, now: datetime, ttl: timedelta
) -> list[int]:
    """Record each message's communication and its outbox row in the caller's transaction; the rows' ids.

    Core statements with executemany: a mailing queues thousands at a time.
    """
    if not messages:
        return []
    connection = session.connection()
    communication_ids = connection.execute(
        insert(_communications).returning(_communications.c.id, sort_by_parameter_order=True),
        [_communication(message, now) for message in messages],
    ).scalars()
    rows = [
        _outbox_row(message, communication_id, now, ttl)
        for message, communication_id in zip(messages, communication_ids, strict=True)
    ]
    return list(
        connection.execute(
            insert(_outbox).returning(_outbox.c.id, sort_by_parameter_order=True), rows
        ).scalars()
    )


def queue(session: Session, message: NewMessage, *, now: datetime, ttl: timedelta) -> int:
    return queue_many(session, [message], now=now, ttl=ttl)[0]


def _communication(message: NewMessage, now: datetime) -> dict[str, object]:
    sms = message.channel is MessageChannel.SMS
    return {
        'borrower_id': message.borrower_id,
        'operator_id': message.operator_id,
        'channel': 'password' if message.purpose is Purpose.PASSWORD else message.channel.value,
        'direction': 'out',
        'started_at': message.not_before or now,
        'phone': message.to if sms else None,
        'subject': message.subject,
        'body': masked(message.body, message.secret),
        'delivery_status': message.status.value,
        'collection': message.purpose is Purpose.COLLECTION,
        'reached': None,
    }


def _outbox_row(
    message: NewMessage, communication_id: int, now: datetime, ttl: timedelta
) -> dict[str, object]:
    not_before = message.not_before or now
    return {
        'key': uuid.uuid4().hex,
        'channel': message.channel.value,
        'purpose': message.purpose.value,
        'status': message.status.value,
        'borrower_id': message.borrower_id,
        'communication_id': communication_id,
        'mailing_id': message.mailing_id,
        'operator_id': message.operator_id,
        'to_address': message.to,
        'subject': message.subject,
        'body': message.body,
        'secret': message.secret,
        'not_before': not_before,
        'expires_at': max(not_before, now) + ttl,
        'created_at': now,
        'attempts': 0,
        'reason': message.reason,
        'rule': message.rule,
        'finished_at': None if message.status is OutboxStatus.QUEUED else now,
    }


def sms_status(session: Session, events: Sequence[Event]) -> Outcome:
    """Delivery reports are kept for the SMS outbox to match against what it sent."""
    return Outcome(stored=[event for event in events if isinstance(event, SmsStatus)])
