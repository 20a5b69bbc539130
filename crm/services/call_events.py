"""The PBX's events about calls: incoming (recorded set-wise), answered and ended.

The inbound router (``crm.services.inbound``) has claimed each event's idempotency key before these
handlers see it, and parks and later re-applies an ``answered`` / ``ended`` that came before its call.

A call centre's PBX rings in bursts (a campaign of callbacks, the morning rush), and every ring must be
on the operator's screen at once; so the work for a run of incoming calls does not grow in round trips
with its size: one query for calls already known, one lookup each of the extensions and the phones, one
INSERT each into ``communications`` (returning the ids) and ``calls``, and one UPDATE of the borrowers'
last contact. A single event goes the same way, as a run of one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from crm.db.models import Borrower, Call, Communication, User
from crm.domain.contact_rules import CallLimits
from crm.domain.identifiers import phone_key
from crm.domain.notifications import CallStateChanged, Notification, ScreenPop
from crm.domain.operator_states import OperatorEvent
from crm.domain.telephony import CallState
from crm.services.call_views import CallView, OtherBorrower
from crm.services.event_schemas import CallAnswered, CallEnded, CallIncoming, Event
from crm.services.inbound import Outcome
from crm.services.operator_state_store import on_calls
from crm.services.phone_holders import Holder, holders_of
from crm.services.request_hooks import CALL_SUBJECT, DEFAULT_LIMITS, Contact, contacts_changed, join_contacts
from crm.services.screen_pops import Ring, ScreenPopReads

log = logging.getLogger(__name__)

OTHER_HOLDERS_KEPT = 10  # other borrowers with the caller's number offered on the call panel

_communications = cast(Table, Communication.__table__)
_calls = cast(Table, Call.__table__)
_borrowers = cast(Table, Borrower.__table__)
# Built once: every ring runs them, with its rows bound at execution.
INSERT_COMMUNICATIONS = insert(_communications).returning(_communications.c.id, sort_by_parameter_order=True)
INSERT_CALLS = insert(_calls)
UPDATE_LAST_CONTACT = (
    update(_borrowers)
    .where(_borrowers.c.id == bindparam('borrower'))
    .values(last_contact_at=bindparam('contact'))
)


def incoming(
    session: Session,
    events: Sequence[Event],
    pops: ScreenPopReads | None = None,
    limits: CallLimits = DEFAULT_LIMITS,
) -> Outcome:
    """Record each incoming call with its inbound communication (a run of them at once), a known
    caller's in their request (``request_hooks``, the deadline on ``limits``' calendar); with ``pops``,
    the cards of the rings this process's tabs wait for are read in the same transaction."""
    fresh = [event for event in events if isinstance(event, CallIncoming)]
    known = set(session.scalars(select(Call.call_id).where(Call.call_id.in_([e.call_id for e in fresh]))))
    for call_id in known:
        log.warning('incoming call_id %s already known (another key): ignored', call_id)
    fresh = [event for event in fresh if event.call_id not in known]
    outcome = Outcome()
    if not fresh:
        return outcome
    operators = _operators(session, {event.to_extension for event in fresh})
    numbers = [phone_key(event.from_) or event.from_ for event in fresh]
    holders = holders_of(session, set(numbers))
    connection = session.connection()  # plain Core writes: no ORM bulk machinery while the phone rings
    communication_ids = (
        connection.execute(
            INSERT_COMMUNICATIONS,
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
        )
        .scalars()
        .all()
    )
    calls = []
    rings: list[Ring] = []
    contacts: list[Contact] = []
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
                'state': CallState.RINGING,
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
            contacts.append(Contact(borrower.id, 'call', communication_id, event.at, CALL_SUBJECT))
        pop = ScreenPop(
            extension=event.to_extension,
            call_id=event.call_id,
            borrower_id=borrower.id if borrower else None,
            borrower_name=borrower.full_name if borrower else None,
            number=number,
            at=event.at,
        )
        outcome.notifications.append(pop)
        outcome.appeared.append(event.call_id)
        if operator_id is not None and pops is not None and pops.watches(event.to_extension):
            others = tuple(OtherBorrower(h.id, h.full_name) for h in matches[1 : OTHER_HOLDERS_KEPT + 1])
            rings.append(Ring(replace(CallView.ringing(pop), others=others), operator_id))
    connection.execute(INSERT_CALLS, calls)
    before = {h.id: h.last_contact_at for found in holders.values() for h in found}
    # in id order, as every batch that updates borrowers does: two processes' batches then cannot deadlock
    changed = [{'borrower': i, 'contact': at} for i, at in sorted(last_contact.items()) if at != before[i]]
    if changed:
        connection.execute(UPDATE_LAST_CONTACT, changed)
    outcome.notifications += contacts_changed(session, join_contacts(session, contacts, limits=limits))
    outcome.notifications += on_calls(
        session, [(c['operator_id'], OperatorEvent.RING, c['call_id']) for c in calls]
    )
    if pops is not None and rings:
        pops.read(session, rings)
    return outcome


