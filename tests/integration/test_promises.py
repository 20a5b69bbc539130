"""Promises to pay and payments: loan.payment.received (bus and API), promise outcomes, the checker."""

from __future__ import annotations

import json
import threading
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from crm import bootstrap
from crm.api import routes
from crm.config import Settings
from crm.db.models import Borrower, Communication, InboundEvent, Loan, Payment, Promise
from crm.domain import Role
from crm.domain.errors import ServiceError
from crm.domain.formatting import money
from crm.domain.promises import PromiseStatus
from crm.integrations.bus import Delivery, InProcessBus
from crm.pages.components import card_markup
from crm.services.auth import to_actor
from crm.services.call_views import CallResult
from crm.services.notifier import Notifier
from crm.services.promises import PromiseChecker, PromiseRules
from tests.factories import make_borrower, make_user, unique
from tests.integration import test_rabbitmq_bus as rabbit
from tests.integration.test_calls import ended_call
from tests.integration.test_rabbitmq_bus import ignore_ui, ready_count, wait_until

TOKEN = 'promise-token-for-tests'
broker, make_bus = rabbit.broker, rabbit.make_bus  # the RabbitMQ fixtures, for the test over the bus


def payment(
    loan_number: str, amount: str, at: str = '2026-11-26T13:00:00+03:00', **extra: Any
) -> dict[str, Any]:
    return {'payment_id': f'pay-{unique()}', 'loan_number': loan_number, 'amount': amount, 'at': at} | extra


def deliver(inbound, *bodies: dict[str, Any]) -> list[str | None]:
    return inbound.handle_deliveries(
        [Delivery('loan.payment.received', json.dumps(body).encode()) for body in bodies]
    )


def debtor(sessions, overdue: str = '10000', operator_id: int | None = None) -> tuple[int, str]:
    borrower = make_borrower(sessions, overdue=Decimal(overdue), days_past_due=30, operator_id=operator_id)
    with sessions.begin() as session:  # some debt that is not overdue yet, above the overdue part
        loan = session.scalars(select(Loan).where(Loan.borrower_id == borrower.id)).one()
        loan.total_debt = Decimal(overdue) + Decimal(5000)
        session.get(Borrower, borrower.id).total_debt = Decimal(overdue) + Decimal(5000)
        return borrower.id, loan.number


def promise_by_hand(system, operator, borrower_id: int, amount: str, due_on: date):
    return system.services.promises.create(operator, borrower_id, Decimal(amount), due_on)


def status_of(sessions, promise_id: int) -> tuple[str, Decimal]:
    with sessions() as session:
        promise = session.get(Promise, promise_id)
        return promise.status, promise.paid_amount


def debts(sessions, borrower_id: int) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    with sessions() as session:
        borrower = session.get(Borrower, borrower_id)
        loan = session.scalars(select(Loan).where(Loan.borrower_id == borrower_id)).one()
        return loan.total_debt, loan.overdue_amount, borrower.total_debt, borrower.overdue_amount


def checker(sessions, bus, clock, share: float = 1.0) -> PromiseChecker:
    return PromiseChecker(sessions, Notifier(bus), rules=PromiseRules(share, 1), clock=clock)


def test_payment_lowers_debt_overdue_first_and_lands_in_history(system, inbound, sessions, bus) -> None:
    borrower_id, loan = debtor(sessions)
    assert deliver(inbound, payment(loan, '4000.50')) == [None]
    assert debts(sessions, borrower_id) == (
        Decimal('10999.50'),
        Decimal('5999.50'),
        Decimal('10999.50'),
        Decimal('5999.50'),
    )
    assert deliver(inbound, payment(loan, '8000')) == [None]  # the overdue part gone, the rest lower
    assert debts(sessions, borrower_id) == (Decimal('2999.50'), 0, Decimal('2999.50'), 0)
    assert deliver(inbound, payment(loan, '5000')) == [None]  # never below zero
    assert debts(sessions, borrower_id) == (0, 0, 0, 0)
    with sessions() as session:
        kept = session.scalars(
            select(Communication).where(Communication.borrower_id == borrower_id).order_by(Communication.id)
        ).all()
        assert [c.channel for c in kept] == ['payment'] * 3
        assert kept[0].body == f'Платёж {money(Decimal("4000.50"))} по займу {loan}'
    assert {'kind': 'history', 'borrower_id': borrower_id} in bus.ui


