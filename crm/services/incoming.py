"""Incoming calls, recorded set-wise: a batch of ``telephony.call.incoming`` in a fixed number of queries.

A call centre's PBX rings in bursts (a campaign of callbacks, the morning rush), and every ring must be
on the operator's screen at once; so the work per batch does not grow in round trips with its size:
the idempotency keys claimed by one INSERT … ON CONFLICT DO NOTHING into ``inbound_events``, one query
for calls already known and answers that came first, one lookup each of the extensions and the phones,
one INSERT each into ``communications`` (returning the ids) and ``calls``, and one UPDATE of the
borrowers' last contact. A single event goes the same way, as a batch of one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, insert, literal, select, update
from sqlalchemy.orm import Session

from crm.db.models import Borrower, BorrowerPhone, Call, Communication, InboundEvent, Loan, User, utcnow
from crm.db.normalize import phone_key
from crm.db.upsert import insert_ignoring_conflicts
from crm.services.event_schemas import CallIncoming, idempotency_key

log = logging.getLogger(__name__)

INCOMING = 'telephony.call.incoming'
OTHER_HOLDERS_KEPT = 10  # other borrowers with the caller's number offered on the call panel


@dataclass(frozen=True)
class Holder:
    """A borrower holding a phone number, as far as a screen pop needs to know."""

    id: int
    full_name: str
    last_contact_at: datetime | None


@dataclass
class Recorded:
    """What a batch came to: the screens to tell, the calls that appeared, how many were repeats."""

    notifications: list[dict[str, object]] = field(default_factory=list)
    new_call_ids: list[str] = field(default_factory=list)
    repeats: int = 0
    with_parked: set[str] = field(default_factory=set)  # calls whose answered / ended came first


def record_incoming(session: Session, events: Sequence[CallIncoming]) -> Recorded:
    """Record each new incoming call with its inbound communication; repeats have no effect.

    Runs inside the caller's transaction and flushes nothing else of the session's.
    """
    result = Recorded()
    fresh = _claim_new_events(session, events, result)
    if not fresh:
        return result
    found = session.execute(
        select(Call.call_id, literal('call'))
        .where(Call.call_id.in_([e.call_id for e in fresh]))
        .union_all(
            select(InboundEvent.call_id, literal('parked')).where(
                InboundEvent.call_id.in_([e.call_id for e in fresh]), InboundEvent.status == 'parked'
            )
        )
    ).all()
    known_calls = {call_id for call_id, what in found if what == 'call'}
    for call_id in known_calls:
        log.warning('incoming call_id %s already known (another key): ignored', call_id)
    fresh = [event for event in fresh if event.call_id not in known_calls]
    result.with_parked = {call_id for call_id, what in found if what == 'parked'} - known_calls
    if not fresh:
        return result

    operators = _operators(session, {event.to_extension for event in fresh})
    numbers = [phone_key(event.from_) or event.from_ for event in fresh]
    holders = holders_of(session, set(numbers))
    communication_ids = session.scalars(
        insert(Communication).returning(Communication.id, sort_by_parameter_order=True),
        [
            {
                'borrower_id': _first_id(holders.get(number)),
                'operator_id': operators.get(event.to_extension),
                'channel': 'call_in',
                'direction': 'in',
                'started_at': event.at,
                'phone': number[:15],
                'call_id': event.call_id,
            }
            for event, number in zip(fresh, numbers, strict=True)
        ],
    ).all()
    calls = []
    last_contact: dict[int, datetime] = {}
    for event, number, communication_id in zip(fresh, numbers, communication_ids, strict=True):
        matches = holders.get(number, [])
        borrower = matches[0] if matches else None
        operator_id = operators.get(event.to_extension)
        if operator_id is None:
            log.warning(
                'incoming call %s to unknown extension %s: recorded, nobody to show it to',
                event.call_id,
                event.to_extension,
            )
        calls.append(
            {
                'call_id': event.call_id,
                'direction': 'in',
                'state': 'ringing',
                'number': number,
                'extension': event.to_extension,
                'operator_id': operator_id,
                'borrower_id': borrower.id if borrower else None,
                'communication_id': communication_id,
                'started_at': event.at,
                'other_borrower_ids': _ids(matches[1 : OTHER_HOLDERS_KEPT + 1]),
            }
        )
        if borrower is not None:
            latest = max(filter(None, (last_contact.get(borrower.id), borrower.last_contact_at, event.at)))
            last_contact[borrower.id] = latest
        result.notifications.append(
            {
                'kind': 'screen_pop',
                'extension': event.to_extension,
                'call_id': event.call_id,
                'borrower_id': borrower.id if borrower else None,
                'borrower_name': borrower.full_name if borrower else None,
                'number': number,
                'at': event.at.isoformat(),
            }
        )
        result.new_call_ids.append(event.call_id)
    session.execute(insert(Call), calls)
    before = {h.id: h.last_contact_at for found in holders.values() for h in found}
    changed = [{'id': i, 'last_contact_at': at} for i, at in last_contact.items() if at != before[i]]
    if changed:
        session.execute(update(Borrower), changed)
    return result


def holders_of(session: Session, numbers: set[str]) -> dict[str, list[Holder]]:
    """Borrowers by phone number: active before archived, the most recent loan first."""
    if not numbers:
        return {}
    latest_loan = select(func.max(Loan.issued_on)).where(Loan.borrower_id == Borrower.id).scalar_subquery()
    rows = session.execute(
        select(
            BorrowerPhone.phone,
            Borrower.id,
            Borrower.last_name,
            Borrower.first_name,
            Borrower.middle_name,
            Borrower.last_contact_at,
        )
        .join(Borrower, Borrower.id == BorrowerPhone.borrower_id)
        .where(BorrowerPhone.phone.in_(numbers))
        .order_by(BorrowerPhone.phone, Borrower.archived, latest_loan.desc().nulls_last(), Borrower.id.desc())
    )
    holders: dict[str, list[Holder]] = {}
    for phone, borrower_id, last, first, middle, last_contact_at in rows:
        found = holders.setdefault(phone, [])
        if all(h.id != borrower_id for h in found):  # the same number stored twice for one borrower
            name = ' '.join(p for p in (last, first, middle) if p)
            found.append(Holder(borrower_id, name, last_contact_at))
    return holders


def _claim_new_events(
    session: Session, events: Sequence[CallIncoming], result: Recorded
) -> list[CallIncoming]:
    """Record the events not seen before (each once) and return them; repeats are left out.

    One INSERT … ON CONFLICT DO NOTHING RETURNING: a key another transaction holds makes this one wait
    for it, then counts as a repeat, so the same event applied at once by two processes has one effect.
    """
    by_key: dict[str, CallIncoming] = {}
    for event in events:
        key = idempotency_key(INCOMING, event)
        if key in by_key:
            result.repeats += 1
            log.info('repeated event %s ignored', key)
        else:
            by_key[key] = event
    now = utcnow()
    rows = [
        {
            'key': key,
            'type': INCOMING,
            'call_id': event.call_id,
            'body': event.model_dump_json(by_alias=True),
            'status': 'applied',
            'received_at': now,
        }
        for key, event in by_key.items()
    ]
    claimed = set(insert_ignoring_conflicts(session, InboundEvent, rows, InboundEvent.key))
    for key in by_key.keys() - claimed:
        log.info('repeated event %s ignored', key)
        result.repeats += 1
    return [event for key, event in by_key.items() if key in claimed]


def _operators(session: Session, extensions: set[str]) -> dict[str, int]:
    rows = session.execute(
        select(User.extension, User.id).where(User.extension.in_(extensions), User.active.is_(True))
    )
    return {extension: user_id for extension, user_id in rows}


def _first_id(holders: list[Holder] | None) -> int | None:
    return holders[0].id if holders else None


def _ids(holders: list[Holder]) -> str | None:
    return ','.join(str(h.id) for h in holders) or None
