"""Calls: the operator's call controls and the result of every call.

The PBX's events about calls (incoming, answered, ended) are applied by ``call_events`` through the
inbound router; the state machine is ``crm.domain.telephony.CallState``. Commands go to the PBX on
``crm.commands`` after the transaction that recorded them committed.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from crm.db.models import Borrower, Call, Communication, Promise, ResultCode, User
from crm.domain import Role
from crm.domain.actor import Actor
from crm.domain.clock import Clock, system_clock
from crm.domain.contact_rules import Verdict
from crm.domain.errors import AccessDenied, NotFound, ServiceError
from crm.domain.identifiers import phone_key
from crm.domain.notifications import HistoryChanged, Notification
from crm.domain.operator_states import OperatorEvent
from crm.domain.promises import MAX_DAYS_AHEAD, PromiseStatus, date_problem
from crm.domain.telephony import DONE_STATES, LIVE_STATES, CallState
from crm.integrations.bus import EventBus
from crm.services import audit
from crm.services.call_events import state_changed
from crm.services.call_views import CallResult, CallView, ResultOption, call_view
from crm.services.compliance import ComplianceService
from crm.services.notifier import Notifier
from crm.services.operator_state_store import on_calls
from crm.services.phone_holders import first_holder
from crm.services.promises import new_promise, office_day

log = logging.getLogger(__name__)


# the operator's state follows their call commands (the PBX's events move the rest: call_events)
_STATE_EVENTS: dict[CallState | None, tuple[OperatorEvent, ...]] = {
    CallState.ON_HOLD: (OperatorEvent.HOLD,),
    CallState.ACTIVE: (OperatorEvent.RESUME,),
    CallState.TRANSFERRED: (OperatorEvent.END,),  # the call left this operator: their wrap-up begins
}


class _Refused(Exception):
    """The law refused a dial: raised out of its transaction (rolled back), recorded in one of its own."""

    def __init__(self, borrower_id: int, verdict: Verdict) -> None:
        super().__init__(verdict.reason)
        self.borrower_id = borrower_id
        self.verdict = verdict


class CallService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        bus: EventBus,
        compliance: ComplianceService,
        clock: Clock = system_clock,
        *,
        promise_max_days: int = MAX_DAYS_AHEAD,
    ) -> None:
        self._promise_max_days = promise_max_days
        self._sessions = sessions
        self._bus = bus
        self._notifier = Notifier(bus)
        self._compliance = compliance
        self._clock = clock

    # --- the operator's controls -----------------------------------------------------------------
    def dial(self, actor: Actor, number: str, *, borrower_id: int | None = None) -> CallView:
        """An outgoing call: refused when the law or an unrecorded result stands in the way."""
        try:
            return self._dial(actor, number, borrower_id)
        except _Refused as refused:
            self._record_refusal(actor, refused.borrower_id, refused.verdict)
            raise ServiceError(refused.verdict.reason or 'Звонок запрещён') from None

    def _dial(self, actor: Actor, number: str, borrower_id: int | None) -> CallView:
        if not actor.extension:
            raise ServiceError('У вас нет внутреннего номера: звонить можно только с привязанного телефона')
        normalised = phone_key(number)
        if normalised is None:
            raise ServiceError('Неверный номер телефона: нужен российский номер из 10 или 11 цифр')
        now = self._clock()
        with self._sessions.begin() as session:
            self._require_free(session, actor)
            if borrower_id is None:
                borrower_id = first_holder(session, normalised)
            if borrower_id is not None:
                verdict = self._compliance.outgoing_call_in(session, borrower_id, now=now)
                if not verdict.allowed:
                    raise _Refused(borrower_id, verdict)
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
                state=CallState.DIALING,
                number=normalised,
                extension=actor.extension,
                operator_id=actor.id,
                borrower_id=borrower_id,
                communication_id=communication.id,
                started_at=now,
            )
            communication.call_id = call.call_id
            session.add(call)
            borrower = session.get(Borrower, borrower_id) if borrower_id is not None else None
            if borrower is not None:
                borrower.last_contact_at = now
            audit.record(
                session, 'call.dial', user_id=actor.id, borrower_id=borrower_id, call_id=call.call_id
            )
            session.flush()
            view = call_view(session, call)
            states = on_calls(session, [(actor.id, OperatorEvent.DIAL, call.call_id)])
        self._bus.publish_command(
            'telephony.dial', {'call_id': view.call_id, 'extension': actor.extension, 'number': normalised}
        )
        self._notifier.publish([state_changed(call), *states])
        return view

    def _record_refusal(self, actor: Actor, borrower_id: int, verdict: Verdict) -> None:
        """A dial the law refused stays on record in a transaction of its own (the dial's rolls back):
        «Мониторинг» counts the day's 230-FZ refusals, and the audit log says who tried whom."""
        with self._sessions.begin() as session:
            audit.record(
                session,
                'call.refused',
                user_id=actor.id,
                borrower_id=borrower_id,
                rule=verdict.rule,
                reason=verdict.reason,
            )

    def hold(self, actor: Actor, call_id: str) -> CallView:
        return self._command(actor, call_id, 'telephony.hold', {CallState.ACTIVE}, CallState.ON_HOLD)

    def resume(self, actor: Actor, call_id: str) -> CallView:
        return self._command(actor, call_id, 'telephony.resume', {CallState.ON_HOLD}, CallState.ACTIVE)

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
            {CallState.ACTIVE, CallState.ON_HOLD},
            CallState.TRANSFERRED,
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
        allowed_from: Collection[CallState],
        new_state: CallState | None,
        **extra: str,
    ) -> CallView:
        with self._sessions.begin() as session:
            call = self._own_call(session, actor, call_id)
            if call.state not in allowed_from:
                raise ServiceError(f'Недоступно: звонок в состоянии «{CallState(call.state).label}»')
            if new_state is not None:
                call.state = new_state
            if new_state == CallState.TRANSFERRED:
                call.transferred_to = extra['to_extension']
            audit.record(
                session,
                command.replace('telephony.', 'call.'),
                user_id=actor.id,
                borrower_id=call.borrower_id,
                call_id=call_id,
                **extra,
            )
            view = call_view(session, call)
            states = on_calls(
                session, [(call.operator_id, e, call_id) for e in _STATE_EVENTS.get(new_state, ())]
            )
        self._bus.publish_command(command, {'call_id': call_id, **extra})
        self._notifier.publish([state_changed(call), *states])
        return view

    def link_borrower(self, actor: Actor, call_id: str, borrower_id: int) -> CallView:
        """Say whom the call is with: another holder of the number, or an unknown caller found by search."""
        with self._sessions.begin() as session:
            call = self._own_call(session, actor, call_id)
            borrower = session.get(Borrower, borrower_id)
            if borrower is None:
                raise NotFound('Заёмщик не найден')
            call.borrower_id = borrower.id
            communication = (
                session.get(Communication, call.communication_id) if call.communication_id else None
            )
            if communication is not None:
                communication.borrower_id = borrower.id
            borrower.last_contact_at = max(filter(None, [borrower.last_contact_at, call.started_at]))
            audit.record(session, 'call.link', user_id=actor.id, borrower_id=borrower.id, call_id=call_id)
            view = call_view(session, call)
        self._notifier.publish([HistoryChanged(borrower_id)])
        return view

    def transfer_targets(self, actor: Actor) -> list[tuple[str, str]]:
        """(extension, name) of everyone a call can be transferred to."""
        with self._sessions() as session:
            rows = session.execute(
                select(User.extension, User.full_name)
                .where(User.extension.is_not(None), User.active.is_(True), User.id != actor.id)
                .order_by(User.extension)
            ).all()
            return [(ext, name) for ext, name in rows if ext is not None]

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
            if call.state in LIVE_STATES:
                raise ServiceError('Результат записывается после завершения звонка')
            option = session.scalar(
                select(ResultCode).where(ResultCode.code == result.code, ResultCode.active.is_(True))
            )
            if option is None:
                raise ServiceError('Выберите результат звонка из списка')
            communication = session.get(Communication, call.communication_id)
            if communication is None:
                raise NotFound('Запись о звонке не найдена')
            amount, promise_date, callback_at = validate_result(option, result, now, self._promise_max_days)
            communication.result_code = option.code
            communication.result_name = option.name
            communication.reached = option.reached and call.answered_at is not None
            communication.comment = result.comment.strip() or None
            communication.promise_amount = amount
            communication.promise_date = promise_date
            communication.callback_at = callback_at
            _replace_promise(session, communication, actor, now)
            audit.record(
                session,
                'call.result',
                user_id=actor.id,
                borrower_id=call.borrower_id,
                call_id=call_id,
                result=option.code,
            )
            view = call_view(session, call)
            states = on_calls(session, [(call.operator_id, OperatorEvent.RESULT_SAVED, call_id)])
        notifications: list[Notification] = [state_changed(call), *states]
        if view.borrower_id is not None:
            notifications.insert(0, HistoryChanged(view.borrower_id))
        self._notifier.publish(notifications)
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
            return call_view(session, call) if call is not None else None

    def view(self, actor: Actor, call_id: str) -> CallView:
        with self._sessions() as session:
            return call_view(session, self._own_call(session, actor, call_id))

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


