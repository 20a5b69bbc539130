"""The flag «Нарушено обещание» (list and card), a promise from the chat, the promises on the card."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from crm.db.models import AuditEntry, Communication, Promise
from crm.domain.errors import ServiceError
from crm.domain.promises import PromiseStatus
from crm.services.views import ListQuery
from tests.conftest import TEST_NOW
from tests.factories import unique
from tests.integration.test_promises import checker, debtor, deliver, payment, promise_by_hand


def flagged_ids(system, operator, **query) -> dict[int, bool]:
    page = system.services.borrowers.list_borrowers(operator, ListQuery(per_page=200, **query))
    return {row.id: row.broken_promise for row in page.items}


def broken_one(system, sessions, operator, clock, bus, amount: str = '700') -> tuple[int, str]:
    """A borrower of ``operator`` whose promise due 27.11 the checker found broken on 29.11 00:01."""
    borrower_id, loan = debtor(sessions, operator_id=operator.id)
    promise_by_hand(system, operator, borrower_id, amount, date(2026, 11, 27))
    clock.advance(days=2, hours=12, minutes=1)  # 29.11 00:01 Moscow: due day and grace day are over
    checker(sessions, bus, clock).run_once()
    return borrower_id, loan


def test_a_broken_promise_is_flagged_on_the_list_and_the_card_across_a_change_of_date(
    system, sessions, operator, clock, bus
) -> None:
    borrower_id, _ = debtor(sessions, operator_id=operator.id)
    calm_id, _ = debtor(sessions, operator_id=operator.id)
    promise_by_hand(system, operator, borrower_id, '700', date(2026, 11, 27))
    work = checker(sessions, bus, clock)
    clock.advance(days=2, hours=11)  # 28.11 23:00 Moscow: the grace day is not over, nothing flagged
    work.run_once()
    assert flagged_ids(system, operator) == {borrower_id: False, calm_id: False}
    assert system.services.borrowers.card(operator, borrower_id).broken_promise is None
    clock.advance(hours=1, minutes=1)  # 29.11 00:01
    work.run_once()
    assert flagged_ids(system, operator) == {borrower_id: True, calm_id: False}
    assert set(flagged_ids(system, operator, promises='broken')) == {borrower_id}  # the filter: the same rule
    card = system.services.borrowers.card(operator, borrower_id)
    assert card.broken_promise is not None
    assert (card.broken_promise.amount, card.broken_promise.due_on) == (Decimal(700), date(2026, 11, 27))
    assert system.services.borrowers.card(operator, calm_id).broken_promise is None
    clock.advance(days=30)  # to the minute 30 days after it broke: still flagged; a minute later, gone
    assert flagged_ids(system, operator)[borrower_id] is True
    clock.advance(minutes=1)
    assert flagged_ids(system, operator)[borrower_id] is False
    assert set(flagged_ids(system, operator, promises='broken')) == set()


def test_a_later_payment_clears_the_flag(system, inbound, sessions, operator, clock, bus) -> None:
    borrower_id, loan = broken_one(system, sessions, operator, clock, bus)
    # a payment made before the promise was given does not answer it
    assert deliver(inbound, payment(loan, '100', at='2026-11-20T12:00:00+03:00')) == [None]
    assert flagged_ids(system, operator)[borrower_id] is True
    assert deliver(inbound, payment(loan, '100', at='2026-11-29T10:00:00+03:00')) == [None]
    assert flagged_ids(system, operator)[borrower_id] is False
    assert system.services.borrowers.card(operator, borrower_id).broken_promise is None


def test_a_newer_promise_clears_the_flag_a_cancelled_one_does_not(
    system, sessions, operator, clock, bus
) -> None:
    borrower_id, _ = broken_one(system, sessions, operator, clock, bus)
    newer = promise_by_hand(system, operator, borrower_id, '300', date(2026, 12, 5))
    assert flagged_ids(system, operator)[borrower_id] is False
    system.services.promises.cancel(operator, newer.id)
    assert flagged_ids(system, operator)[borrower_id] is True
    assert system.services.borrowers.card(operator, borrower_id).broken_promise is not None


def test_a_partly_kept_promise_is_not_flagged(system, inbound, sessions, operator, clock, bus) -> None:
    borrower_id, loan = debtor(sessions, operator_id=operator.id)
    promise = promise_by_hand(system, operator, borrower_id, '700', date(2026, 11, 27))
    deliver(inbound, payment(loan, '100', at='2026-11-27T12:00:00+03:00'))
    clock.advance(days=3)
    checker(sessions, bus, clock).run_once()
    with sessions() as session:
        assert session.get(Promise, promise.id).status == PromiseStatus.PARTLY_KEPT
    assert flagged_ids(system, operator)[borrower_id] is False


def chat_message(sessions, borrower_id: int, text: str = 'Оплачу 5000 в пятницу') -> int:
    with sessions.begin() as session:
        message = Communication(
            borrower_id=borrower_id,
            channel='chat',
            direction='in',
            started_at=TEST_NOW - timedelta(minutes=5),
            body=text,
            chat_id=f'chat-{unique()}',
        )
        session.add(message)
        session.flush()
        return message.id


def test_a_promise_from_the_chat_is_tied_to_the_last_message(system, sessions, operator) -> None:
    borrower_id, _ = debtor(sessions)
    with pytest.raises(ServiceError, match='не писал в чат'):
        system.services.promises.create(
            operator, borrower_id, Decimal(5000), date(2026, 11, 27), source='chat'
        )
    chat_message(sessions, borrower_id, 'Здравствуйте')
    last = chat_message(sessions, borrower_id)
    view = system.services.promises.create(
        operator, borrower_id, Decimal(5000), date(2026, 11, 27), source='chat'
    )
    assert view.source == 'chat'
    with sessions() as session:
        assert session.get(Promise, view.id).communication_id == last
        message = session.get(Communication, last)
        assert (message.promise_amount, message.promise_date) == (Decimal(5000), date(2026, 11, 27))
    history, _ = system.services.borrowers.history(operator, borrower_id)
    shown = next(item for item in history if item.id == last)
    assert shown.promise_status == PromiseStatus.OPEN and shown.promise_amount == Decimal(5000)
    by_hand = promise_by_hand(system, operator, borrower_id, '100', date(2026, 11, 28))
    sources = {p.id: p.source for p in system.services.promises.of_borrower(borrower_id)}
    assert sources == {view.id: 'chat', by_hand.id: 'hand'}


def test_the_card_read_again_is_not_audited(system, sessions, operator) -> None:
    borrower_id, _ = debtor(sessions)

    def views() -> int:
        with sessions() as session:
            found = select(AuditEntry).where(
                AuditEntry.borrower_id == borrower_id, AuditEntry.action == 'card.view'
            )
            return len(session.scalars(found).all())

    system.services.borrowers.card(operator, borrower_id)
    again = system.services.borrowers.card_again(operator, borrower_id)
    assert again.id == borrower_id and views() == 1
