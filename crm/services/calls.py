"""Calls: events from the PBX, the operator's call controls, and the result of every call.

State machine (the PBX's events drive it; hold and transfer follow the operator's commands):

    ringing --answered--> active <--hold/resume--> on_hold
    dialing --answered--> active
    ringing | dialing | active | on_hold --ended--> ended
    active | on_hold --transfer--> transferred

Every inbound event is kept in ``inbound_events`` under an idempotency key, in the same transaction
as its effect: a repeat is recognised and has no second effect. An ``answered`` or ``ended`` that
arrives before its ``incoming`` waits there ("parked") and is applied when the call appears.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from crm.db.models import (
    Borrower,
    Call,
    Communication,
    InboundEvent,
    ResultCode,
    User,
    utcnow,
)
from crm.db.normalize import phone_key
from crm.domain import Role
from crm.integrations.bus import Delivery, EventBus
from crm.services import audit
from crm.services.actor import Actor
from crm.services.compliance import ComplianceService
from crm.services.errors import AccessDenied, NotFound, ServiceError
from crm.services.event_schemas import (
    BadEvent,
    CallAnswered,
    CallEnded,
    CallIncoming,
    ChatMessage,
    Event,
    SmsStatus,
    decode_event,
    idempotency_key,
    parse_event,
)
from crm.services.incoming import holders_of, record_incoming

log = logging.getLogger(__name__)

LIVE_STATES = ('ringing', 'dialing', 'active', 'on_hold')
DONE_STATES = ('ended', 'transferred')
STATE_LABELS = {
    'ringing': 'Входящий звонок',
    'dialing': 'Набор номера',
    'active': 'Разговор',
    'on_hold': 'На удержании',
    'transferred': 'Переведён',
    'ended': 'Завершён',
}


@dataclass(frozen=True)
class OtherBorrower:
    id: int
    full_name: str


@dataclass(frozen=True)
class CallView:
    call_id: str
    direction: str
    state: str
    number: str
    extension: str | None
    borrower_id: int | None
    borrower_name: str | None
    others: tuple[OtherBorrower, ...]
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    duration_s: int | None
    recording_url: str | None
    transferred_to: str | None
    result_code: str | None

    @classmethod
    def ringing(cls, notification: dict[str, Any]) -> CallView:
        """What a screen-pop notification itself tells, to show before anything is read from the database."""
        return cls(
            call_id=str(notification['call_id']),
            direction='in',
            state='ringing',
            number=str(notification.get('number') or ''),
            extension=notification.get('extension'),
            borrower_id=notification.get('borrower_id'),
            borrower_name=notification.get('borrower_name'),
            others=(),
            started_at=datetime.fromisoformat(str(notification['at'])),
            answered_at=None,
            ended_at=None,
            duration_s=None,
            recording_url=None,
            transferred_to=None,
            result_code=None,
        )

    @property
    def live(self) -> bool:
        return self.state in LIVE_STATES

    @property
    def needs_result(self) -> bool:
        return self.state in DONE_STATES and self.result_code is None and self.borrower_id is not None

    @property
    def state_label(self) -> str:
        return STATE_LABELS.get(self.state, self.state)


@dataclass(frozen=True)
class ResultOption:
    code: str
    name: str
    reached: bool
    needs_promise: bool
    needs_callback: bool


@dataclass(frozen=True)
class CallResult:
    code: str
    comment: str = ''
    promise_amount: Decimal | str | None = None
    promise_date: date | None = None
    callback_at: datetime | None = None


Notification = dict[str, object]


class CallService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        bus: EventBus,
        compliance: ComplianceService,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._bus = bus
        self._compliance = compliance
        self._clock = clock

    # --- events from outside --------------------------------------------------------------------
    def handle_deliveries(self, deliveries: Sequence[Delivery]) -> list[str | None]:
        """The bus handler: one transaction for the batch, notify after commit.

        A run of incoming calls is recorded set-wise in one savepoint; other events, and the events of
        a run that failed as a whole, get a savepoint each, so one bad event is dead-lettered alone.
        """
        outcomes: list[str | None] = []
        parsed: list[tuple[int, str, Event]] = []
        for index, delivery in enumerate(deliveries):
            outcomes.append(None)
            try:
                parsed.append(
                    (index, delivery.routing_key, decode_event(delivery.routing_key, delivery.body))
                )
            except BadEvent as error:
                log.warning('invalid %s event: %s', delivery.routing_key, error.reason)
                outcomes[index] = error.reason
        notifications: list[Notification] = []
        if len(parsed) == 1:  # the usual ring: one transaction, no savepoint (two round trips fewer)
            index, event_type, event = parsed[0]
            outcomes[index] = self._apply_guarded(self._sessions.begin, event_type, event, notifications)
            self._notify(notifications)
            return outcomes
        with self._sessions.begin() as session:
            for run in _runs_of_incoming(parsed):
                if len(run) > 1:
                    try:
                        with session.begin_nested():
                            notifications += self._incoming(session, [event for _, _, event in run]) or []
                        continue
                    except (OperationalError, InterfaceError):
                        raise  # the database is away: nothing of the batch is done, it comes again
                    except Exception as error:  # one by one, to find the event at fault
                        log.info('a run of %d incoming calls goes one by one: %s', len(run), error)
                for index, event_type, event in run:
                    outcomes[index] = self._apply_guarded(
                        lambda: _savepoint(session), event_type, event, notifications
                    )
        self._notify(notifications)
        return outcomes

    def _apply_guarded(
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
                notifications += self._apply(session, event_type, event) or []
        except IntegrityError:  # another process applied the same event at the same moment
            log.info('event %s applied concurrently elsewhere', idempotency_key(event_type, event))
        except (OperationalError, InterfaceError):
            raise  # the database is away: nothing of the batch is done, it comes again
        except Exception as error:
            log.error('event %s could not be applied', idempotency_key(event_type, event), exc_info=True)
            return f'processing failed: {type(error).__name__}: {error}'[:500]
        return None

    def accept(self, event_type: str, body: dict) -> bool:
        """An event from the HTTP API: validated (BadEvent names the field), applied and committed.

        Returns False when it was a repeat (no second effect).
        """
        event = parse_event(event_type, body)
        key = idempotency_key(event_type, event)
        try:
            with self._sessions.begin() as session:
                notifications = self._apply(session, event_type, event)
        except IntegrityError:  # the same event committed by another request a moment earlier
            log.info('event %s applied concurrently elsewhere', key)
            return False
        if notifications is None:
            return False
        self._notify(notifications)
        return True

    def _apply(self, session: Session, event_type: str, event: Event) -> list[Notification] | None:
        """The event's effect and what to tell the screens; None when it is a repeat."""
        if isinstance(event, CallIncoming):
            return self._incoming(session, [event])
        key = idempotency_key(event_type, event)
        if session.scalar(select(InboundEvent.id).where(InboundEvent.key == key)) is not None:
            log.info('repeated event %s ignored', key)
            return None
        record = InboundEvent(
            key=key,
            type=event_type,
            call_id=getattr(event, 'call_id', None),
            body=event.model_dump_json(by_alias=True),
            status='applied',
            received_at=utcnow(),
        )
        session.add(record)
        if isinstance(event, CallAnswered | CallEnded):
            call = session.scalar(select(Call).where(Call.call_id == event.call_id))
            if call is None:
                log.warning(
                    '%s for unknown call_id %s: kept until the call appears', event_type, event.call_id
                )
                record.status = 'parked'
                return []
            return self._call_event(session, call, event)
        if isinstance(event, ChatMessage):
            return self._chat(session, event, record)
        if isinstance(event, SmsStatus):
            record.status = 'stored'  # delivery reports are matched by the messaging service
            return []
        raise AssertionError(event_type)

    def _incoming(self, session: Session, events: Sequence[CallIncoming]) -> list[Notification] | None:
        """Record the calls (see ``incoming``), then apply what arrived for them before they did."""
        recorded = record_incoming(session, events)
        if not recorded.new_call_ids:
            return None if recorded.repeats == len(events) else []
        notifications = recorded.notifications
        if not recorded.with_parked:
            return notifications
        parked = session.scalars(
            select(InboundEvent)
            .where(InboundEvent.call_id.in_(recorded.with_parked), InboundEvent.status == 'parked')
            .order_by(InboundEvent.id)
        ).all()
        for early_record in parked:
            early = parse_event(early_record.type, json.loads(early_record.body))
            assert isinstance(early, CallAnswered | CallEnded)
            early_record.status = 'applied'
            log.info('applying parked %s for call %s', early_record.type, early.call_id)
            call = session.scalar(select(Call).where(Call.call_id == early.call_id))
            notifications += self._call_event(session, call, early)
        return notifications

    def _call_event(
        self, session: Session, call: Call, event: CallAnswered | CallEnded
    ) -> list[Notification]:
        communication = session.get(Communication, call.communication_id) if call.communication_id else None
        if isinstance(event, CallAnswered):
            if call.state not in ('ringing', 'dialing'):
                log.info('answered for call %s in state %s: nothing to change', call.call_id, call.state)
                return []
            call.state = 'active'
            call.answered_at = event.at
            if communication is not None:
                communication.reached = True
        else:
            if call.state == 'ended':
                log.info('ended for call %s already ended', call.call_id)
                return []
            if call.state != 'transferred':
                call.state = 'ended'
            call.ended_at = event.at
            call.duration_s = event.duration_s if event.duration_s is not None else _seconds(call, event.at)
            call.recording_url = event.recording_url
            if communication is not None:
                communication.ended_at = event.at
                communication.duration_s = call.duration_s
                communication.recording_url = event.recording_url
                if call.answered_at is None and communication.reached is None:
                    communication.reached = False
        return [_state_notification(call)]

    def _chat(self, session: Session, event: ChatMessage, record: InboundEvent) -> list[Notification]:
        number = phone_key(event.from_)
        holder_id = _first_holder(session, number)
        if holder_id is not None:
            borrower = session.get(Borrower, holder_id)
        else:
            borrower = session.scalar(select(Borrower).where(Borrower.pin == event.from_))
        if borrower is None:
            log.warning('chat %s from unknown %s: stored without a borrower', event.chat_id, event.from_)
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
            return [{'kind': 'history', 'borrower_id': borrower.id}]
        return []

    # --- the operator's controls -----------------------------------------------------------------
    def dial(self, actor: Actor, number: str, *, borrower_id: int | None = None) -> CallView:
        """An outgoing call: refused when the law or an unrecorded result stands in the way."""
        if not actor.extension:
            raise ServiceError('У вас нет внутреннего номера: звонить можно только с привязанного телефона')
        normalised = phone_key(number)
        if normalised is None:
            raise ServiceError('Неверный номер телефона: нужен российский номер из 10 или 11 цифр')
        now = self._clock()
        with self._sessions.begin() as session:
            self._require_free(session, actor)
            if borrower_id is None:
                borrower_id = _first_holder(session, normalised)
            if borrower_id is not None:
                verdict = self._compliance.outgoing_call_in(session, borrower_id, now=now)
                if not verdict.allowed:
                    raise ServiceError(verdict.reason or 'Звонок запрещён')
            communication = Communication(
                borrower_id=borrower_id,
                operator_id=actor.id,
                channel='call_out',
                direction='out',
                started_at=now,
                phone=normalised,
            )
            session.add(communication)
            session.flush()
            call = Call(
                call_id=f'crm-{uuid.uuid4()}',
                direction='out',
                state='dialing',
                number=normalised,
                extension=actor.extension,
                operator_id=actor.id,
                borrower_id=borrower_id,
                communication_id=communication.id,
                started_at=now,
            )
            communication.call_id = call.call_id
            session.add(call)
            if borrower_id is not None:
                session.get(Borrower, borrower_id).last_contact_at = now
            audit.record(
                session, 'call.dial', user_id=actor.id, borrower_id=borrower_id, call_id=call.call_id
            )
            session.flush()
            view = _view(session, call)
        self._bus.publish_command(
            'telephony.dial', {'call_id': view.call_id, 'extension': actor.extension, 'number': normalised}
        )
        self._notify([_state_notification(view)])
        return view

    def hold(self, actor: Actor, call_id: str) -> CallView:
        return self._command(actor, call_id, 'telephony.hold', ('active',), 'on_hold')

    def resume(self, actor: Actor, call_id: str) -> CallView:
        return self._command(actor, call_id, 'telephony.resume', ('on_hold',), 'active')

    def transfer(self, actor: Actor, call_id: str, to_extension: str) -> CallView:
        to_extension = to_extension.strip()
        with self._sessions() as session:
            target = session.scalar(select(User).where(User.extension == to_extension, User.active.is_(True)))
        if target is None:
            raise ServiceError(f'Внутренний номер {to_extension or "—"} не найден')
        if to_extension == actor.extension:
            raise ServiceError('Нельзя перевести звонок на свой же номер')
        return self._command(
            actor,
            call_id,
            'telephony.transfer',
            ('active', 'on_hold'),
            'transferred',
            to_extension=to_extension,
        )

    def hangup(self, actor: Actor, call_id: str) -> CallView:
        """Ask the PBX to end the call; the state turns to ended when the PBX says so."""
        return self._command(actor, call_id, 'telephony.hangup', LIVE_STATES, None)

    def _command(
        self,
        actor: Actor,
        call_id: str,
        command: str,
        allowed_from: Sequence[str],
        new_state: str | None,
        **extra: str,
    ) -> CallView:
        with self._sessions.begin() as session:
            call = self._own_call(session, actor, call_id)
            if call.state not in allowed_from:
                raise ServiceError(
                    f'Недоступно: звонок в состоянии «{STATE_LABELS.get(call.state, call.state)}»'
                )
            if new_state is not None:
                call.state = new_state
            if new_state == 'transferred':
                call.transferred_to = extra['to_extension']
            audit.record(
                session,
                command.replace('telephony.', 'call.'),
                user_id=actor.id,
                borrower_id=call.borrower_id,
                call_id=call_id,
                **extra,
            )
            view = _view(session, call)
        self._bus.publish_command(command, {'call_id': call_id, **extra})
        self._notify([_state_notification(view)])
        return view

    def link_borrower(self, actor: Actor, call_id: str, borrower_id: int) -> CallView:
        """Say whom the call is with: another holder of the number, or an unknown caller found by search."""
        with self._sessions.begin() as session:
            call = self._own_call(session, actor, call_id)
            borrower = session.get(Borrower, borrower_id)
            if borrower is None:
                raise NotFound('Заёмщик не найден')
            call.borrower_id = borrower.id
            if call.communication_id:
                session.get(Communication, call.communication_id).borrower_id = borrower.id
            borrower.last_contact_at = max(filter(None, [borrower.last_contact_at, call.started_at]))
            audit.record(session, 'call.link', user_id=actor.id, borrower_id=borrower.id, call_id=call_id)
            view = _view(session, call)
        self._notify([{'kind': 'history', 'borrower_id': borrower_id}])
        return view

    def transfer_targets(self, actor: Actor) -> list[tuple[str, str]]:
        """(extension, name) of everyone a call can be transferred to."""
        with self._sessions() as session:
            rows = session.execute(
                select(User.extension, User.full_name)
                .where(User.extension.is_not(None), User.active.is_(True), User.id != actor.id)
                .order_by(User.extension)
            ).all()
            return [(ext, name) for ext, name in rows]

    # --- results ---------------------------------------------------------------------------------
    def result_options(self) -> list[ResultOption]:
        with self._sessions() as session:
            codes = session.scalars(
                select(ResultCode).where(ResultCode.active.is_(True)).order_by(ResultCode.position)
            )
            return [ResultOption(c.code, c.name, c.reached, c.needs_promise, c.needs_callback) for c in codes]

    def save_result(self, actor: Actor, call_id: str, result: CallResult) -> CallView:
        """Record what the call came to; it lands in the borrower's history at once."""
        now = self._clock()
        with self._sessions.begin() as session:
            call = self._own_call(session, actor, call_id)
            if call.state in ('ringing', 'dialing', 'active', 'on_hold'):
                raise ServiceError('Результат записывается после завершения звонка')
            option = session.scalar(
                select(ResultCode).where(ResultCode.code == result.code, ResultCode.active.is_(True))
            )
            if option is None:
                raise ServiceError('Выберите результат звонка из списка')
            communication = session.get(Communication, call.communication_id)
            if communication is None:
                raise NotFound('Запись о звонке не найдена')
            amount, promise_date, callback_at = _validate_result(option, result, now)
            communication.result_code = option.code
            communication.result_name = option.name
            communication.reached = option.reached and call.answered_at is not None
            communication.comment = result.comment.strip() or None
            communication.promise_amount = amount
            communication.promise_date = promise_date
            communication.callback_at = callback_at
            audit.record(
                session,
                'call.result',
                user_id=actor.id,
                borrower_id=call.borrower_id,
                call_id=call_id,
                result=option.code,
            )
            view = _view(session, call)
        if view.borrower_id is not None:
            self._notify([{'kind': 'history', 'borrower_id': view.borrower_id}, _state_notification(view)])
        return view

    # --- what the operator's screen shows --------------------------------------------------------
    def current(self, actor: Actor) -> CallView | None:
        """The operator's live call, else their last call still waiting for its result."""
        with self._sessions() as session:
            call = session.scalar(
                select(Call)
                .where(Call.operator_id == actor.id, Call.state.in_(LIVE_STATES))
                .order_by(Call.started_at.desc())
                .limit(1)
            )
            if call is None:
                call = self._pending_result(session, actor)
            return _view(session, call) if call is not None else None

    def view(self, actor: Actor, call_id: str) -> CallView:
        with self._sessions() as session:
            return _view(session, self._own_call(session, actor, call_id))

    def _require_free(self, session: Session, actor: Actor) -> None:
        live = session.scalar(
            select(Call.id).where(Call.operator_id == actor.id, Call.state.in_(LIVE_STATES)).limit(1)
        )
        if live is not None:
            raise ServiceError('Сначала завершите текущий звонок')
        if self._pending_result(session, actor) is not None:
            raise ServiceError('Сначала сохраните результат предыдущего звонка')

    @staticmethod
    def _pending_result(session: Session, actor: Actor) -> Call | None:
        return session.scalar(
            select(Call)
            .join(Communication, Communication.id == Call.communication_id)
            .where(
                Call.operator_id == actor.id,
                Call.state.in_(DONE_STATES),
                Call.borrower_id.is_not(None),
                Communication.result_code.is_(None),
            )
            .order_by(Call.started_at.desc())
            .limit(1)
        )

    @staticmethod
    def _own_call(session: Session, actor: Actor, call_id: str) -> Call:
        call = session.scalar(select(Call).where(Call.call_id == call_id))
        if call is None:
            raise NotFound('Звонок не найден')
        if call.operator_id != actor.id and actor.role != Role.ADMIN:
            raise AccessDenied('Это звонок другого сотрудника')
        return call

    def _notify(self, notifications: list[Notification]) -> None:
        """One UI message for everything a transaction changed: a publish is a broker round trip."""
        if not notifications:
            return
        body = notifications[0] if len(notifications) == 1 else {'kind': 'batch', 'items': notifications}
        try:
            self._bus.publish_ui(body)
        except Exception:  # the effect is committed; a lost screen update must not undo it
            log.warning('%d UI notifications not delivered', len(notifications), exc_info=True)


