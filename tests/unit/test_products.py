"""The product rules: every price rule and eligibility rule, their edges, and what a draft must be."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from crm.domain.errors import ServiceError
from crm.domain.products import (
    Eligibility,
    LoanFacts,
    PriceBase,
    PriceRule,
    ProductDraft,
    ProductRules,
    check_draft,
    describe_eligibility,
    refusal,
    rules_of,
    verdict,
)

LOAN = LoanFacts(
    state='active',
    days_past_due=10,
    overdue_amount=Decimal('4000.00'),
    total_debt=Decimal('12000.00'),
    principal_outstanding=Decimal('9000.00'),
)


def product(**eligibility: object) -> ProductRules:
    return ProductRules(
        'p', 'Продукт', eligibility=Eligibility(**eligibility), price=PriceRule(fixed=Decimal(990))
    )  # type: ignore[arg-type]


def loan(**changes: object) -> LoanFacts:
    return replace(LOAN, **changes)  # type: ignore[arg-type]


# --- the price rule -------------------------------------------------------------------------------
def test_a_fixed_price_is_the_price_whatever_the_loan() -> None:
    rule = PriceRule(fixed=Decimal('1490'))
    assert rule.price(LOAN) == rule.price(loan(total_debt=Decimal(0))) == Decimal('1490.00')


@pytest.mark.parametrize(
    ('base', 'expected'),
    [(PriceBase.TOTAL_DEBT, '900.00'), (PriceBase.OVERDUE, '300.00'), (PriceBase.PRINCIPAL, '675.00')],
)
def test_a_percentage_of_each_figure_of_the_loan(base: PriceBase, expected: str) -> None:
    assert PriceRule(base, percent=Decimal('7.5')).price(LOAN) == Decimal(expected)


def test_a_percentage_rounds_to_the_kopeck_half_up() -> None:
    rule = PriceRule(PriceBase.TOTAL_DEBT, percent=Decimal('0.125'))
    assert rule.price(loan(total_debt=Decimal('1.00'))) == Decimal('0.00')  # 0.00125
    assert rule.price(loan(total_debt=Decimal('4.00'))) == Decimal('0.01')  # 0.005 -> up
    assert rule.price(loan(total_debt=Decimal('3.96'))) == Decimal('0.00')  # 0.00495 -> down


def test_minimum_and_maximum_bound_a_percentage_inclusively() -> None:
    rule = PriceRule(PriceBase.TOTAL_DEBT, percent=Decimal(10), minimum=Decimal(300), maximum=Decimal(5000))
    assert rule.price(loan(total_debt=Decimal(1000))) == Decimal(300)  # 100 -> the minimum
    assert rule.price(loan(total_debt=Decimal(3000))) == Decimal(300)  # exactly the minimum
    assert rule.price(loan(total_debt=Decimal(3010))) == Decimal('301.00')
    assert rule.price(loan(total_debt=Decimal(50000))) == Decimal(5000)  # exactly the maximum
    assert rule.price(loan(total_debt=Decimal(90000))) == Decimal(5000)


def test_price_rules_described_in_russian() -> None:
    assert PriceRule(fixed=Decimal('1490')).describe() == '1 490,00 ₽'
    rule = PriceRule(PriceBase.OVERDUE, percent=Decimal('7.5'), minimum=Decimal(300), maximum=Decimal(5000))
    assert rule.describe() == '7,5% от просроченной задолженности, от 300,00 ₽, до 5 000,00 ₽'


def test_a_percentage_of_nothing_is_not_offered() -> None:
    rules = ProductRules('r', 'Р', price=PriceRule(PriceBase.OVERDUE, percent=Decimal(5)))
    said = verdict(rules, loan(overdue_amount=Decimal(0)))
    assert not said.offerable and said.reason == 'Цену не из чего рассчитать: нет просроченной задолженности'
    with_minimum = ProductRules(
        'r', 'Р', price=PriceRule(PriceBase.OVERDUE, percent=Decimal(5), minimum=Decimal(1))
    )
    assert verdict(with_minimum, loan(overdue_amount=Decimal(0))).price == Decimal(1)


# --- eligibility ----------------------------------------------------------------------------------
def test_offerable_with_its_price() -> None:
    said = verdict(product(), LOAN)
    assert said.offerable and said.price == Decimal('990.00') and said.reason is None


def test_a_retired_product_is_not_offered() -> None:
    assert refusal(replace(product(), active=False), LOAN) == 'Продукт снят с продажи'


@pytest.mark.parametrize(
    ('state', 'allowed', 'reason'),
    [
        ('closed', {'active'}, 'Займ закрыт'),
        ('archived', {'active', 'closed'}, 'Займ в архиве'),
        ('active', {'closed'}, 'Только для займов в статусе: закрыт'),
    ],
)
def test_loan_state(state: str, allowed: set[str], reason: str) -> None:
    assert refusal(product(states=frozenset(allowed)), loan(state=state)) == reason
    assert refusal(product(states=frozenset(allowed | {state})), loan(state=state)) is None


def test_already_bought_once_per_loan() -> None:
    rules = product(once_per_loan=True)
    assert refusal(rules, LOAN, sold=0) is None
    assert refusal(rules, LOAN, sold=1) == 'Уже оформлено по этому займу'


def test_no_more_than_five_prolongations_per_loan() -> None:
    rules = replace(product(max_per_loan=5), kind='prolongation')
    assert refusal(rules, LOAN, sold=4) is None
    assert refusal(rules, LOAN, sold=5) == 'Не более 5 пролонгаций по одному займу'
    assert refusal(replace(rules, eligibility=Eligibility(max_per_loan=1)), LOAN, sold=1) == (
        'Не более 1 пролонгации по одному займу'
    )
    assert refusal(replace(rules, kind='legal'), LOAN, sold=5) == 'Не более 5 оформлений по одному займу'


@pytest.mark.parametrize(
    ('low', 'high', 'dpd', 'reason'),
    [
        (1, 30, 1, None),
        (1, 30, 30, None),
        (1, 30, 0, 'Просрочка должна быть от 1 до 30 дней'),
        (1, 30, 31, 'Просрочка должна быть от 1 до 30 дней'),
        (1, 21, 22, 'Просрочка должна быть от 1 до 21 дня'),
        (31, None, 31, None),
        (31, None, 30, 'Просрочка должна быть не меньше 31 дня'),
        (None, 30, 31, 'Просрочка должна быть не больше 30 дней'),
        (0, 30, 31, 'Просрочка должна быть не больше 30 дней'),  # from 0 is no lower bound
        (0, 0, 1, 'Только для займов без просрочки'),
        (0, 0, 0, None),
    ],
)
def test_days_past_due_range(low: int | None, high: int | None, dpd: int, reason: str | None) -> None:
    assert refusal(product(dpd_min=low, dpd_max=high), loan(days_past_due=dpd)) == reason


@pytest.mark.parametrize(
    ('low', 'high', 'overdue', 'reason'),
    [
        ('1000', '100000', '1000', None),
        ('1000', '100000', '100000', None),
        ('1000', '100000', '999.99', 'Просроченная задолженность должна быть от 1 000,00 ₽ до 100 000,00 ₽'),
        ('1000', None, '0', 'Просроченная задолженность должна быть не меньше 1 000,00 ₽'),
        (None, '100000', '100000.01', 'Просроченная задолженность должна быть не больше 100 000,00 ₽'),
        (None, '0', '0.01', 'Только для займов без просроченной задолженности'),
    ],
)
def test_overdue_amount_range(low: str | None, high: str | None, overdue: str, reason: str | None) -> None:
    rules = product(
        overdue_min=Decimal(low) if low else None, overdue_max=Decimal(high) if high is not None else None
    )
    assert refusal(rules, loan(overdue_amount=Decimal(overdue))) == reason


def test_the_first_rule_that_says_no_is_the_one_given() -> None:
    rules = replace(product(dpd_max=30, once_per_loan=True), active=True)
    closed_bought_late = loan(state='closed', days_past_due=40)
    assert refusal(rules, closed_bought_late, sold=1) == 'Займ закрыт'
    assert refusal(rules, loan(days_past_due=40), sold=1) == 'Уже оформлено по этому займу'
    assert refusal(rules, loan(days_past_due=40), sold=0) == 'Просрочка должна быть не больше 30 дней'


def test_eligibility_described_in_one_line() -> None:
    text = describe_eligibility(Eligibility(dpd_max=30, max_per_loan=5), 'prolongation')
    assert text == 'займ: действующий · просрочка до 30 дней · не более 5 пролонгаций по займу'
    text = describe_eligibility(
        Eligibility(
            frozenset({'active', 'closed'}), dpd_min=31, overdue_min=Decimal(1000), once_per_loan=True
        )
    )
    assert (
        text
        == 'займ: действующий, закрыт · просрочка от 31 дня · просрочено от 1 000,00 ₽ · один раз по займу'
    )


# --- drafts ---------------------------------------------------------------------------------------
def draft(**changes: object) -> ProductDraft:
    return replace(ProductDraft(code='sms_info', name='SMS-информирование', price=Decimal('199')), **changes)  # type: ignore[arg-type]


def test_a_draft_is_cleaned() -> None:
    clean = check_draft(draft(code=' SMS_Info ', name='  SMS   информирование ', price=Decimal('199.005')))
    assert (clean.code, clean.name, clean.price) == ('sms_info', 'SMS информирование', Decimal('199.01'))
    percent = check_draft(
        draft(price_base='total_debt', price=Decimal(5), percent=Decimal('7.5'), price_min=Decimal(300))
    )
    assert percent.price is None and percent.percent == Decimal('7.5')  # the unused fixed price dropped
    rules = rules_of(percent)
    assert rules.price.price(LOAN) == Decimal(900) and rules.eligibility.states == frozenset({'active'})


@pytest.mark.parametrize(
    ('changes', 'message'),
    [
        ({'code': 'Страховка'}, 'Код'),
        ({'code': 'a'}, 'Код'),
        ({'code': '1abc'}, 'Код'),
        ({'name': '   '}, 'название'),
        ({'name': 'x' * 201}, 'Название'),
        ({'description': 'x' * 1001}, 'Описание'),
        ({'kind': 'nope'}, 'вид'),
        ({'states': ()}, 'статус займа'),
        ({'states': ('active', 'lost')}, 'статус займа'),
        ({'price': None}, 'Укажите цену'),
        ({'price': Decimal(-1)}, 'Цена'),
        ({'price_base': 'share'}, 'как считается цена'),
        ({'price_base': 'overdue', 'percent': None}, 'Процент'),
        ({'price_base': 'overdue', 'percent': Decimal(0)}, 'Процент'),
        ({'price_base': 'overdue', 'percent': Decimal(101)}, 'Процент'),
        ({'price_base': 'overdue', 'percent': Decimal('1.0001')}, 'трёх знаков'),
        (
            {
                'price_base': 'overdue',
                'percent': Decimal(5),
                'price_min': Decimal(10),
                'price_max': Decimal(5),
            },
            'нижняя граница больше верхней',
        ),
        ({'dpd_min': 31, 'dpd_max': 30}, 'Просрочка, дней: нижняя граница'),
        ({'dpd_min': -1}, 'Просрочка, дней'),
        ({'overdue_min': Decimal(-1)}, 'Просроченная задолженность'),
        ({'max_per_loan': 0}, 'по одному займу'),
        ({'name': 'a\x00b'}, 'NUL'),
    ],
)
def test_a_bad_draft_is_refused_naming_the_field(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ServiceError, match=message):
        check_draft(draft(**changes))