def test_payment_is_idempotent_by_payment_id(inbound, sessions) -> None:
    borrower_id, loan = debtor(sessions)
    body = payment(loan, '1000')
    assert deliver(inbound, body, body) == [None, None]
    assert deliver(inbound, body | {'amount': '2000'}) == [None]  # the same payment_id: a repeat
    assert debts(sessions, borrower_id)[:2] == (Decimal(14000), Decimal(9000))
    with sessions() as session:
        assert len(session.scalars(select(Payment).where(Payment.borrower_id == borrower_id)).all()) == 1


def test_unknown_loan_and_bad_amounts_are_refused_with_nothing_written(inbound, sessions) -> None:
    borrower_id, loan = debtor(sessions)
    good = payment(loan, '100')
    unknown = payment(f'NO-{unique()}', '100')
    reasons = deliver(inbound, good, unknown, payment(loan, '0'), payment(loan, '-5'), payment(loan, '1.005'))
    assert reasons[0] is None
    assert reasons[1] is not None and 'unknown loan' in reasons[1]
    assert all(reason and reason.startswith('amount') for reason in reasons[2:])
    assert debts(sessions, borrower_id)[:2] == (Decimal(14900), Decimal(9900))  # only the good one
    with sessions() as session:
        assert session.scalar(select(Payment).where(Payment.payment_id == unknown['payment_id'])) is None
        key = f'loan.payment.received:{unknown["payment_id"]}'
        assert session.scalar(select(InboundEvent).where(InboundEvent.key == key)) is None


def test_a_call_result_promising_years_ahead_is_refused_and_nothing_saved(
    system, inbound, sessions, operator
) -> None:
    call_id = ended_call(inbound, system.services.calls, sessions, operator)
    with pytest.raises(ServiceError, match='не более 30 дн'):
        system.services.calls.save_result(
            operator, call_id, CallResult('promise', promise_amount='3000', promise_date=date(2030, 1, 1))
        )
    with sessions() as session:
        saved = session.scalar(select(Communication.result_code).where(Communication.call_id == call_id))
        assert saved is None
        assert (
            session.scalar(
                select(func.count())
                .select_from(Promise)
                .join(Communication)
                .where(Communication.call_id == call_id)
            )
            == 0
        )


def test_call_promise_kept_by_payments_out_of_order(system, inbound, sessions, operator, clock) -> None:
    call_id = ended_call(inbound, system.services.calls, sessions, operator)
    system.services.calls.save_result(
        operator, call_id, CallResult('promise', promise_amount='3000', promise_date=date(2026, 11, 28))
    )
    with sessions() as session:
        promise = session.scalars(
            select(Promise)
            .join(Communication, Communication.id == Promise.communication_id)
            .where(Communication.call_id == call_id)
        ).one()
        loan = session.scalars(select(Loan).where(Loan.borrower_id == promise.borrower_id)).first()
    assert (promise.status, promise.amount, promise.operator_id) == ('open', Decimal(3000), operator.id)
    # the later payment (within the grace day) arrives first, the earlier one after it
    assert deliver(inbound, payment(loan.number, '1000', at='2026-11-29T20:00:00+03:00')) == [None]
    assert status_of(sessions, promise.id) == ('open', Decimal(1000))
    assert deliver(inbound, payment(loan.number, '2000', at='2026-11-27T10:00:00+03:00')) == [None]
    assert status_of(sessions, promise.id) == ('kept', Decimal(3000))


def test_a_payment_after_the_grace_does_not_count(system, inbound, sessions, operator) -> None:
    borrower_id, loan = debtor(sessions)
    promise = promise_by_hand(system, operator, borrower_id, '1000', date(2026, 11, 27))
    assert deliver(inbound, payment(loan, '1000', at='2026-11-29T00:30:00+03:00')) == [None]
    assert status_of(sessions, promise.id) == ('open', 0)


