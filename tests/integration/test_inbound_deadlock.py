"""A batch of inbound events and a screen's transaction that lock the same borrowers in opposite orders
deadlock on PostgreSQL, which rolls the batch back: it is applied again at once, and ends committed once.
(Two processes' batches never meet like this: they take turns, ``inbound.inbound_turn``.)"""

from __future__ import annotations

import json
import threading
import time
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
        need_service('a deadlock needs PostgreSQL: set CRM_TEST_DATABASE_URL')
    first = make_borrower(sessions, last='Замков').id
    second = make_borrower(sessions, last='Замков').id
    both_hold_one = threading.Barrier(2, timeout=15)
    tries: list[int] = []
    errors: list[BaseException] = []

    def lock(session: Session, borrower_id: int) -> None:
        session.execute(select(Borrower.id).where(Borrower.id == borrower_id).with_for_update())

    def handle(session: Session, events: Sequence[Event]) -> Outcome:
        tries.append(1)
        lock(session, first)
        if len(tries) == 1:  # the first time: it holds one borrower and wants the screen's
            both_hold_one.wait()
        lock(session, second)
        return Outcome()

    def screen() -> None:  # another process's page saving something about both borrowers
        engine = make_engine(database_url)
        try:
            with make_sessions(engine).begin() as session:
                lock(session, second)
                both_hold_one.wait()
                time.sleep(0.3)  # the batch waits first, so PostgreSQL picks it as the deadlock's victim
                lock(session, first)
        except BaseException as error:
            errors.append(error)
        finally:
            engine.dispose()

    engine = make_engine(database_url)  # a connection pool of its own, as another process has
    try:
        router = InboundRouter(make_sessions(engine), Notifier(RecordingBus()), {CHAT: Route(handle)})
        chat_id = f'dl-{unique()}'
        body = {'chat_id': chat_id, 'from': '+79280000000', 'text': 'замок', 'at': '2026-11-26T12:00'}
        other = threading.Thread(target=screen)
        other.start()
        results = router.handle_deliveries([Delivery(CHAT, json.dumps(body).encode())])
        other.join(60)
    finally:
        engine.dispose()

    assert errors == []
    assert results == [None]
    assert len(tries) == 2  # rolled back once, applied the second time
    with sessions() as session:
        keys = session.scalar(
            select(func.count()).select_from(InboundEvent).where(InboundEvent.key.like(f'{CHAT}:{chat_id}:%'))
        )
    assert keys == 1