def answered_or_ended(session: Session, events: Sequence[Event]) -> Outcome:
    """Move the call on; an event for a call not recorded yet waits for it (parked)."""
    outcome = Outcome()
    for event in events:
        assert isinstance(event, CallAnswered | CallEnded)
        call = session.scalar(select(Call).where(Call.call_id == event.call_id))
        if call is None:
            log.warning(
                '%s for unknown call_id %s: kept until the call appears', type(event).__name__, event.call_id
            )
            outcome.parked.append(event)
            continue
        outcome.notifications += apply_to_call(session, call, event)
    return outcome


def apply_to_call(session: Session, call: Call, event: CallAnswered | CallEnded) -> list[Notification]:
    communication = session.get(Communication, call.communication_id) if call.communication_id else None
    if isinstance(event, CallAnswered):
        if call.state not in (CallState.RINGING, CallState.DIALING):
            log.info('answered for call %s in state %s: nothing to change', call.call_id, call.state)
            return []
        call.state = CallState.ACTIVE
        call.answered_at = event.at
        if communication is not None:
            communication.reached = True
    else:
        if call.state == CallState.ENDED:
            log.info('ended for call %s already ended', call.call_id)
            return []
        if call.state != CallState.TRANSFERRED:
            call.state = CallState.ENDED
        call.ended_at = event.at
        call.duration_s = event.duration_s if event.duration_s is not None else _seconds(call, event.at)
        call.recording_url = event.recording_url
        if communication is not None:
            communication.ended_at = event.at
            communication.duration_s = call.duration_s
            communication.recording_url = event.recording_url
            if call.answered_at is None and communication.reached is None:
                communication.reached = False
    event_of = OperatorEvent.ANSWER if isinstance(event, CallAnswered) else OperatorEvent.END
    return [state_changed(call), *on_calls(session, [(call.operator_id, event_of, call.call_id)])]


def state_changed(call: Call) -> CallStateChanged:
    return CallStateChanged(
        extension=call.extension,
        call_id=call.call_id,
        state=CallState(call.state),
        borrower_id=call.borrower_id,
    )


def _seconds(call: Call, ended_at: datetime) -> int:
    start = call.answered_at or call.started_at
    return max(0, int((ended_at - start).total_seconds())) if call.answered_at else 0


def _operators(session: Session, extensions: set[str]) -> dict[str, int]:
    rows = session.execute(
        select(User.extension, User.id).where(User.extension.in_(extensions), User.active.is_(True))
    )
    return {extension: user_id for extension, user_id in rows if extension is not None}


def _first_id(holders: list[Holder] | None) -> int | None:
    return holders[0].id if holders else None


def _ids(holders: list[Holder]) -> str | None:
    return ','.join(str(h.id) for h in holders) or None
