"""Screen pops read in the transaction that recorded the call, for the tabs of this process."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from crm import bootstrap
from crm.bootstrap import System
from crm.config import Settings
from crm.db.models import AuditEntry, Call, User
from crm.domain import Role
from crm.integrations.bus import Delivery, RecordingBus
from crm.services.screen_pops import INLINE_PER_RUN
from tests.factories import make_borrower, make_user, unique, unique_phone


@pytest.fixture
def system(engine, database_url, clock) -> System:
    return bootstrap.build(
        Settings(database_url=database_url), engine=engine, bus=RecordingBus(), clock=clock
    )


def ring(phone: str, extension: str) -> Delivery:
    body: dict[str, Any] = {
        'call_id': f'pop-{unique()}',
        'from': phone,
        'to_extension': extension,
        'at': '2026-11-26T10:00:00+03:00',
    }
    return Delivery('telephony.call.incoming', json.dumps(body).encode())


def call_id(delivery: Delivery) -> str:
    return json.loads(delivery.body)['call_id']


def card_views(sessions, borrower_id: int) -> list[int | None]:
    with sessions() as session:
        return list(
            session.scalars(
                select(AuditEntry.user_id).where(
                    AuditEntry.borrower_id == borrower_id, AuditEntry.action == 'card.view'
                )
            )
        )


def test_a_watched_ring_is_read_with_its_call_and_audited_for_the_operator(system, sessions) -> None:
    operator: User = make_user(sessions, role=Role.OPERATOR)
    phone, other_phone = unique_phone(), unique_phone()
    borrower = make_borrower(sessions, last='Читаемый', phones=(phone,))
    system.services.screen_pops.watch(lambda extension: extension == operator.extension)
    delivery = ring('8' + phone[1:], operator.extension)
    assert system.services.inbound.handle_deliveries([delivery]) == [None]

    popped = system.services.screen_pops.take(call_id(delivery), operator.id)
    assert popped is not None and popped.card is not None and popped.verdict is not None
    assert popped.card.id == borrower.id and popped.card.pin == borrower.pin
    assert popped.call.borrower_name == 'Читаемый Тест Тестович' and popped.call.state == 'ringing'
    assert card_views(sessions, borrower.id) == [operator.id]  # committed with the call
    with sessions() as session:
        assert (
            session.scalar(select(Call.borrower_id).where(Call.call_id == call_id(delivery))) == borrower.id
        )
    # only the operator it rang for gets it; an unknown number is read too, without a card
    assert system.services.screen_pops.take(call_id(delivery), operator.id + 1000) is None
    unknown = ring(other_phone, operator.extension)
    system.services.inbound.handle_deliveries([unknown])
    popped = system.services.screen_pops.take(call_id(unknown), operator.id)
    assert popped is not None and popped.card is None and popped.call.number == other_phone


def test_an_unwatched_ring_is_left_to_its_tabs(system, sessions) -> None:
    operator = make_user(sessions, role=Role.OPERATOR)
    phone = unique_phone()
    borrower = make_borrower(sessions, phones=(phone,))
    delivery = ring(phone, operator.extension)  # nobody watches: another process holds the tab, or none does
    system.services.inbound.handle_deliveries([delivery])
    assert system.services.screen_pops.take(call_id(delivery), operator.id) is None
    assert card_views(sessions, borrower.id) == []  # no view without a tab to show it


def test_a_burst_reads_only_its_first_rings(system, sessions) -> None:
    operators = [make_user(sessions, role=Role.OPERATOR) for _ in range(INLINE_PER_RUN + 2)]
    system.services.screen_pops.watch(lambda extension: True)
    deliveries = []
    for operator in operators:
        phone = unique_phone()
        make_borrower(sessions, phones=(phone,))
        deliveries.append(ring(phone, operator.extension))
    assert system.services.inbound.handle_deliveries(deliveries) == [None] * len(deliveries)
    read = [
        system.services.screen_pops.take(call_id(d), o.id) is not None
        for d, o in zip(deliveries, operators, strict=True)
    ]
    assert read == [True] * INLINE_PER_RUN + [False] * 2


def test_a_repeated_ring_is_not_read_again(system, sessions) -> None:
    operator = make_user(sessions, role=Role.OPERATOR)
    phone = unique_phone()
    borrower = make_borrower(sessions, phones=(phone,))
    system.services.screen_pops.watch(lambda extension: True)
    delivery = ring(phone, operator.extension)
    system.services.inbound.handle_deliveries([delivery])
    system.services.inbound.handle_deliveries([delivery])  # the broker delivers it again
    assert card_views(sessions, borrower.id) == [operator.id]