def test_checker_closes_across_a_change_of_date(system, inbound, sessions, operator, clock, bus) -> None:
    borrower_id, loan = debtor(sessions)
    partly = promise_by_hand(system, operator, borrower_id, '2000', date(2026, 11, 27))
    other_id, _ = debtor(sessions)
    broken = promise_by_hand(system, operator, other_id, '500', date(2026, 11, 27))
    assert deliver(inbound, payment(loan, '700', at='2026-11-27T18:00:00+03:00')) == [None]
    work = checker(sessions, bus, clock)
    clock.advance(days=2, hours=11)  # 28.11 23:00 Moscow: the grace day is not over
    work.run_once()
    assert status_of(sessions, partly.id) == ('open', Decimal(700))
    clock.advance(hours=1, minutes=1)  # 29.11 00:01 Moscow
    work.run_once()
    assert status_of(sessions, partly.id) == ('partly_kept', Decimal(700))
    assert status_of(sessions, broken.id) == ('broken', 0)
    # a payment made in time but reported late still counts: enough of it keeps the promise
    assert deliver(inbound, payment(loan, '1300', at='2026-11-28T09:00:00+03:00')) == [None]
    assert status_of(sessions, partly.id) == ('kept', Decimal(2000))


def test_a_share_below_one_keeps_a_promise_paid_in_part(
    system, inbound, sessions, operator, clock, bus
) -> None:
    borrower_id, loan = debtor(sessions)
    promise = promise_by_hand(system, operator, borrower_id, '1000', date(2026, 11, 27))
    deliver(inbound, payment(loan, '900'))
    clock.advance(days=3)
    checker(sessions, bus, clock, share=0.9).run_once()
    assert status_of(sessions, promise.id)[0] == PromiseStatus.KEPT


def test_promise_by_hand_refuses_bad_input_and_can_be_cancelled(system, sessions, operator) -> None:
    borrower_id, _ = debtor(sessions)
    with pytest.raises(ServiceError, match='больше нуля'):
        promise_by_hand(system, operator, borrower_id, '0', date(2026, 11, 30))
    with pytest.raises(ServiceError, match='прошлом'):
        promise_by_hand(system, operator, borrower_id, '10', date(2026, 11, 25))
    with pytest.raises(ServiceError, match=r'не позже 26\.12\.2026'):  # at most 30 days ahead
        promise_by_hand(system, operator, borrower_id, '10', date(2030, 1, 1))
    assert promise_by_hand(system, operator, borrower_id, '10', date(2026, 12, 26)).due_on == date(
        2026, 12, 26
    )
    promise = promise_by_hand(system, operator, borrower_id, '10', date(2026, 11, 30))
    assert system.services.promises.cancel(operator, promise.id).status == PromiseStatus.CANCELLED
    with pytest.raises(ServiceError, match='открытое'):
        system.services.promises.cancel(operator, promise.id)


def test_checker_twice_at_once_closes_each_promise_once(
    system, sessions, operator, clock, bus, is_postgres
) -> None:
    if not is_postgres:
        pytest.skip('SKIP LOCKED between two transactions needs PostgreSQL')
    ids = []
    for _ in range(40):
        borrower_id, _ = debtor(sessions)
        ids.append(promise_by_hand(system, operator, borrower_id, '100', date(2026, 11, 26)).id)
    clock.advance(days=3)
    closed: list[list[int]] = [[], []]
    workers = [
        PromiseChecker(
            sessions,
            Notifier(bus),
            clock=clock,
            batch_size=10,
            on_closed=lambda session, done, mine=mine: mine.extend(c.id for c in done),
        )
        for mine in closed
    ]
    barrier = threading.Barrier(2)

    def run(work: PromiseChecker) -> None:
        barrier.wait()
        while work.run_once() > 0:
            pass

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    with sessions() as session:
        statuses = session.scalars(select(Promise.status).where(Promise.id.in_(ids))).all()
    assert statuses == ['broken'] * 40
    assert not set(closed[0]) & set(closed[1])  # no promise closed by both
    assert set(ids) <= set(closed[0]) | set(closed[1])


@pytest.fixture
def client(engine, database_url, clock):
    services = bootstrap.build(
        Settings(database_url=database_url, api_token=TOKEN), engine=engine, bus=InProcessBus(), clock=clock
    ).services
    app = FastAPI()
    routes.install(app, services)
    return TestClient(app)


