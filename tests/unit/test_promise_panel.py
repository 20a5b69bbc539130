"""The card's promise part: what the dialog accepts, the flag in the card's head, a promise's source."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from crm.domain.errors import ServiceError
from crm.domain.promises import source_of
from crm.pages.components import card_markup
from crm.pages.components.promise_panel import parse_amount, parse_day
from crm.services import views as v
from tests.unit.test_card_markup import NOW, card


@pytest.mark.parametrize(
    ('text', 'amount'),
    [
        ('5000', '5000'),
        ('5 000', '5000'),
        ('1 250,50', '1250.50'),
        ('1250.5 ₽', '1250.5'),
        ('7\u00a0000', '7000'),
    ],
)
def test_amounts_as_people_type_them(text: str, amount: str) -> None:
    assert parse_amount(text) == Decimal(amount)


@pytest.mark.parametrize('text', ['', 'пять тысяч', '-100', '10,555', '1e3', '5 000,00,00'])
def test_other_amounts_are_refused_in_russian(text: str) -> None:
    with pytest.raises(ServiceError, match='Укажите сумму обещания числом'):
        parse_amount(text)


def test_dates_are_read_as_russians_write_them() -> None:
    assert parse_day(' 05.12.2026 ') == date(2026, 12, 5)
    for text in ('2026-12-05', '31.02.2026', '5.12', ''):
        with pytest.raises(ServiceError, match=r'ДД\.ММ\.ГГГГ'):
            parse_day(text)


def test_the_broken_promise_flag_in_the_cards_head() -> None:
    assert 'broken-promise' not in card_markup.render(card(), NOW).top
    top = card_markup.render(
        card(broken_promise=v.BrokenPromise(Decimal('5000'), date(2026, 11, 20))), NOW
    ).top
    assert 'data-testid="broken-promise"' in top
    assert 'Нарушено обещание: 5 000,00 ₽ до 20.11.2026' in top


def test_the_source_of_a_promise() -> None:
    assert [source_of(c) for c in (None, 'call_in', 'call_out', 'chat', 'note')] == [
        'hand',
        'call',
        'call',
        'chat',
        'hand',
    ]
