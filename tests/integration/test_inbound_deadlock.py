"""Two processes' batches that lock the same borrowers in opposite orders deadlock on PostgreSQL, which
rolls one of them back: that batch is applied again at once, and both end committed, each event once."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from crm.db.engine import make_engine, make_sessions
from crm.db.models import Borrower, InboundEvent
from crm.integrations.bus import Delivery, RecordingBus
from crm.services.event_schemas import Event
from crm.services.inbound import InboundRouter, Outcome, Route
from crm.services.notifier import Notifier
from tests.conftest import need_service
from tests.factories import make_borrower, unique

CHAT = 'chat.message.received'


def test_a_batch_rolled_back_to_break_a_deadlock_is_applied_again(database_url: str, sessions) -> None:
    if make_url(database_url).get_backend_name() != 'postgresql':
        need_service('a deadlock between two processes needs PostgreSQL: set CRM_TEST_DATABASE_URL')
    first = make_borrower(sessions, last='Замков').id
    second = make_borrower(sessions, last='Замков').id
    both_hold_one = threading.Barrier(2, timeout=15)
    tries: Counter[str] = Counter()

    def locking(name: str, one: int, other: int):
        def handle(session: Session, events: Sequence[Event]) -> Outcome:
            tries[name] += 1
            session.execute(select(Borrower.id).where(Borrower.id == one).with_for_update())
            if tries[name] == 1:  # the first time: each holds one borrower and wants the other's
                both_hold_one.wait()
            session.execute(select(Borrower.id).where(Borrower.id == other).with_for_update())
            return Outcome()

        return handle

    tag = unique()
    results: dict[str, list[str | None]] = {}
    errors: list[BaseException] = []

    def process(name: str, one: int, other: int) -> None:
        engine = make_engine(database_url)  # a connection pool of its own, as another process has
        try:
            router = InboundRouter(
                make_sessions(engine), Notifier(RecordingBus()), {CHAT: Route(locking(name, one, other))}
            )
            body = {
                'chat_id': f'dl-{tag}-{name}',
                'from': '+79280000000',
                'text': name,
                'at': '2026-11-26T12:00',
            }
            results[name] = router.handle_deliveries([Delivery(CHAT, json.dumps(body).encode())])
        except BaseException as error:
            errors.append(error)
        finally:
            engine.dispose()

    threads = [
        threading.Thread(target=process, args=('a', first, second)),
        threading.Thread(target=process, args=('b', second, first)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    assert results == {'a': [None], 'b': [None]}
    assert sorted(tries.values()) == [1, 2]  # one was the deadlock's victim and went again
    with sessions() as session:
        keys = session.scalar(
            select(func.count()).select_from(InboundEvent).where(InboundEvent.key.like(f'{CHAT}:dl-{tag}-%'))
        )
    assert keys == 2
