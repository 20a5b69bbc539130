"""The PBX's events about calls — incoming, answered, ended — applied set-wise, a run of them at once.

The inbound router (``crm.services.inbound``) has claimed each event's idempotency key before
``calls_events`` sees it, and parks and later re-applies an ``answered`` / ``ended`` that came before its
call.

A call centre's PBX rings in bursts (a campaign of callbacks, the morning rush), and every ring must be
on the operator's screen at once; so the work for a run does not grow in round trips with its size.
Under load a run is the three kinds mixed (one call's ring, another's answer, a third's end), and each
round trip is taken inside the cluster-wide inbound turn every process waits for. The rings are recorded
with one query for calls already known, one lookup each of the extensions and the phones, one INSERT each
into ``communications`` (returning the ids) and ``calls``, and one UPDATE of the borrowers' last contact;
the answers and ends with one SELECT each of their calls and communications and one UPDATE per table
(the session's flush); and the operators' states of the whole run move at once
(``operator_state_store.move``), in the events' order. A single event goes the same way, as a run of one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from crm.db.models import Borrower, Call, Communication, User
from crm.domain.contact_rules import CallLimits
from crm.domain.identifiers import phone_key
from crm.domain.notifications import CallStateChanged, ScreenPop
from crm.domain.operator_states import OperatorEvent
from crm.domain.telephony import CallState
from crm.services.call_views import CallView, OtherBorrower
from crm.services.event_schemas import CallAnswered, CallEnded, CallIncoming, Event
from crm.services.inbound import Outcome
from crm.services.operator_state_store import Move, move
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


@dataclass
class _Run:
    """What a run of call events came to so far: the outcome, and the operators' moves by position."""

    outcome: Outcome = field(default_factory=Outcome)
    moves: list[tuple[int, Move]] = field(default_factory=list)  # (position in the run, move)
    rings: list[Ring] = field(default_factory=list)  # the cards this process's tabs wait for

    def move_at(self, position: int, operator_id: int | None, event: OperatorEvent, call_id: str) -> None:
        if operator_id is not None:
            self.moves.append((position, Move(operator_id, event, call_id)))


def calls_events(
    session: Session,
    events: Sequence[Event],
    pops: ScreenPopReads | None = None,
    limits: CallLimits = DEFAULT_LIMITS,
) -> Outcome:
    """Apply a run of incoming / answered / ended events in their order.

    Each incoming call is recorded with its inbound communication (a known caller's in their request, the
    deadline on ``limits``' calendar); each answer and end moves its call on, and one whose call is not
    recorded yet — or rings later in this run — waits for it (parked). With ``pops``, the cards of the
    rings this process's tabs wait for are read in the same transaction.
    """
    run = _Run()
    rung: dict[str, int] = {}  # call id → the position of its first ring in this run
    for position, event in enumerate(events):
        if isinstance(event, CallIncoming):
            rung.setdefault(event.call_id, position)
    _record_incoming(session, events, run, pops, limits)
    _move_calls_on(session, events, rung, run)
    if run.moves:
        run.moves.sort(key=lambda item: item[0])  # stable: the moves of one position keep their order
        run.outcome.notifications += move(session, [m for _, m in run.moves]).notifications
    if pops is not None and run.rings:
        pops.read(session, run.rings)
    return run.outcome


