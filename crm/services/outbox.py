"""The outbox: every SMS and e-mail is a row written in the transaction that recorded its communication.

``queue`` / ``queue_many`` are called inside the caller's transaction (the card's «Отправить SMS», a
mailing's batch, the password reset): the communication and its outbox row commit together or not at
all. ``outbox_dispatcher.OutboxDispatcher`` sends them; ``sms_status`` applies the gateway's delivery
reports.

States: queued → sending (claimed, leased) → sent → delivered | failed; or failed (the gateway refused it,
or it ran out of attempts), expired (not sent before ``expires_at``), refused (the law), cancelled (its
mailing). The communication's ``delivery_status`` follows the row's status, so the card's history and
the 230-FZ ledger read it.

Delivery reports move a message forward only: ``delivered`` is the borrower's receipt and wins over any
other state (the ledger must count a message that arrived); ``failed`` ends only a message that is not
final yet (queued, sending, sent). So nothing undoes ``delivered``, a repeated report changes nothing,
and a report that arrives before the dispatcher recorded the send is not lost: by our key it finds the
row at once; by the gateway's id it is kept (``stored``) and applied when the dispatcher records that id.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import String, Table, any_, bindparam, func, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from crm.db.bulk import insert_many
from crm.db.models import Communication, InboundEvent, OutboxMessage
from crm.domain.messages import PASSWORD_MASK, MessageChannel, OutboxStatus, Purpose
from crm.domain.notifications import HistoryChanged, Notification
from crm.services.event_schemas import Event, SmsStatus, sms_status_key
from crm.services.inbound import Outcome

log = logging.getLogger(__name__)

_communications = cast(Table, Communication.__table__)
_outbox = cast(Table, OutboxMessage.__table__)
UNDELIVERED = 'Оператор связи сообщил о недоставке'
REPORTS_LOCK = 230_905_001  # the advisory lock key of ``serialize_reports``
# A report of failure ends only a message that is not final yet; delivered wins over anything.
_FAILABLE = frozenset({OutboxStatus.QUEUED, OutboxStatus.SENDING, OutboxStatus.SENT})


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

    Set-wise (``crm.db.bulk.insert_many``): a mailing queues thousands at a time.
    """
    if not messages:
        return []
    connection = session.connection()
    communication_ids = insert_many(connection, _communications, [_communication(m, now) for m in messages])
    rows = [
        _outbox_row(message, communication_id, now, ttl)
        for message, communication_id in zip(messages, communication_ids, strict=True)
    ]
    return insert_many(connection, _outbox, rows)


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


def history_changed(borrower_ids: Iterable[int | None]) -> list[Notification]:
    """One notification per borrower whose history changed (the cards showing them redraw it)."""
    return [HistoryChanged(borrower_id) for borrower_id in sorted({b for b in borrower_ids if b is not None})]


# --- delivery reports ---------------------------------------------------------------------------------
def sms_status(session: Session, events: Sequence[Event]) -> Outcome:
    """``sms.status``: the gateway's delivery report, for the message by our key or the gateway's id.

    The router has claimed each report's key (a repeat never gets here); the state change itself is
    monotonic as well (see the module docstring). A report for a message not known (yet) is kept.
    """
    reports = [event for event in events if isinstance(event, SmsStatus)]
    touched, unknown = apply_reports(session, reports)
    if unknown:  # perhaps the dispatcher is recording their gateway ids right now: look once more
        serialize_reports(session)
        found, unknown = apply_reports(session, unknown)
        touched |= found
    for report in unknown:
        log.info('sms.status %s for message %s not matched: kept', report.status, report.message_id)
    return Outcome(notifications=history_changed(touched), stored=list[Event](unknown))


@dataclass
class _Reported:
    id: int
    status: str
    borrower_id: int | None
    communication_id: int | None


def apply_reports(session: Session, reports: Sequence[SmsStatus]) -> tuple[set[int], list[SmsStatus]]:
    """Apply delivery reports in order; the borrowers touched and the reports matching no message."""
    if not reports:
        return set(), []
    o = _outbox.c
    ids = sorted({report.message_id for report in reports})
    found = session.connection().execute(
        select(o.id, o.key, o.gateway_id, o.status, o.borrower_id, o.communication_id)
        .where(or_(o.key.in_(ids), o.gateway_id.in_(ids)))
        .order_by(o.id)
        .with_for_update()
    )
    by_message_id: dict[str, _Reported] = {}
    for row in found:
        reported = _Reported(row.id, row.status, row.borrower_id, row.communication_id)
        by_message_id[row.key] = reported
        if row.gateway_id:
            by_message_id.setdefault(row.gateway_id, reported)
    touched: set[int] = set()
    unknown: list[SmsStatus] = []
    for report in reports:
        message = by_message_id.get(report.message_id)
        if message is None:
            unknown.append(report)
            continue
        if _report_applies(message.status, report.status):
            _apply_report(session, message, report)
            message.status = report.status
            if message.borrower_id is not None:
                touched.add(message.borrower_id)
        else:
            log.info(
                'sms.status %s for outbox %d (%s) changes nothing', report.status, message.id, message.status
            )
    return touched, unknown


def _report_applies(current: str, reported: str) -> bool:
    if reported == OutboxStatus.DELIVERED:
        return current != OutboxStatus.DELIVERED
    return current in _FAILABLE


def _apply_report(session: Session, message: _Reported, report: SmsStatus) -> None:
    connection = session.connection()
    reason = UNDELIVERED if report.status == OutboxStatus.FAILED else None  # delivered: no failure stands
    values: dict[str, object] = {'status': report.status, 'finished_at': report.at, 'reason': reason}
    connection.execute(update(_outbox).where(_outbox.c.id == message.id).values(**values))
    if message.communication_id is not None:
        connection.execute(
            update(_communications)
            .where(_communications.c.id == message.communication_id)
            .values(delivery_status=report.status)
        )


def serialize_reports(session: Session) -> None:
    """Until this transaction ends: the dispatcher recording gateway ids and a report finding none take
    turns (on PostgreSQL a transaction-level advisory lock; SQLite has one writer at a time anyway).

    The report that looks after the lock sees the ids the dispatcher committed; the dispatcher that
    looks after the lock sees the report kept as not matched. So none is left unmatched.
    """
    if session.get_bind().dialect.name == 'postgresql':
        session.execute(select(func.pg_advisory_xact_lock(REPORTS_LOCK)))


def apply_stored_reports(session: Session, gateway_ids: Collection[str]) -> set[int]:
    """Reports that came by the gateway's id before the dispatcher recorded it: applied now, at the end
    of the dispatcher's transaction that records those ids. The borrowers touched."""
    if not gateway_ids:
        return set()
    serialize_reports(session)
    keys = [
        sms_status_key(gateway_id, status) for gateway_id in gateway_ids for status in ('delivered', 'failed')
    ]
    events = cast(Table, InboundEvent.__table__)
    e = events.c
    if session.get_bind().dialect.name == 'postgresql':  # = ANY(array): a short text for any batch
        among = e.key == any_(bindparam('keys', type_=ARRAY(String)))
    else:
        among = e.key.in_(bindparam('keys', expanding=True))
    found = select(e.id, e.body).where(among, e.status == 'stored').order_by(e.id)
    stored = session.connection().execute(found, {'keys': keys}).all()
    if not stored:
        return set()
    reports = [SmsStatus.model_validate_json(body) for _, body in stored]
    touched, _ = apply_reports(session, reports)
    session.connection().execute(
        update(events).where(e.id.in_([row.id for row in stored])).values(status='applied')
    )
    log.info('%d delivery reports that came early applied', len(stored))
    return touched