def validate_result(
    option: ResultCode, result: CallResult, now: datetime, max_days: int
) -> tuple[Decimal | None, date | None, datetime | None]:
    """(promise amount, promise date, callback moment) a result needs, checked; a hand-made record
    (``contact_records``) checks its result here too."""
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
        problem = date_problem(result.promise_date, office_day(now), max_days)
        if problem is not None:
            raise ServiceError(problem)
        promise_date = result.promise_date
    if option.needs_callback:
        if result.callback_at is None:
            raise ServiceError('Укажите дату и время, когда перезвонить')
        if result.callback_at <= now:
            raise ServiceError('Время обратного звонка должно быть в будущем')
        callback_at = result.callback_at
    return amount, promise_date, callback_at


def _replace_promise(session: Session, communication: Communication, actor: Actor, now: datetime) -> None:
    """The call's promise, if its result has one; a result saved again replaces the open one it made."""
    session.execute(
        update(Promise)
        .where(Promise.communication_id == communication.id, Promise.status == str(PromiseStatus.OPEN))
        .values(status=str(PromiseStatus.CANCELLED), closed_at=now)
    )
    amount, due_on = communication.promise_amount, communication.promise_date
    if communication.borrower_id is None or amount is None or due_on is None:
        return
    session.add(
        new_promise(
            borrower_id=communication.borrower_id,
            operator_id=actor.id,
            amount=amount,
            due_on=due_on,
            now=now,
            communication_id=communication.id,
        )
    )
