"""Several app processes sending one outbox on PostgreSQL: each its own engine (its own connections), as
two processes would have. No row goes twice, none is left, and the cluster's rate holds."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select

from crm.db.engine import make_engine, make_sessions
from crm.db.models import OutboxAttempt, OutboxMessage
from crm.domain.clock import SettableClock
from crm.domain.messages import MessageChannel, Purpose
from crm.integrations.bus import RecordingBus
from crm.integrations.mail import RecordingMailer
from crm.integrations.sms import SmsMessage
from crm.integrations.sms_http import HttpSmsGateway
from crm.services import outbox
from crm.services.compliance import ComplianceService
from crm.services.notifier import Notifier
from crm.services.outbox_dispatcher import DispatchPolicy, OutboxDispatcher
from tests.integration.test_outbox import set_outbox_aside
from tests.loopback import SmsGatewayServer

pytestmark = pytest.mark.postgres
TOKEN = 'outbox-pg-token'


@pytest.fixture(autouse=True)
def postgres_only(is_postgres: bool, engine) -> Iterator[None]:
    if not is_postgres:
        pytest.skip('two processes sending one outbox: PostgreSQL (CRM_TEST_DATABASE_URL)')
    set_outbox_aside(engine)
    yield
    set_outbox_aside(engine)


@pytest.fixture
def engines(database_url: str) -> Iterator[list[Engine]]:
    made = [make_engine(database_url, statement_timeout_ms=5000) for _ in range(2)]
    yield made
    for engine in made:
        engine.dispose()


class CountingSms:
    """The loopback gateway over HTTP, counting every hand-over per key on the CRM's side too."""

    def __init__(self, url: str) -> None:
        self.inner = HttpSmsGateway(url, TOKEN, timeout=5)
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def send(self, message: SmsMessage) -> str:
        with self._lock:
            self.calls[message.id] += 1
        return self.inner.send(message)

    def close(self) -> None:
        self.inner.close()


def process(engine: Engine, clock: SettableClock, sms: CountingSms, **policy: object) -> OutboxDispatcher:
    """What one app process runs: its own sessions and engine, the shared database and gateway."""
    sessions = make_sessions(engine, clock)
    return OutboxDispatcher(
        sessions,
        sms=sms,
        mail=RecordingMailer(),
        compliance=ComplianceService(sessions, clock=clock),
        notifier=Notifier(RecordingBus()),
        policy=DispatchPolicy(**policy),  # type: ignore[arg-type]
        clock=clock,
        rng=random.Random(3),
    )


def queue(engine: Engine, clock: SettableClock, n: int) -> list[int]:
    messages = [
        outbox.NewMessage(MessageChannel.SMS, Purpose.SERVICE, f'7917{i:07d}', f'Сообщение {i}')
        for i in range(n)
    ]
    with make_sessions(engine, clock).begin() as session:
        return outbox.queue_many(session, messages, now=clock(), ttl=timedelta(hours=1))


def test_two_dispatchers_at_once_send_each_of_2000_rows_once(engines, clock) -> None:
    ids = queue(engines[0], clock, 2000)
    with SmsGatewayServer(TOKEN) as gateway:
        sms = [CountingSms(gateway.url), CountingSms(gateway.url)]
        workers = [process(engine, clock, s, batch=100) for engine, s in zip(engines, sms, strict=True)]
        handled = [0, 0]
        failures: list[BaseException] = []

        def run(index: int) -> None:
            try:
                while count := workers[index].run_once():
                    handled[index] += count
            except BaseException as error:
                failures.append(error)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        for worker in workers:
            worker.stop()
        for s in sms:
            s.close()
        assert not failures
        assert gateway.requests == 2000 and len(gateway.accepted) == 2000  # none twice, none left
    calls = sms[0].calls + sms[1].calls
    assert len(calls) == 2000 and set(calls.values()) == {1}
    assert handled[0] > 0 and handled[1] > 0 and sum(handled) == 2000  # both took their share
    with make_sessions(engines[0], clock)() as session:
        statuses = Counter(session.scalars(select(OutboxMessage.status).where(OutboxMessage.id.in_(ids))))
        tries = session.scalar(
            select(func.count()).select_from(OutboxAttempt).where(OutboxAttempt.message_id.in_(ids))
        )
    assert statuses == {'sent': 2000} and tries == 2000


def test_the_rate_holds_for_the_cluster(engines, clock) -> None:
    """Two processes on one bucket of 50 a second: 400 messages take 7 s of the injected clock."""
    ids = queue(engines[0], clock, 400)
    with SmsGatewayServer(TOKEN) as gateway:
        sms = CountingSms(gateway.url)
        workers = [process(engine, clock, sms, rates={'sms': 50.0}) for engine in engines]
        start, sent, steps = clock(), 0, 0
        while sent < 400:
            counts: list[int] = []
            threads = [threading.Thread(target=lambda w=w, c=counts: c.append(w.run_once())) for w in workers]
            for thread in threads:  # both claim at the same moment
                thread.start()
            for thread in threads:
                thread.join(30)
            sent += sum(counts)
            elapsed = (clock() - start).total_seconds()
            assert sent <= 50 + 50 * elapsed + 1e-6  # the burst and the rate, never more
            clock.advance(seconds=0.25)
            steps += 1
            assert steps < 100
        for worker in workers:
            worker.stop()
        sms.close()
    assert 7.0 <= elapsed <= 7.25 and len(gateway.accepted) == 400
    with make_sessions(engines[0], clock)() as session:
        assert set(session.scalars(select(OutboxMessage.status).where(OutboxMessage.id.in_(ids)))) == {'sent'}
