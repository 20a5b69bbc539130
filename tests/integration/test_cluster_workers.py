"""Several app processes on one PostgreSQL database, every background worker running in each (issue 12 §2).

A "process" is a ``System`` built by ``bootstrap.build`` with an engine (connections) of its own, as a
second app process would have; its workers are the ones bootstrap wires. Each test lets two or three of
them work the same backlog at once, in threads, and counts the effects in the database (and at the SMS
gateway, a real HTTP server on loopback): none doubled, none lost. Rows other tests left due are counted
in: a worker handles everything due, and the sum of what the processes handled must equal it exactly.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

import pytest
from sqlalchemy import delete, event, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from crm import bootstrap
from crm.bootstrap import System
from crm.config import Settings
from crm.db.engine import make_engine, make_sessions
from crm.db.models import (
    AuditEntry,
    Borrower,
    BorrowerPhone,
    Call,
    InboundEvent,
    Loan,
    Mailing,
    OperatorStateChange,
    OperatorStateRow,
    OutboxAttempt,
    OutboxMessage,
    Product,
    ProductSale,
    Promise,
    Request,
    RequestEvent,
    SendRate,
    User,
)
from crm.domain import Role
from crm.domain.clock import SettableClock
from crm.domain.errors import LoginFailed
from crm.domain.messages import MessageChannel, Purpose
from crm.domain.requests import RequestOrigin
from crm.integrations.bus import Delivery, RecordingBus
from crm.integrations.sms import SmsMessage
from crm.integrations.sms_http import HttpSmsGateway
from crm.services import outbox, outbox_store
from crm.services.auth import AuthService, to_actor
from crm.services.mailing_worker import MailingWorker
from crm.services.operator_states import OperatorStateWorker
from crm.services.outbox_dispatcher import OutboxDispatcher
from crm.services.products import SALE_REQUESTED, SaleSweeper
from crm.services.promises import PromiseChecker, office_day
from crm.services.segments import Segment
from tests.conftest import TEST_NOW, need_service
from tests.factories import make_user, unique, unique_phone
from tests.integration.test_mailings import CREDITOR_TEXT, make_template
from tests.integration.test_outbox import set_outbox_aside
from tests.loopback import SmsGatewayServer

pytestmark = pytest.mark.postgres
TOKEN = 'cluster-sms-token'
W = TypeVar('W')


# --- the processes -------------------------------------------------------------------------------------
@pytest.fixture
def postgres(is_postgres: bool) -> None:
    if not is_postgres:
        need_service('several processes on one database: PostgreSQL (CRM_TEST_DATABASE_URL)')


@pytest.fixture
def processes(postgres, database_url: str, clock: SettableClock) -> Iterator[Callable[..., list[System]]]:
    """``processes(n, **settings)``: n Systems on the test database, each with its own engine and bus."""
    made: list[System] = []

    def build(n: int, clocks: Sequence[SettableClock] | None = None, **settings: Any) -> list[System]:
        systems = [
            bootstrap.build(
                Settings(
                    database_url=database_url, pbx_simulator=False, loan_system_simulator=False, **settings
                ),
                engine=make_engine(database_url, statement_timeout_ms=10_000),
                bus=RecordingBus(),
                clock=clocks[i] if clocks else clock,
            )
            for i in range(n)
        ]
        made.extend(systems)
        return systems

    yield build
    for system in made:
        system.stop()


def worker_of(system: System, kind: type[W]) -> W:
    (found,) = [w for w in system.workers if isinstance(w, kind)]
    return found


def dispatcher_of(system: System) -> OutboxDispatcher:
    assert system.dispatcher is not None
    return system.dispatcher


def at_once(rounds: Sequence[Callable[[], int]], timeout: float = 60) -> list[int]:
    """Each round function in a thread of its own, all started together and repeated until it finds
    nothing to do; what each handled in all."""
    handled = [0] * len(rounds)
    failures: list[BaseException] = []
    start = threading.Barrier(len(rounds))

    def run(index: int) -> None:
        try:
            start.wait()
            while count := rounds[index]():
                handled[index] += count
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(rounds))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads)
    assert not failures, failures
    return handled


def _borrowers(sessions, n: int, city: str = 'Москва') -> list[int]:
    """n borrowers with a loan each, in one transaction."""
    rows = []
    for _ in range(n):
        k = unique()
        rows.append(
            Borrower(
                pin=f'{8_400_000_000 + k}',
                last_name='Кластерный',
                first_name='Пётр',
                search_name='кластерный пётр',
                birth_date=date(1990, 1, 1),
                city=city,
                timezone='Europe/Moscow',
                days_past_due=5,
                overdue_amount=Decimal(1000),
                total_debt=Decimal(1000),
                created_at=TEST_NOW,
                phones=[BorrowerPhone(phone=f'7978{k:07d}', kind='mobile', is_primary=True)],
                loans=[
                    Loan(
                        number=f'C{k:07d}',
                        product='ILS ГлавПотреб',
                        amount=Decimal(30000),
                        term_days=30,
                        rate=Decimal('0.8'),
                        issued_on=date(2026, 9, 1),
                        due_on=date(2026, 10, 1),
                        state='active',
                        status_code=1200,
                        status_name='Выдан',
                        principal_outstanding=Decimal(1000),
                        total_debt=Decimal(1000),
                        overdue_amount=Decimal(1000),
                        days_past_due=5,
                    )
                ],
            )
        )
    with sessions.begin() as session:
        session.add_all(rows)
    return [row.id for row in rows]


# --- the outbox dispatcher ---------------------------------------------------------------------------
def test_three_processes_send_500_messages_once_and_take_over_a_dead_ones_lease(
    processes, engine, sessions, clock
) -> None:
    set_outbox_aside(engine)
    messages = [
        outbox.NewMessage(MessageChannel.SMS, Purpose.SERVICE, f'7916{i:07d}', f'Кластер {i}')
        for i in range(500)
    ]
    with make_sessions(engine, clock).begin() as session:
        ids = outbox.queue_many(session, messages, now=clock(), ttl=timedelta(hours=1))
    with SmsGatewayServer(TOKEN) as gateway:
        # a process claimed 50 (its lease runs 60 s), handed 20 of them over and died before recording
        dead = ids[:50]
        with sessions.begin() as session:
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(dead))
                .values(status='sending', attempts=1, not_before=clock() + timedelta(seconds=60))
            )
            handed = session.execute(
                select(OutboxMessage.key, OutboxMessage.to_address, OutboxMessage.body).where(
                    OutboxMessage.id.in_(dead[:20])
                )
            ).all()
        sender = HttpSmsGateway(gateway.url, TOKEN, timeout=5)
        for key, to, body in handed:
            sender.send(SmsMessage(key, to, body, 'DEMOZAIM'))
        sender.close()
        systems = processes(3, sms_gateway_url=gateway.url, sms_gateway_token=TOKEN, sms_per_second=1e6)
        for system in systems:
            dispatcher_of(system).policy = replace(dispatcher_of(system).policy, batch=40)
        lanes = [dispatcher_of(s).run_once for s in systems for _ in range(2)]
        first = at_once(lanes)
        assert sum(first) == 450  # the live rows (how they were shared out is the scheduler's business)
        clock.advance(seconds=61)  # the dead process's lease is over: its rows are due again
        second = at_once(lanes)
        assert sum(second) == 50
        assert gateway.requests == 520 and gateway.duplicates == 20  # its 20 again, under their keys
        accepted = Counter(sms.id for sms in gateway.accepted)
    with sessions() as session:
        rows = session.execute(
            select(OutboxMessage.key, OutboxMessage.status, OutboxMessage.attempts).where(
                OutboxMessage.id.in_(ids)
            )
        ).all()
        tries = Counter(
            session.scalars(select(OutboxAttempt.message_id).where(OutboxAttempt.message_id.in_(ids)))
        )
    assert set(accepted) == {row.key for row in rows} and set(accepted.values()) == {1}  # 0 doubled, 0 lost
    assert Counter(row.status for row in rows) == {'sent': 500}
    assert Counter(row.attempts for row in rows) == {1: 450, 2: 50}
    assert len(tries) == 500 and set(tries.values()) == {1}  # one recorded try each


# --- the mailing worker -------------------------------------------------------------------------------
def test_three_processes_queue_two_mailings_each_borrower_once(processes, sessions) -> None:
    cities = [f'Рассылочный-{unique()}' for _ in range(2)]
    borrowers = {city: set(_borrowers(sessions, 150, city)) for city in cities}
    template = make_template(sessions, '{{ name }}, просрочка {{ overdue_amount }}. ' + CREDITOR_TEXT)
    systems = processes(3)
    supervisor = to_actor(make_user(sessions, role=Role.SUPERVISOR))
    made = {
        systems[0]
        .services.mailings.create(supervisor, f'Кластер {city}', 'sms', template, Segment(cities=(city,)))
        .id: city
        for city in cities
    }
    workers = [worker_of(s, MailingWorker) for s in systems]
    for worker in workers:
        worker.batch_size = 20
    handled = at_once([w.run_once for w in workers])
    assert sum(handled) >= 300
    with sessions() as session:
        for mailing_id, city in made.items():
            queued = Counter(
                session.scalars(
                    select(OutboxMessage.borrower_id).where(OutboxMessage.mailing_id == mailing_id)
                )
            )
            state = session.get(Mailing, mailing_id)
            assert set(queued) == borrowers[city] and set(queued.values()) == {1}  # 0 doubled, 0 lost
            assert (state.status, state.total) == ('done', 150)


# --- the token bucket ----------------------------------------------------------------------------------
def test_the_rate_holds_for_two_processes_whose_clocks_differ(processes, engine, clock) -> None:
    """50 a second for the cluster; one host's clock is half a second ahead of the other's. Taking turns,
    the one behind must not set the bucket's refill back for the one ahead to count the half second again
    (that let several times the rate through)."""
    set_outbox_aside(engine)
    with engine.begin() as connection:
        connection.execute(delete(SendRate))
    ahead = SettableClock(TEST_NOW + timedelta(seconds=0.5))
    behind = SettableClock(TEST_NOW)
    with make_sessions(engine, behind).begin() as session:
        ids = outbox.queue_many(
            session,
            [
                outbox.NewMessage(MessageChannel.SMS, Purpose.SERVICE, f'7915{i:07d}', f'Скорость {i}')
                for i in range(300)
            ],
            now=behind() - timedelta(seconds=1),
            ttl=timedelta(hours=1),
        )
    with SmsGatewayServer(TOKEN) as gateway:
        systems = processes(
            2, [ahead, behind], sms_gateway_url=gateway.url, sms_gateway_token=TOKEN, sms_per_second=50.0
        )
        sent = 0
        for step in range(40):  # 2 s in steps of 50 ms, the two claiming in turn
            for system in systems:
                sent += dispatcher_of(system).run_once()
            elapsed = 0.05 * step
            assert sent <= 50 + 50 * (elapsed + 0.5) + 1e-6, (step, sent)  # the burst, the rate, the skew
            ahead.advance(seconds=0.05)
            behind.advance(seconds=0.05)
        assert sent >= 50 + 50 * 1.9  # and it does go at the rate
        assert len(gateway.accepted) == sent
    with engine.connect() as connection:
        statuses = Counter(
            connection.execute(select(OutboxMessage.status).where(OutboxMessage.id.in_(ids))).scalars()
        )
    assert statuses == {'sent': sent, 'queued': 300 - sent}


def test_a_clock_set_back_further_than_any_skew_does_not_stall_the_channel(engine, clock) -> None:
    """Either backend: a refill stamped an hour ahead of this clock is a clock set back, not a skew."""
    sessions = make_sessions(engine, clock)
    with sessions.begin() as session:
        session.execute(delete(SendRate))
        session.add(SendRate(channel='sms', tokens=0.0, refilled_at=clock() + timedelta(hours=1)))
    with sessions.begin() as session:
        bucket = outbox_store.TokenBucket.open(session, 'sms', 10.0, clock())
        assert (bucket.whole, bucket.set_back) == (0, True)
        bucket.spend(session, 0)  # the refill restarts from this clock
    clock.advance(seconds=1)
    with sessions.begin() as session:
        assert outbox_store.TokenBucket.open(session, 'sms', 10.0, clock()).whole == 10
    with sessions.begin() as session:  # a refill just ahead (another host's clock): nothing added
        session.execute(update(SendRate).values(tokens=2.0, refilled_at=clock() + timedelta(seconds=1)))
    with sessions.begin() as session:
        bucket = outbox_store.TokenBucket.open(session, 'sms', 10.0, clock())
        assert (bucket.whole, bucket.set_back, bucket.refilled_at) == (
            2,
            False,
            clock() + timedelta(seconds=1),
        )
    with sessions.begin() as session:
        session.execute(delete(SendRate))


# --- the login lock ------------------------------------------------------------------------------------
def test_eight_wrong_passwords_at_once_through_two_processes_lock_the_account(processes, sessions) -> None:
    """The five-failures count is a row of the database: two processes share it (8 tries, not 20: argon2
    takes a while on a small machine)."""
    user = make_user(sessions)
    auths = [s.services.auth for s in processes(2)]
    budget = iter(range(8))
    guard = threading.Lock()

    def attempt(auth: AuthService) -> int:  # 1: a try refused, 0: the eight are made
        with guard:
            if next(budget, None) is None:
                return 0
        with pytest.raises(LoginFailed):
            auth.authenticate(user.login, 'wrong')
        return 1

    tries: list[Callable[[], int]] = [partial(attempt, auth) for auth in auths * 2]
    assert sum(at_once(tries)) == 8
    with pytest.raises(LoginFailed):
        auths[1].authenticate(user.login, 'secret')  # the right password: locked, in either process
    with sessions() as session:
        locked_until = session.scalar(select(User.locked_until).where(User.id == user.id))
        actions = Counter(session.scalars(select(AuditEntry.action).where(AuditEntry.user_id == user.id)))
    assert locked_until == TEST_NOW + timedelta(minutes=Settings().lockout_minutes)
    assert actions['login.lockout'] == 1 and actions['login.failed'] <= 4 and 'login' not in actions


# --- the promise checker -------------------------------------------------------------------------------
def test_three_processes_close_200_broken_promises_once(processes, sessions, clock) -> None:
    borrowers = _borrowers(sessions, 200)
    due_on = date(2026, 11, 20)
    with sessions.begin() as session:
        ids = list(
            session.scalars(
                insert(Promise).returning(Promise.id),
                [
                    {
                        'borrower_id': b,
                        'amount': Decimal(500),
                        'due_on': due_on,
                        'status': 'open',
                        'paid_amount': Decimal(0),
                        'created_at': TEST_NOW - timedelta(days=7),
                    }
                    for b in borrowers
                ],
            )
        )
        before = office_day(clock()) - timedelta(days=Settings().promise_grace_days)
        due = session.scalar(select(func.count()).where(Promise.status == 'open', Promise.due_on < before))
    systems = processes(3)
    checkers = [worker_of(s, PromiseChecker) for s in systems]
    for checker in checkers:
        checker.batch_size = 15
    handled = at_once([c.run_once for c in checkers])
    assert sum(handled) == due
    with sessions() as session:
        statuses = Counter(session.scalars(select(Promise.status).where(Promise.id.in_(ids))))
        requests = session.execute(
            select(Request.borrower_id, func.count(RequestEvent.id))
            .join(RequestEvent, RequestEvent.request_id == Request.id)
            .where(Request.borrower_id.in_(borrowers), Request.origin == RequestOrigin.BROKEN_PROMISE)
            .group_by(Request.id, Request.borrower_id)
        ).all()
    assert statuses == {'broken': 200}
    # «Нарушено обещание» opened once per borrower, with one line: a second closing would have joined it
    assert sorted(b for b, _ in requests) == sorted(borrowers) and {n for _, n in requests} == {1}
    told = Counter(
        item['borrower_id']
        for s in systems
        for item in s.bus.ui
        if item['kind'] == 'history' and item['borrower_id'] in set(borrowers)
    )
    assert set(told) == set(borrowers) and set(told.values()) == {1}


# --- operator-state time-outs --------------------------------------------------------------------------
def test_three_processes_end_100_wrap_ups_past_the_time_out_once(processes, sessions, clock) -> None:
    now = clock()
    with sessions.begin() as session:
        operators = [
            User(
                login=f'cluster_op_{k}',
                email=f'cluster_op_{k}@lender.example',
                full_name=f'Оператор Кластера {k}',
                password_hash='-',
                role=Role.OPERATOR,
                active=True,
                extension=f'6{k:05d}',
                created_at=TEST_NOW,
            )
            for k in (unique() for _ in range(100))
        ]
        session.add_all(operators)
        session.flush()
        mine = [user.id for user in operators]
        session.execute(
            insert(OperatorStateRow),
            [
                {
                    'user_id': uid,
                    'state': 'wrap_up',
                    'since': now - timedelta(seconds=Settings().wrap_up_timeout_s + 30),
                    'updated_at': now,
                    'last_seen_at': now,  # their tabs are open: only the wrap-up time-out applies
                }
                for uid in mine
            ],
        )
        last = session.scalar(select(func.max(OperatorStateChange.id))) or 0
    systems = processes(3)
    workers = [worker_of(s, OperatorStateWorker) for s in systems]
    handled = at_once([w.run_once for w in workers])
    with sessions() as session:
        changes = session.execute(
            select(OperatorStateChange.user_id, OperatorStateChange.to_state).where(
                OperatorStateChange.id > last
            )
        ).all()
        states = Counter(
            session.scalars(select(OperatorStateRow.state).where(OperatorStateRow.user_id.in_(mine)))
        )
    moved = Counter(user_id for user_id, _ in changes)
    assert sum(handled) == len(changes) and set(moved.values()) == {1}  # nobody moved twice
    assert {u: s for u, s in changes if u in set(mine)} == dict.fromkeys(mine, 'ready')
    assert states == {'ready': 100}
    told = Counter(
        item['user_id']
        for s in systems
        for item in s.bus.ui
        if item['kind'] == 'operator_state' and item['user_id'] in set(mine)
    )
    assert told == dict.fromkeys(mine, 1)


# --- the product-sale sweeper --------------------------------------------------------------------------
def test_three_processes_send_each_pending_sales_command_again_once(processes, sessions, clock) -> None:
    borrowers = _borrowers(sessions, 150)
    with sessions.begin() as session:
        product = Product(code=f'CL{unique()}', name='Кластерный продукт', price=Decimal(990))
        session.add(product)
        session.flush()
        loans = dict(
            session.execute(select(Loan.borrower_id, Loan.id).where(Loan.borrower_id.in_(borrowers))).all()
        )
        mine = [str(uuid.uuid4()) for _ in borrowers]
        session.execute(
            insert(ProductSale),
            [
                {
                    'borrower_id': b,
                    'product_id': product.id,
                    'price': Decimal(990),
                    'sold_at': clock() - timedelta(minutes=5),
                    'loan_id': loans[b],
                    'sale_id': sale_id,
                    'status': 'pending',
                    'sent_at': clock() - timedelta(minutes=5) if i % 2 else None,
                }
                for i, (b, sale_id) in enumerate(zip(borrowers, mine, strict=True))
            ],
        )
        due = session.scalar(
            select(func.count()).where(
                ProductSale.status == 'pending',
                or_(ProductSale.sent_at.is_(None), ProductSale.sent_at <= clock() - timedelta(minutes=1)),
            )
        )
    systems = processes(3)
    sweepers = [worker_of(s, SaleSweeper) for s in systems]
    for sweeper in sweepers:
        sweeper.batch_size = 10
    handled = at_once([s.run_once for s in sweepers])
    sent = Counter(body['sale_id'] for s in systems for key, body in s.bus.commands if key == SALE_REQUESTED)
    assert sum(handled) == due == sum(sent.values()) and set(sent.values()) == {1}  # none twice
    assert set(mine) <= set(sent)  # none lost
    assert sum(s.run_once() for s in sweepers) == 0  # stamped: not again before resend_after


# --- the inbound events: parked and appearing in two processes -----------------------------------------
def test_an_answer_parked_while_another_process_records_the_ring_is_not_left_waiting(
    processes, sessions
) -> None:
    """Process A records ``incoming`` and is about to commit; process B gets ``answered`` for that call
    now. B must not park it where A, which looked for parked events already, never sees it."""
    a, b = processes(2)
    operator = make_user(sessions, role=Role.OPERATOR)
    call_id = f'cluster-{unique()}'
    paused, b_done = threading.Event(), threading.Event()
    armed = [True]

    @event.listens_for(a.engine, 'commit')
    def hold(connection: Any) -> None:  # A's transaction, done but not committed yet
        if armed[0]:
            armed[0] = False
            paused.set()
            b_done.wait(2.0)  # B waits for A's turn (then A commits): it cannot be done before

    ring = {
        'call_id': call_id,
        'from': unique_phone(),
        'to_extension': operator.extension,
        'at': '2026-11-26T12:00:00+03:00',
    }
    answer = {'call_id': call_id, 'at': '2026-11-26T12:00:05+03:00'}
    results: dict[str, list[str | None]] = {}

    def deliver(system: System, kind: str, body: dict[str, Any]) -> None:
        results[kind] = system.services.inbound.handle_deliveries([Delivery(kind, json.dumps(body).encode())])

    ringing = threading.Thread(target=deliver, args=(a, 'telephony.call.incoming', ring))
    ringing.start()
    assert paused.wait(10)
    deliver(b, 'telephony.call.answered', answer)
    b_done.set()
    ringing.join(10)
    assert results == {'telephony.call.incoming': [None], 'telephony.call.answered': [None]}
    with sessions() as session:
        state = session.scalar(select(Call.state).where(Call.call_id == call_id))
        waiting = session.scalar(
            select(func.count()).where(InboundEvent.call_id == call_id, InboundEvent.status == 'parked')
        )
    assert (state, waiting) == ('active', 0)  # answered, nothing left parked


# --- SQLite: the same statements, without the row locks ------------------------------------------------
def test_the_claims_lock_rows_on_postgresql_and_compile_plainly_for_sqlite() -> None:
    """SQLite (one process) ignores FOR UPDATE: SQLAlchemy leaves the clause out, the claims still run."""
    claim = outbox_store.DUE
    assert 'FOR UPDATE OF outbox_messages SKIP LOCKED' in str(claim.compile(dialect=postgresql.dialect()))
    assert 'FOR UPDATE' not in str(claim.compile(dialect=sqlite.dialect()))
    skipping = select(Promise.id).with_for_update(skip_locked=True)
    assert 'SKIP LOCKED' in str(skipping.compile(dialect=postgresql.dialect()))
    assert 'FOR UPDATE' not in str(skipping.compile(dialect=sqlite.dialect()))