def _record_incoming(
    session: Session,
    events: Sequence[Event],
    run: _Run,
    pops: ScreenPopReads | None,
    limits: CallLimits,
) -> None:
    fresh = [(position, e) for position, e in enumerate(events) if isinstance(e, CallIncoming)]
    if not fresh:
        return
    ids = [e.call_id for _, e in fresh]
    known = set(session.scalars(select(Call.call_id).where(Call.call_id.in_(ids))))
    for call_id in known:
        log.warning('incoming call_id %s already known (another key): ignored', call_id)
    fresh = [(position, e) for position, e in fresh if e.call_id not in known]
    if not fresh:
        return
    operators = _operators(session, {e.to_extension for _, e in fresh})
    numbers = [phone_key(e.from_) or e.from_ for _, e in fresh]
    holders = holders_of(session, set(numbers))
    connection = session.connection()  # plain Core writes: no ORM bulk machinery while the phone rings
    communication_ids = (
        connection.execute(
            INSERT_COMMUNICATIONS,
            [
                {
                    'borrower_id': _first_id(holders.get(number)),
                    'operator_id': operators.get(e.to_extension),
                    'channel': 'call_in',
                    'direction': 'in',
                    'started_at': e.at,
                    'phone': number[:15],
                    'call_id': e.call_id,
                }
                for (_, e), number in zip(fresh, numbers, strict=True)
            ],
        )
        .scalars()
        .all()
    )
    calls = []
    contacts: list[Contact] = []
    last_contact: dict[int, datetime] = {}
    for (position, event), number, communication_id in zip(fresh, numbers, communication_ids, strict=True):
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
        run.outcome.notifications.append(pop)
        run.outcome.appeared.append(event.call_id)
        run.move_at(position, operator_id, OperatorEvent.RING, event.call_id)
        if operator_id is not None and pops is not None and pops.watches(event.to_extension):
            others = tuple(OtherBorrower(h.id, h.full_name) for h in matches[1 : OTHER_HOLDERS_KEPT + 1])
            run.rings.append(Ring(replace(CallView.ringing(pop), others=others), operator_id))
    connection.execute(INSERT_CALLS, calls)
    before = {h.id: h.last_contact_at for found in holders.values() for h in found}
    # in id order, as every batch that updates borrowers does: two processes' batches then cannot deadlock
    changed = [{'borrower': i, 'contact': at} for i, at in sorted(last_contact.items()) if at != before[i]]
    if changed:
        connection.execute(UPDATE_LAST_CONTACT, changed)
    run.outcome.notifications += contacts_changed(session, join_contacts(session, contacts, limits=limits))


def _move_calls_on(session: Session, events: Sequence[Event], rung: dict[str, int], run: _Run) -> None:
    """The answers and ends, in order: one SELECT of their calls, one of the communications."""
    moving = [(p, e) for p, e in enumerate(events) if isinstance(e, CallAnswered | CallEnded)]
    if not moving:
        return
    calls = {
        call.call_id: call
        for call in session.scalars(select(Call).where(Call.call_id.in_({e.call_id for _, e in moving})))
    }
    ids = {c.communication_id for c in calls.values() if c.communication_id is not None}
    communications = (
        {c.id: c for c in session.scalars(select(Communication).where(Communication.id.in_(ids)))}
        if ids
        else {}
    )
    for position, event in moving:
        call = calls.get(event.call_id)
        if call is None or rung.get(event.call_id, -1) > position:  # its ring is still to come
            log.warning(
                '%s for unknown call_id %s: kept until the call appears', type(event).__name__, event.call_id
            )
            run.outcome.parked.append(event)
            continue
        communication = communications.get(call.communication_id) if call.communication_id else None
        told = apply_to_call(call, communication, event)
        if told is not None:
            run.outcome.notifications.append(told)
            done = OperatorEvent.ANSWER if isinstance(event, CallAnswered) else OperatorEvent.END
            run.move_at(position, call.operator_id, done, call.call_id)


def apply_to_call(
    call: Call, communication: Communication | None, event: CallAnswered | CallEnded
) -> CallStateChanged | None:
    """Move the call (and its communication) on; None when the event changes nothing (a repeat in
    effect: an answer for a call already talking, an end for one already ended)."""
    if isinstance(event, CallAnswered):
        if call.state not in (CallState.RINGING, CallState.DIALING):
            log.info('answered for call %s in state %s: nothing to change', call.call_id, call.state)
            return None
        call.state = CallState.ACTIVE
        call.answered_at = event.at
        if communication is not None:
            communication.reached = True
    else:
        if call.state == CallState.ENDED:
            log.info('ended for call %s already ended', call.call_id)
            return None
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
    return state_changed(call)


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
