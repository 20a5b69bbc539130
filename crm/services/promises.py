"""Promises to pay and the payments that keep them (issue 10 §4).

- **A promise** comes from a call result with a promise (``CallService.save_result``, same transaction) or
  by hand (``PromiseService.create``). It counts every payment of the borrower (of its loan, when it names
  one) made from its creation to the end of its last day: ``due_on`` + ``CRM_PROMISE_GRACE_DAYS``, by the
  office's (Moscow) calendar. It is **kept** once those payments reach ``CRM_PROMISE_KEPT_SHARE`` of it.
- **A payment** (``loan.payment.received`` in ``crm.services.payments``; AMQP or the HTTP API, once per
  ``payment_id``) lowers the loan's debt — the overdue part first, then the rest, never below zero — and
  the borrower's totals by the same, is kept in ``payments`` and as a ``payment`` communication in the
  history, and is added to the promises whose window holds its moment. Payments may come out of order: a
  late one still counts for a promise the checker already closed, and turns it partly kept or kept.
  A payment for an unknown loan is refused (dead-lettered, or 422 over the API) with nothing written.
- **The checker** (``PromiseChecker``, a worker in every process) closes the open promises whose last
  day has passed: «Выполнено частично» if something was paid, «Нарушено» if nothing. ``on_closed`` is
  called in the same transaction with what it closed — the requests capability opens «Нарушено
  обещание» there for the assigned operator.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    FromClause,
    Table,
    and_,
    bindparam,
    exists,
    func,
    select,
    update,
)
from sqlalchemy.orm import Session, sessionmaker

from crm.db.models import Borrower, Communication, Payment, Promise
from crm.domain.actor import Actor
from crm.domain.clock import Clock, system_clock
from crm.domain.errors import NotFound, ServiceError
from crm.domain.formatting import OFFICE_TZ
from crm.domain.notifications import HistoryChanged
from crm.domain.promises import MAX_DAYS_AHEAD, PromiseStatus, closing_status, date_problem, needed, source_of
from crm.services.notifier import Notifier
from crm.services.periodic import PeriodicWorker

_promises = promises_table = cast(Table, Promise.__table__)

SET_PROMISE = (
    update(_promises)
    .where(_promises.c.id == bindparam('b_id'))
    .values(status=bindparam('b_status'), paid_amount=bindparam('b_paid'), closed_at=bindparam('b_closed'))
)


@dataclass(frozen=True)
class PromiseRules:
    share: float = 1.0  # CRM_PROMISE_KEPT_SHARE
    grace_days: int = 1  # CRM_PROMISE_GRACE_DAYS
    max_days: int = MAX_DAYS_AHEAD  # CRM_PROMISE_MAX_DAYS: how far ahead a promise may be due


DEFAULT_RULES = PromiseRules()


@dataclass(frozen=True)
class ClosedPromise:
    """A promise the checker closed: what the requests capability needs to open «Нарушено обещание»."""

    id: int
    borrower_id: int
    operator_id: int | None
    status: PromiseStatus


def office_day(moment: datetime) -> date:
    return moment.astimezone(OFFICE_TZ).date()


# --- the operator's list and the card's flag ----------------------------------------------------
BROKEN_SHOWN = timedelta(days=30)  # a broken promise is flagged this long at most
_payments = cast(Table, Payment.__table__)
_later = _promises.alias('later_promise')


def unanswered_break(promise: FromClause, since: datetime | BindParameter[Any]) -> ColumnElement[bool]:
    """The flag «Нарушено обещание», for one row of ``promise`` (the promises table or an alias of it):
    it broke (status «Нарушено»; a late payment makes it «Выполнено частично») on or after ``since``
    (``BROKEN_SHOWN`` ago: the last 30 days), and since it was made the borrower has paid nothing and
    made no newer promise (a cancelled one aside).
    Each part is a lookup by ``borrower_id`` (indexed in promises and payments)."""
    p = promise.c
    return and_(
        p.status == str(PromiseStatus.BROKEN),
        p.closed_at >= since,
        ~exists().where(_payments.c.borrower_id == p.borrower_id, _payments.c.at >= p.created_at),
        ~exists().where(
            _later.c.borrower_id == p.borrower_id,
            _later.c.created_at > p.created_at,
            _later.c.status != str(PromiseStatus.CANCELLED),
        ),
    )


def broken_flag(now: datetime) -> ColumnElement[bool]:
    """For a query over borrowers: the borrower has a flagged broken promise (``unanswered_break``)."""
    since = now - BROKEN_SHOWN
    return exists().where(_promises.c.borrower_id == Borrower.id, unanswered_break(_promises, since))


def flagged(session: Session, borrower_ids: Sequence[int], now: datetime) -> set[int]:
    """Which of these borrowers (a page of the list) carry the flag: one EXISTS per borrower."""
    if not borrower_ids:
        return set()
    return set(session.scalars(select(Borrower.id).where(Borrower.id.in_(borrower_ids), broken_flag(now))))


def promise_filter(kind: str, now: datetime) -> ColumnElement[bool]:
    """Borrowers with an open promise due today (office calendar), or the flag «Нарушено обещание»."""
    if kind == 'today':
        today = and_(Promise.status == str(PromiseStatus.OPEN), Promise.due_on == office_day(now))
        return exists().where(Promise.borrower_id == Borrower.id, today)
    if kind == 'broken':
        return broken_flag(now)
    raise ValueError(f'unknown promise filter {kind!r}')


# --- promises by hand -------------------------------------------------------------------------------
@dataclass(frozen=True)
class PromiseView:
    id: int
    borrower_id: int
    amount: Decimal
    due_on: date
    status: PromiseStatus
    paid_amount: Decimal
    created_at: datetime
    source: str  # 'call' | 'chat' | 'hand' (PROMISE_SOURCE_LABELS)


@dataclass(frozen=True)
class OperatorFigures:
    """One operator's day, for the dashboard."""

    operator_id: int
    promises: int  # made that day
    promised: Decimal  # their amount
    kept_percent: Decimal | None  # of the promises due that day and decided, the kept ones (None: none)
    collected: Decimal  # paid towards the promises due that day


