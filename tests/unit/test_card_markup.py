"""The card's markup: every datum escaped, only http(s) links, every part there, nothing undefined."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from crm.domain.contact_rules import LegalFlag
from crm.pages.components import card_markup
from crm.services import views as v

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
HOSTILE = '<script>alert(1)</script>"\'&'


def communication(n: int, **changes: object) -> v.CommunicationItem:
    item = v.CommunicationItem(
        id=n,
        channel='call_in',
        direction='in',
        started_at=datetime(2026, 11, 20, 10, n % 60, tzinfo=UTC),
        ended_at=None,
        operator_name='Кузнецова Анна Павловна',
        phone='79280009977',
        result_code='promise',
        result_name='Обещание оплаты',
        promise_amount=Decimal('5000'),
        promise_date=date(2026, 11, 30),
        comment='Обещал оплатить',
        body=None,
        delivery_status=None,
        duration_s=125,
        recording_url='https://pbx.example/rec/1.mp3',
    )
    return replace(item, **changes)


def loan(**changes: object) -> v.Loan:
    item = v.Loan(
        id=1,
        number='7441271',
        product='PDL До зарплаты',
        amount=Decimal('30000'),
        term_days=30,
        rate=Decimal('0.75'),
        issued_on=date(2026, 10, 1),
        due_on=date(2026, 10, 31),
        state='active',
        status_code=1200,
        status_name='Заявление передано на андеррайтинг',
        principal_outstanding=Decimal('30000'),
        total_debt=Decimal('41250.5'),
        overdue_amount=Decimal('11250.5'),
        days_past_due=26,
        closed_on=None,
    )
    return replace(item, **changes)


def card(**changes: object) -> v.BorrowerCard:
    item = v.BorrowerCard(
        id=7,
        pin='3000001126',
        last_name='Иванов',
        first_name='Пётр',
        middle_name='Сергеевич',
        birth_date=date(1985, 3, 4),
        inn='773876166188',
        snils='13607121728',
        passport='4526832989',
        passport_issued='ГУ МВД России по г. Москве',
        email='petr@example.ru',
        address='Новочеркасск, ул. Московская, 1',
        city='Новочеркасск',
        timezone='Europe/Moscow',
        employer='ООО «Ромашка»',
        monthly_payment=Decimal('7000'),
        total_debt=Decimal('41250.5'),
        overdue_amount=Decimal('11250.5'),
        days_past_due=26,
        last_contact_at=None,
        archived=False,
        operator_name='Кузнецова Анна Павловна',
        phones=(v.Phone('79280009977', 'mobile', True, 11), v.Phone('79340000000', 'work', False, 12)),
        loans=(loan(),),
        applications=(
            v.Application('7441271', 'PDL До зарплаты', Decimal('30000'), 30, NOW, 1200, 'На андеррайтинге'),
        ),
        products=(v.ProductBought('Страхование жизни', Decimal('990'), NOW),),
        communications=(communication(1),),
        communications_total=1,
    )
    return replace(item, **changes)


def test_the_whole_card_is_there() -> None:
    drawn = card_markup.render(card(), NOW)
    for text in (
        'Займ № 7441271',
        'PIN: 3000001126',
        'Иванов Пётр Сергеевич',
        '773876166188',
        '136-071-217 28',
    ):
        assert text in drawn.top
    assert 'Заявление передано на андеррайтинг (1200)' in drawn.top
    assert '11 250,50 ₽' in drawn.top and 'data-testid="overdue-amount"' in drawn.top
    assert '12:00 (UTC+3)' in drawn.top  # the borrower's local time
    assert 'Обещание оплаты' in drawn.history and 'обещание 5 000,00 ₽ до 30.11.2026' in drawn.history
    assert 'Займы (1)' in drawn.tabs and 'Кредитная история' in drawn.tabs and 'Продукты (1)' in drawn.tabs
    assert 'Страхование жизни' in drawn.tabs and 'На андеррайтинге (1200)' in drawn.tabs


@pytest.mark.parametrize(
    'field', ['last_name', 'address', 'employer', 'email', 'passport_issued', 'city', 'operator_name']
)
def test_card_data_is_escaped(field: str) -> None:
    drawn = card_markup.render(card(**{field: HOSTILE}), NOW)
    assert '<script>' not in drawn.top
    assert '&lt;script&gt;alert(1)&lt;/script&gt;&#34;&#39;&amp;' in drawn.top


def test_history_and_tabs_data_is_escaped() -> None:
    hostile_card = card(
        communications=(communication(1, comment=HOSTILE, body=HOSTILE, operator_name=HOSTILE),),
        loans=(loan(product=HOSTILE, number=HOSTILE),),
        products=(v.ProductBought(HOSTILE, Decimal('1'), NOW),),
    )
    drawn = card_markup.render(hostile_card, NOW)
    assert '<script>' not in drawn.history + drawn.tabs
    assert drawn.history.count('&lt;script&gt;') == 3 and drawn.tabs.count('&lt;script&gt;') >= 3


@pytest.mark.parametrize(
    'url',
    ['javascript:alert(1)', 'data:text/html,<b>x</b>', '//evil.example/x', 'ftp://pbx/rec.mp3', ''],
)
def test_only_http_recordings_are_links(url: str) -> None:
    history = card_markup.history((communication(1, recording_url=url),), 1)
    assert 'Запись разговора' not in history and 'href' not in history


def test_an_http_recording_is_a_link_that_opens_apart() -> None:
    history = card_markup.history((communication(1, recording_url='https://pbx.example/r?a=1&b=2'),), 1)
    assert 'href="https://pbx.example/r?a=1&amp;b=2" target="_blank" rel="noopener"' in history


def test_history_says_how_much_is_shown() -> None:
    items = tuple(communication(n) for n in range(50))
    assert 'Показаны последние 50' in card_markup.history(items, 120)
    assert 'Показаны последние' not in card_markup.history(items, 50)
    assert 'Коммуникаций ещё не было' in card_markup.history((), 0)


def test_a_borrower_without_loans_or_products() -> None:
    drawn = card_markup.render(card(loans=(), applications=(), products=(), communications=()), NOW)
    assert 'Займов нет' in drawn.top and 'Займы (0)' in drawn.tabs
    assert 'Заявок нет' in drawn.tabs and 'Дополнительные продукты не приобретались' in drawn.tabs


def test_legal_status_forbids_contact_on_the_card() -> None:
    assert 'legal-status' not in card_markup.render(card(), NOW).top
    flagged = card_markup.render(card(legal_flags=(LegalFlag.BANKRUPT,)), NOW).top
    assert 'data-testid="legal-status"' in flagged and 'исходящие контакты запрещены' in flagged


def test_edge_moments_render() -> None:
    odd = communication(
        1, started_at=datetime(1, 1, 1, tzinfo=UTC), callback_at=datetime(9999, 12, 31, tzinfo=UTC)
    )
    drawn = card_markup.render(
        card(communications=(odd,), last_contact_at=datetime(9999, 12, 31, tzinfo=UTC)), NOW
    )
    assert '01.01.0001' in drawn.history and '31.12.9999' in drawn.top


def test_the_local_time_goes_on_in_the_browser_from_the_servers_moment() -> None:
    drawn = card_markup.render(card(), NOW)
    ticking = f'data-local-clock data-tz="Europe/Moscow" data-now-ms="{int(NOW.timestamp() * 1000)}"'
    assert ticking in drawn.top and 'data-suffix=" (UTC+3)">12:00 (UTC+3)</span>' in drawn.top
    assert "querySelectorAll('[data-local-clock]')" in card_markup.CARD_JS


def test_phone_chips_dial_their_own_phone_by_its_row() -> None:
    drawn = card_markup.render(card(), NOW)
    for phone in card().phones:
        assert f'data-dial="{phone.id}"' in drawn.top  # never the number: it may be masked
    assert "emitEvent('crm-dial'" in card_markup.CARD_JS


def test_a_hidden_item_is_marked_with_its_reason_escaped() -> None:
    hidden = communication(1, hidden_at=NOW, hidden_reason=HOSTILE)
    history = card_markup.history((hidden, communication(2)), 2)
    assert history.count('data-testid="history-hidden"') == 1
    assert 'Скрыто от операторов 26.11.2026' in history
    assert '<script>' not in history and '&lt;script&gt;' in history