def _validate_result(
    option: ResultCode, result: CallResult, now: datetime
) -> tuple[Decimal | None, date | None, datetime | None]:
    amount = promise_date = callback_at = None
    if option.needs_promise:
        try:
            amount = Decimal(str(result.promise_amount).replace(' ', '').replace(',', '.'))
        except (InvalidOperation, ValueError):
            raise ServiceError('Укажите сумму обещанного платежа') from None
        if not amount.is_finite() or amount <= 0:
            raise ServiceError('Сумма обещанного платежа должна быть больше нуля')
        if amount > Decimal('100000000'):
            raise ServiceError('Сумма обещанного платежа слишком велика')
        amount = amount.quantize(Decimal('0.01'))
        if result.promise_date is None:
            raise ServiceError('Укажите дату обещанного платежа')
        if result.promise_date < now.date():
            raise ServiceError('Дата обещанного платежа не может быть в прошлом')
        promise_date = result.promise_date
    if option.needs_callback:
        if result.callback_at is None:
            raise ServiceError('Укажите дату и время, когда перезвонить')
        if result.callback_at <= now:
            raise ServiceError('Время обратного звонка должно быть в будущем')
        callback_at = result.callback_at
    return amount, promise_date, callback_at


@contextmanager
def _savepoint(session: Session) -> Iterator[Session]:
    with session.begin_nested():
        yield session