def _money(value: Decimal | None) -> Decimal:
    """A sum of Money columns (already roubles: the sum keeps the column's type); None for no rows."""
    return Decimal('0.00') if value is None else value


def _view(promise: Promise, channel: str | None) -> PromiseView:
    """``channel``: that of the contact the promise is tied to (None: none, written by hand)."""
    return PromiseView(
        promise.id,
        promise.borrower_id,
        promise.amount,
        promise.due_on,
        PromiseStatus(promise.status),
        promise.paid_amount,
        promise.created_at,
        source_of(channel),
    )


def _last_chat_message(session: Session, borrower_id: int) -> Communication:
    """What a promise made in the chat is tied to: the borrower's newest message there."""
    message = session.scalar(
        select(Communication)
        .where(
            Communication.borrower_id == borrower_id,
            Communication.channel == 'chat',
            Communication.direction == 'in',
        )
        .order_by(Communication.id.desc())
        .limit(1)
    )
    if message is None:
        raise ServiceError('Заёмщик не писал в чат: обещание из чата записать нельзя')
    return message


def new_promise(
    *,
    borrower_id: int,
    operator_id: int | None,
    amount: Decimal,
    due_on: date,
    now: datetime,
    **extra: int | None,
) -> Promise:
    """An open promise (in the caller's transaction: a call result adds it with its communication)."""
    return Promise(
        borrower_id=borrower_id,
        operator_id=operator_id,
        amount=amount,
        due_on=due_on,
        status=str(PromiseStatus.OPEN),
        paid_amount=Decimal(0),
        created_at=now,
        **extra,
    )