def test_payment_over_the_api(client, sessions) -> None:
    borrower_id, loan = debtor(sessions)
    headers = {'Authorization': f'Bearer {TOKEN}'}
    body = {'type': 'loan.payment.received'} | payment(loan, '250.25')
    first = client.post('/api/v1/events', json=body, headers=headers)
    assert (first.status_code, first.json()['status']) == (202, 'accepted')
    assert client.post('/api/v1/events', json=body, headers=headers).json()['status'] == 'duplicate'
    assert debts(sessions, borrower_id)[1] == Decimal('9749.75')
    unknown = client.post(
        '/api/v1/events', json=body | {'payment_id': 'x', 'loan_number': 'NOPE'}, headers=headers
    )
    assert unknown.status_code == 422 and 'loan_number' in unknown.text
    zero = client.post('/api/v1/events', json=body | {'payment_id': 'y', 'amount': 0}, headers=headers)
    assert zero.status_code == 422 and 'amount' in zero.text
    assert debts(sessions, borrower_id)[1] == Decimal('9749.75')
    with sessions() as session:
        assert session.scalar(select(Payment).where(Payment.payment_id.in_(['x', 'y']))) is None


def test_card_history_shows_payments_and_promise_outcomes(system, inbound, sessions, operator) -> None:
    call_id = ended_call(inbound, system.services.calls, sessions, operator)
    view = system.services.calls.save_result(
        operator, call_id, CallResult('promise', promise_amount='100', promise_date=date(2026, 11, 27))
    )
    with sessions() as session:
        loan = session.scalars(select(Loan).where(Loan.borrower_id == view.borrower_id)).first()
    deliver(inbound, payment(loan.number, '100'))
    items, _ = system.services.borrowers.history(operator, view.borrower_id)
    markup = card_markup.history(items, len(items))
    assert 'Платёж' in markup and f'по займу {loan.number}' in markup
    assert 'Выполнено' in markup and 'Открыто' not in markup


def test_figures_per_operator_per_day(system, inbound, sessions, clock, bus) -> None:
    first, second = (to_actor(make_user(sessions, role=Role.OPERATOR)) for _ in range(2))
    borrower_id, loan = debtor(sessions)
    kept = promise_by_hand(system, first, borrower_id, '1000', date(2026, 11, 26))
    promise_by_hand(system, first, borrower_id, '500.50', date(2026, 11, 30))
    broken_id, _ = debtor(sessions)
    promise_by_hand(system, first, broken_id, '300', date(2026, 11, 26))
    promise_by_hand(system, second, broken_id, '200', date(2026, 11, 27))
    system.services.promises.cancel(
        second, promise_by_hand(system, second, broken_id, '9', date(2026, 11, 27)).id
    )
    deliver(inbound, payment(loan, '1000'))
    clock.advance(days=2)
    checker(sessions, bus, clock).run_once()
    figures = system.services.promises.figures(date(2026, 11, 26), [first.id, second.id])
    assert [(f.operator_id, f.promises, f.promised, f.kept_percent, f.collected) for f in figures] == [
        (first.id, 3, Decimal('1800.50'), Decimal('50.0'), Decimal('1000.00')),
        (second.id, 1, Decimal('200.00'), None, Decimal('0.00')),
    ]
    assert status_of(sessions, kept.id)[0] == 'kept'
    assert system.services.promises.figures(date(2026, 11, 25), [first.id]) == []


def test_payments_over_rabbitmq_once_and_an_unknown_loan_dead_lettered(
    make_bus, broker, names, inbound, sessions
) -> None:
    borrower_id, loan = debtor(sessions)
    good, unknown = payment(loan, '300'), payment(f'NO-{unique()}', '300')
    bus = make_bus()
    bus.start(inbound.handle_deliveries, ignore_ui)
    for body in (good, unknown, good):
        bus.publish_event('loan.payment.received', body)
    wait_until(lambda: ready_count(broker, names.dead_letter_queue) == 1, what='the dead letter')
    wait_until(lambda: ready_count(broker, names.events_queue) == 0, what='the queue drained')
    [(body, headers)] = bus.dead_letters()
    assert json.loads(body)['payment_id'] == unknown['payment_id']
    assert 'unknown loan' in headers['x-dead-reason']
    wait_until(lambda: debts(sessions, borrower_id)[1] == Decimal(9700), what='the payment applied')
    bus.stop()
    assert debts(sessions, borrower_id)[1] == Decimal(9700)  # the repeat had no second effect