def _runs_of_incoming(
    parsed: list[tuple[int, str, Event]],
) -> list[list[tuple[int, str, Event]]]:
    """The batch in order, cut into runs: consecutive incoming calls together, anything else alone."""
    runs: list[list[tuple[int, str, Event]]] = []
    for item in parsed:
        if runs and isinstance(item[2], CallIncoming) and isinstance(runs[-1][-1][2], CallIncoming):
            runs[-1].append(item)
        else:
            runs.append([item])
    return runs


def _first_holder(session: Session, number: str | None) -> int | None:
    """The borrower a call or message from this number is about, if anyone holds it."""
    if not number:
        return None
    found = holders_of(session, {number}).get(number)
    return found[0].id if found else None


def _seconds(call: Call, ended_at: datetime) -> int:
    start = call.answered_at or call.started_at
    return max(0, int((ended_at - start).total_seconds())) if call.answered_at else 0


def _view(session: Session, call: Call) -> CallView:
    borrower = session.get(Borrower, call.borrower_id) if call.borrower_id else None
    others: tuple[OtherBorrower, ...] = ()
    if call.other_borrower_ids:
        ids = [int(i) for i in call.other_borrower_ids.split(',')]
        rows = session.scalars(select(Borrower).where(Borrower.id.in_(ids))).all()
        by_id = {b.id: b for b in rows}
        others = tuple(OtherBorrower(i, by_id[i].full_name) for i in ids if i in by_id)
    result_code = None
    if call.communication_id:
        result_code = session.scalar(
            select(Communication.result_code).where(Communication.id == call.communication_id)
        )
    return CallView(
        call_id=call.call_id,
        direction=call.direction,
        state=call.state,
        number=call.number,
        extension=call.extension,
        borrower_id=call.borrower_id,
        borrower_name=borrower.full_name if borrower else None,
        others=others,
        started_at=call.started_at,
        answered_at=call.answered_at,
        ended_at=call.ended_at,
        duration_s=call.duration_s,
        recording_url=call.recording_url,
        transferred_to=call.transferred_to,
        result_code=result_code,
    )


def _state_notification(call: Call | CallView) -> Notification:
    return {
        'kind': 'call_state',
        'extension': call.extension,
        'call_id': call.call_id,
        'state': call.state,
        'borrower_id': call.borrower_id,
    }