class PromiseService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        notifier: Notifier,
        *,
        rules: PromiseRules = DEFAULT_RULES,
        clock: Clock = system_clock,
    ) -> None:
        self._sessions = sessions
        self._notifier = notifier
        self._rules = rules
        self._clock = clock

    def create(
        self, actor: Actor, borrower_id: int, amount: Decimal, due_on: date, *, source: str = 'hand'
    ) -> PromiseView:
        """A promise written down by hand: amount > 0, the date today or later. ``source='chat'``: made
        in the chat — tied to the borrower's newest chat message, which then shows it in the history (and
        gives the templates' «последнее обещание»), as a call's result does."""
        now = self._clock()
        if amount <= 0 or amount != amount.quantize(Decimal('0.01')):
            raise ServiceError('Сумма обещания должна быть больше нуля, с точностью до копейки')
        problem = date_problem(due_on, office_day(now), self._rules.max_days)
        if problem is not None:
            raise ServiceError(problem)
        if source not in ('hand', 'chat'):
            raise ValueError(f'unknown promise source {source!r}')
        with self._sessions.begin() as session:
            if session.get(Borrower, borrower_id) is None:
                raise NotFound('Заёмщик не найден')
            message = _last_chat_message(session, borrower_id) if source == 'chat' else None
            promise = new_promise(
                borrower_id=borrower_id,
                operator_id=actor.id,
                amount=amount,
                due_on=due_on,
                now=now,
                communication_id=message.id if message is not None else None,
            )
            if message is not None:
                message.promise_amount, message.promise_date = amount, due_on
            session.add(promise)
            session.flush()
            view = _view(promise, message.channel if message is not None else None)
        self._notifier.publish([HistoryChanged(borrower_id)])
        return view

    def cancel(self, actor: Actor, promise_id: int) -> PromiseView:
        """An open promise withdrawn (written by mistake, replaced by another): «Отменено»."""
        with self._sessions.begin() as session:
            promise = session.get(Promise, promise_id, with_for_update=True)
            if promise is None:
                raise NotFound('Обещание не найдено')
            if promise.status != PromiseStatus.OPEN:
                raise ServiceError('Отменить можно только открытое обещание')
            promise.status = str(PromiseStatus.CANCELLED)
            promise.closed_at = self._clock()
            view = _view(promise, _channel(session, promise))
        self._notifier.publish([HistoryChanged(view.borrower_id)])
        return view

    def figures(self, day: date, operator_ids: Sequence[int] | None = None) -> list[OperatorFigures]:
        """Per operator for one office day: promises made and their amount (created that day, not
        cancelled); kept % and collected over the promises due that day (kept of those decided; paid)."""
        start = datetime.combine(day, time(), OFFICE_TZ)
        end = start + timedelta(days=1)
        p_ = _promises.c
        live = p_.status != str(PromiseStatus.CANCELLED)
        only = [p_.operator_id.in_(list(operator_ids))] if operator_ids is not None else []
        made = select(p_.operator_id, func.count(), func.sum(p_.amount)).where(
            live, p_.created_at >= start, p_.created_at < end, p_.operator_id.is_not(None), *only
        )
        decided = p_.status.in_(
            [str(PromiseStatus.KEPT), str(PromiseStatus.PARTLY_KEPT), str(PromiseStatus.BROKEN)]
        )
        due = select(
            p_.operator_id,
            func.count().filter(p_.status == str(PromiseStatus.KEPT)),
            func.count().filter(decided),
            func.sum(p_.paid_amount),
        ).where(live, p_.due_on == day, p_.operator_id.is_not(None), *only)
        with self._sessions() as session:
            conn = session.connection()
            made_rows = {r[0]: r for r in conn.execute(made.group_by(p_.operator_id))}
            due_rows = {r[0]: r for r in conn.execute(due.group_by(p_.operator_id))}
        figures = []
        for operator_id in sorted(made_rows.keys() | due_rows.keys()):
            _, count, amount = made_rows.get(operator_id, (operator_id, 0, None))
            _, kept, closed, paid = due_rows.get(operator_id, (operator_id, 0, 0, None))
            share = (Decimal(100) * kept / closed).quantize(Decimal('0.1')) if closed else None
            figures.append(OperatorFigures(operator_id, count, _money(amount), share, _money(paid)))
        return figures

    def of_borrower(self, borrower_id: int) -> list[PromiseView]:
        """The borrower's promises, the latest date first, each with where it was made."""
        with self._sessions() as session:
            rows = session.execute(
                select(Promise, Communication.channel)
                .outerjoin(Communication, Communication.id == Promise.communication_id)
                .where(Promise.borrower_id == borrower_id)
                .order_by(Promise.due_on.desc(), Promise.id.desc())
            )
            return [_view(promise, channel) for promise, channel in rows]


def _channel(session: Session, promise: Promise) -> str | None:
    if promise.communication_id is None:
        return None
    return session.scalar(select(Communication.channel).where(Communication.id == promise.communication_id))


# --- the checker ------------------------------------------------------------------------------------
OnClosed = Callable[[Session, Sequence[ClosedPromise]], None]


class PromiseChecker(PeriodicWorker):
    """Closes the open promises whose last day passed: partly kept or broken. Any number of processes."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        notifier: Notifier,
        *,
        rules: PromiseRules = PromiseRules(),
        clock: Clock = system_clock,
        on_closed: OnClosed | None = None,
        batch_size: int = 500,
        interval: float = 30.0,
    ) -> None:
        self._sessions = sessions
        self._notifier = notifier
        self._rules = rules
        self._clock = clock
        self._on_closed = on_closed  # in the closing transaction: the requests capability's hook
        self.batch_size = batch_size
        super().__init__(name='promises', interval=interval)

    def run_once(self) -> int:
        """Close one batch of overdue open promises; how many were closed."""
        now = self._clock()
        # due_on + grace < today, by the office's calendar: the last day a payment counted has ended
        before = office_day(now) - timedelta(days=self._rules.grace_days)
        p_ = _promises.c
        with self._sessions.begin() as session:
            rows = (
                session.connection()
                .execute(
                    select(p_.id, p_.borrower_id, p_.operator_id, p_.amount, p_.paid_amount)
                    .where(p_.status == str(PromiseStatus.OPEN), p_.due_on < before)
                    .order_by(p_.due_on, p_.id)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                )
                .all()
            )
            closed = []
            for row in rows:
                kept = row.paid_amount >= needed(row.amount, self._rules.share)
                status = PromiseStatus.KEPT if kept else closing_status(row.paid_amount)
                closed.append(ClosedPromise(row.id, row.borrower_id, row.operator_id, status))
            if closed:
                session.connection().execute(
                    SET_PROMISE,
                    [
                        {'b_id': c.id, 'b_status': str(c.status), 'b_paid': r.paid_amount, 'b_closed': now}
                        for c, r in zip(closed, rows, strict=True)
                    ],
                )
                if self._on_closed is not None:
                    self._on_closed(session, closed)
        self._notifier.publish([HistoryChanged(b) for b in sorted({c.borrower_id for c in closed})])
        return len(closed)
