"""The one way in for events from outside (PBX, chat, SMS gateway): AMQP consumer and HTTP API alike.

decode → claim the idempotency key → the handler registered for the event type → notify after commit.

- **Claim.** Every event is kept in ``inbound_events`` under its idempotency key, in the same transaction
  as its effect, claimed with one ``INSERT … ON CONFLICT DO NOTHING RETURNING`` for a whole run of events:
  a key another transaction holds makes this one wait for it and then counts as a repeat, so the same
  event applied at once by two processes has one effect, and a repeat has none.
- **Handlers** are registered per event type in ``crm.bootstrap`` (``Route``). A handler gets the fresh
  events of its route and says what they came to (``Outcome``). A route marked ``batch`` gets a whole run
  of consecutive events of its route at once (a burst of incoming calls is recorded set-wise); several
  types may share one route (a call's ring, answer and end: a mixed run of them is applied at once).
- **Parking.** An event that arrives before what it is about (``answered`` before ``incoming``) is
  returned by its handler as ``parked`` and waits under its subject (``inbound_events.call_id``); when a
  handler reports that subject as ``appeared``, the parked events are applied, oldest first.
- **One process at a time.** Every process consumes from the shared queue, and each transaction of
  inbound events begins with the cluster-wide turn (``inbound_turn``): no two processes' batches deadlock,
  and a parked event is never left waiting for a subject that appeared in another process's transaction.
- **Dead letters.** A body that cannot be decoded, or an event whose handler fails on a bug, gets a reason
  instead of None; the bus adapter dead-letters it. A run that fails as a whole is retried event by event
  in savepoints, so only the event at fault is dead-lettered. A database that is away is not a reason:
  the error goes up and the whole batch comes again.
- **Deadlocks** with other writers (a screen's action on the same borrower): PostgreSQL rolls one
  transaction back; a batch so rolled back is applied again at once (``ROLLBACK_RETRIES``), not handed
  back to the broker with a back-off.

A new inbound event is a schema in ``event_schemas`` and a handler registered in bootstrap, nothing else.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from crm.db.models import InboundEvent
from crm.db.upsert import insert_ignoring_conflicts
from crm.domain.clock import Clock, system_clock
from crm.domain.notifications import Notification
from crm.integrations.bus import Delivery
from crm.services.event_schemas import BadEvent, Event, decode_event, idempotency_key, parse_event
from crm.services.notifier import Notifier

log = logging.getLogger(__name__)

# The database is away or the link to it broke: nothing of the batch is done, it comes again.
DATABASE_AWAY = (OperationalError, InterfaceError)
INBOUND_LOCK = 230_905_002  # the advisory lock key of ``inbound_turn``
# PostgreSQL rolled the batch's transaction back whole to break a deadlock with another writer (or a
# serialization failure): the same batch at once again almost always goes through, as the other
# transaction has committed meanwhile. After these many tries it goes back to the broker.
ROLLBACK_RETRIES = 4


def rolled_back(error: OperationalError) -> bool:
    """The database undid the whole transaction and asks for it again (SQLSTATE class 40: a deadlock's
    victim, a serialization failure); nothing of it was done."""
    return str(getattr(error.orig, 'sqlstate', None) or '').startswith('40')


@dataclass
class Outcome:
    """What a handler made of its events: what to tell the screens, and which events wait."""

    notifications: list[Notification] = field(default_factory=list)
    parked: list[Event] = field(default_factory=list)  # came before their subject; applied when it appears
    stored: list[Event] = field(default_factory=list)  # kept as they are, for their capability to match
    appeared: list[str] = field(default_factory=list)  # subjects now known: their parked events follow


Handler = Callable[[Session, Sequence[Event]], Outcome]


def call_subject(event: Event) -> str | None:
    return getattr(event, 'call_id', None)


@dataclass(frozen=True)
class Route:
    handler: Handler
    batch: bool = False  # consecutive events of this type go to the handler together
    subject: Callable[[Event], str | None] = call_subject  # what a parked event waits for


_Parsed = tuple[int, str, Event]  # position in the batch, event type, event


class InboundRouter:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        notifier: Notifier,
        routes: dict[str, Route],
        clock: Clock = system_clock,
    ) -> None:
        self._sessions = sessions
        self._notifier = notifier
        self._routes = routes
        self._clock = clock

    # --- the two entry points -------------------------------------------------------------------
    def handle_deliveries(self, deliveries: Sequence[Delivery]) -> list[str | None]:
        """The bus handler: one transaction for the batch, notify after commit.

        Returns, per delivery, None (its effect is committed, or it was a repeat) or the reason it can
        never be processed.
        """
        outcomes: list[str | None] = [None] * len(deliveries)
        parsed: list[_Parsed] = []
        for index, delivery in enumerate(deliveries):
            try:
                event = decode_event(delivery.routing_key, delivery.body)
            except BadEvent as error:
                log.warning('invalid %s event: %s', delivery.routing_key, error.reason)
                outcomes[index] = error.reason
                continue
            except Exception as error:  # whatever a body does to the decoder, it must not stop the queue
                log.warning('undecodable %s event: %s', delivery.routing_key, type(error).__name__)
                outcomes[index] = f'body cannot be decoded: {type(error).__name__}'
                continue
            if delivery.routing_key not in self._routes:
                outcomes[index] = f'no handler for event type {delivery.routing_key!r}'
                continue
            parsed.append((index, delivery.routing_key, event))
        for attempt in range(1, ROLLBACK_RETRIES + 2):
            applied, notifications = list(outcomes), list[Notification]()
            try:
                self._apply_parsed(parsed, applied, notifications)
                break
            except OperationalError as error:
                if not rolled_back(error) or attempt > ROLLBACK_RETRIES:
                    raise
                log.info(
                    'a batch of %d events was rolled back (%s); again, try %d',
                    len(parsed),
                    error.orig,
                    attempt + 1,
                )
                time.sleep(random.uniform(0.0, 0.05 * attempt))  # apart from the transaction it met
        self._notifier.publish(notifications)
        return applied

    def _apply_parsed(
        self, parsed: list[_Parsed], outcomes: list[str | None], notifications: list[Notification]
    ) -> None:
        """The batch's effect: one event in one transaction; more in one transaction and one savepoint,
        or if that fails, a run of a batch type at once, the rest (and a run that failed) each in a
        savepoint."""
        if len(parsed) == 1:  # the usual ring: one transaction, no savepoint (two round trips fewer)
            index, event_type, event = parsed[0]
            outcomes[index] = self._guarded(self._turn, event_type, event, notifications)
        elif parsed:
            with self._turn() as session:
                if self._batch_applied(session, parsed, notifications):
                    return
                for run in self._runs(parsed):
                    if len(run) > 1 and self._run_applied(session, run, notifications):
                        continue
                    for index, event_type, event in run:
                        outcomes[index] = self._guarded(
                            lambda: _savepoint(session), event_type, event, notifications
                        )

    def accept(self, event_type: str, body: dict) -> bool:
        """An event from the HTTP API: validated (BadEvent names the field), applied and committed.

        Returns False when it was a repeat (no second effect).
        """
        event = parse_event(event_type, body)
        if event_type not in self._routes:
            raise BadEvent(f'no handler for event type {event_type!r}', 'type')
        try:
            with self._turn() as session:
                notifications = self._apply(session, [(event_type, event)])
        except IntegrityError:  # the same event committed by another request a moment earlier
            log.info('event %s applied concurrently elsewhere', idempotency_key(event_type, event))
            return False
        if notifications is None:
            return False
        self._notifier.publish(notifications)
        return True

    # --- applying -------------------------------------------------------------------------------
    def _batch_applied(
        self, session: Session, parsed: list[_Parsed], notifications: list[Notification]
    ) -> bool:
        """The whole batch in one savepoint, run after run; False if anything in it failed (then run by run
        and event by event, to find the event at fault). A savepoint per event was two of each event's
        round trips, taken inside the turn every process waits for — under load, batches of mixed calls'
        events are mostly runs of one."""
        gathered: list[Notification] = []
        try:
            with session.begin_nested():
                for run in self._runs(parsed):
                    gathered += self._apply(session, _typed(run)) or []
        except DATABASE_AWAY:
            raise
        except Exception as error:
            log.info('a batch of %d events goes run by run: %s', len(parsed), error)
            return False
        notifications += gathered
        return True

    def _run_applied(self, session: Session, run: list[_Parsed], notifications: list[Notification]) -> bool:
        """A run of one batch-capable type in one savepoint; False if it failed (then one by one)."""
        try:
            with session.begin_nested():
                notifications += self._apply(session, _typed(run)) or []
            return True
        except DATABASE_AWAY:
            raise
        except Exception as error:  # one by one, to find the event at fault
            log.info('a run of %d events from %s goes one by one: %s', len(run), run[0][1], error)
            return False

    def _guarded(
        self,
        scope: Callable[[], AbstractContextManager[Session]],
        event_type: str,
        event: Event,
        notifications: list[Notification],
    ) -> str | None:
        """One event in a transaction or savepoint of its own; the dead-letter reason if it can never
        be applied (a bug must not hold the queue up for ever)."""
        try:
            with scope() as session:
                notifications += self._apply(session, [(event_type, event)]) or []
        except IntegrityError:  # another process applied the same event at the same moment
            log.info('event %s applied concurrently elsewhere', idempotency_key(event_type, event))
        except DATABASE_AWAY:
            raise
        except BadEvent as error:  # the handler's refusal (e.g. a payment for an unknown loan)
            log.warning('event %s refused: %s', idempotency_key(event_type, event), error.reason)
            return error.reason
        except Exception as error:
            log.error('event %s could not be applied', idempotency_key(event_type, event), exc_info=True)
            return f'processing failed: {type(error).__name__}: {error}'[:500]
        return None

    @contextmanager
    def _turn(self) -> Iterator[Session]:
        """A transaction for inbound events, begun with this process's turn (``inbound_turn``)."""
        with self._sessions.begin() as session:
            inbound_turn(session)
            yield session

    def _apply(self, session: Session, run: Sequence[tuple[str, Event]]) -> list[Notification] | None:
        """A run's effect (its events share one route) and what to tell the screens; None when every one
        was a repeat."""
        route = self._routes[run[0][0]]
        fresh = self._claim(session, route, run)
        if not fresh:
            return None
        outcome = route.handler(session, list(fresh.values()))
        key_of = {id(event): key for key, event in fresh.items()}
        for status, held in (('parked', outcome.parked), ('stored', outcome.stored)):
            if held:
                keys = [key_of[id(event)] for event in held]
                session.execute(update(InboundEvent).where(InboundEvent.key.in_(keys)).values(status=status))
        notifications = outcome.notifications
        if outcome.appeared:
            notifications += self._apply_parked(session, outcome.appeared)
        return notifications

    def _claim(self, session: Session, route: Route, run: Sequence[tuple[str, Event]]) -> dict[str, Event]:
        """Record the events not seen before (each once) and return them by key, in order; repeats are
        left out."""
        by_key: dict[str, tuple[str, Event]] = {}
        for event_type, event in run:
            key = idempotency_key(event_type, event)
            if key in by_key:
                log.info('repeated event %s ignored', key)
            else:
                by_key[key] = (event_type, event)
        now = self._clock()
        rows = [
            {
                'key': key,
                'type': event_type,
                'call_id': route.subject(event),
                'body': event.model_dump_json(by_alias=True),
                'status': 'applied',
                'received_at': now,
            }
            for key, (event_type, event) in by_key.items()
        ]
        claimed = set(insert_ignoring_conflicts(session, InboundEvent, rows, InboundEvent.key))
        for key in by_key.keys() - claimed:
            log.info('repeated event %s ignored', key)
        return {key: event for key, (_, event) in by_key.items() if key in claimed}

    def _apply_parked(self, session: Session, subjects: Sequence[str]) -> list[Notification]:
        """Events that came before their subject, applied now that it is there (oldest first)."""
        notifications: list[Notification] = []
        parked = session.scalars(
            select(InboundEvent)
            .where(InboundEvent.call_id.in_(subjects), InboundEvent.status == 'parked')
            .order_by(InboundEvent.id)
        ).all()
        for record in parked:
            early = parse_event(record.type, json.loads(record.body))
            log.info('applying parked %s for %s', record.type, record.call_id)
            outcome = self._routes[record.type].handler(session, [early])
            record.status = 'parked' if outcome.parked else 'applied'
            notifications += outcome.notifications
        return notifications

    def _runs(self, parsed: list[_Parsed]) -> Iterator[list[_Parsed]]:
        """The batch in order, cut into runs: consecutive events of one batch-capable route together."""
        run: list[_Parsed] = []
        for item in parsed:
            route = self._routes[item[1]]
            if run and route is self._routes[run[-1][1]] and route.batch:
                run.append(item)
                continue
            if run:
                yield run
            run = [item]
        if run:
            yield run


def inbound_turn(session: Session) -> None:
    """Until this transaction ends, no other process applies inbound events (PostgreSQL: a
    transaction-level advisory lock; SQLite has one writer at a time anyway).

    Why one at a time: batches of mixed events lock borrowers, loans, chats and requests in differing
    orders, and three processes applying them at once deadlocked most of their batches (the chaos run fell
    to ~20 events/s). One process applies well over 1,000 events/s, far above a call centre's rate. It
    also makes parking exact: a handler looking for an event's subject sees every subject committed
    before its turn, and an event parked in its turn is committed before the next turn looks for it.
    """
    if session.get_bind().dialect.name == 'postgresql':
        session.execute(select(func.pg_advisory_xact_lock(INBOUND_LOCK)))


def _typed(run: list[_Parsed]) -> list[tuple[str, Event]]:
    return [(event_type, event) for _, event_type, event in run]


@contextmanager
def _savepoint(session: Session) -> Iterator[Session]:
    with session.begin_nested():
        yield session
