"""Additional products and services: their price rule, who may be offered one, and what a draft must be.

Pure: a product's rules and a loan's figures in, a verdict out — offerable at a price, or the first rule
that said no, in Russian, as the card shows it. The same verdict is asked again in the transaction that
records a sale, so what the operator saw and what is sold cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

from crm.domain import LOAN_STATES
from crm.domain.errors import ServiceError
from crm.domain.formatting import money
from crm.domain.text import plural

KOPECK = Decimal('0.01')
MAX_PRICE = Decimal('10000000')  # ten million roubles: nothing sold from a card costs more
MAX_DAYS = 10_000
MAX_PER_LOAN = 100
CODE = re.compile(r'[a-z][a-z0-9_]{1,31}')
NAME_LENGTH = 200
DESCRIPTION_LENGTH = 1000


class PriceBase(StrEnum):
    """What a price is: fixed, or a percentage of one of the loan's figures."""

    FIXED = 'fixed'
    TOTAL_DEBT = 'total_debt'
    OVERDUE = 'overdue'
    PRINCIPAL = 'principal'


PRICE_BASE_LABELS: dict[str, str] = {
    PriceBase.FIXED: 'Фиксированная цена',
    PriceBase.TOTAL_DEBT: '% от общей задолженности',
    PriceBase.OVERDUE: '% от просроченной задолженности',
    PriceBase.PRINCIPAL: '% от остатка основного долга',
}
# what the figure is called in a refusal: «нет просроченной задолженности»
_BASE_NOUNS: dict[str, str] = {
    PriceBase.TOTAL_DEBT: 'задолженности',
    PriceBase.OVERDUE: 'просроченной задолженности',
    PriceBase.PRINCIPAL: 'остатка основного долга',
}

PRODUCT_KINDS: dict[str, str] = {
    'insurance': 'Страхование',
    'prolongation': 'Пролонгация',
    'restructuring': 'Реструктуризация',
    'holidays': 'Кредитные каникулы',
    'informing': 'Информирование',
    'legal': 'Юридические услуги',
    'service': 'Другая услуга',
}
# a kind's noun for «Не более 5 пролонгаций по одному займу» (one, few, many)
_KIND_NOUNS: dict[str, tuple[str, str, str]] = {
    'prolongation': ('пролонгации', 'пролонгаций', 'пролонгаций'),
    'restructuring': ('реструктуризации', 'реструктуризаций', 'реструктуризаций'),
}
_DEFAULT_NOUNS = ('оформления', 'оформлений', 'оформлений')


class SaleStatus(StrEnum):
    PENDING = 'pending'
    CONFIRMED = 'confirmed'
    REJECTED = 'rejected'


SALE_STATUS_LABELS: dict[str, str] = {
    SaleStatus.PENDING: 'Ожидает подтверждения',
    SaleStatus.CONFIRMED: 'Подтверждена',
    SaleStatus.REJECTED: 'Отклонена',
}
COUNTED = (SaleStatus.PENDING, SaleStatus.CONFIRMED)  # a rejected sale never happened: it does not count


@dataclass(frozen=True)
class LoanFacts:
    """The figures of one loan the rules look at."""

    state: str  # active | closed | archived
    days_past_due: int
    overdue_amount: Decimal
    total_debt: Decimal
    principal_outstanding: Decimal


@dataclass(frozen=True)
class PriceRule:
    base: PriceBase = PriceBase.FIXED
    fixed: Decimal = Decimal(0)  # the price when the base is FIXED
    percent: Decimal | None = None  # of the base figure otherwise
    minimum: Decimal | None = None
    maximum: Decimal | None = None

    def price(self, loan: LoanFacts) -> Decimal:
        """The price for this loan, to the kopeck (half up), within the minimum and maximum."""
        if self.base is PriceBase.FIXED:
            return self.fixed.quantize(KOPECK, rounding=ROUND_HALF_UP)
        value = (base_amount(self.base, loan) * (self.percent or Decimal(0)) / 100).quantize(
            KOPECK, rounding=ROUND_HALF_UP
        )
        if self.minimum is not None:
            value = max(value, self.minimum)
        if self.maximum is not None:
            value = min(value, self.maximum)
        return value

    def describe(self) -> str:
        """«1 490,00 ₽» or «10% от общей задолженности, от 300,00 ₽ до 5 000,00 ₽»."""
        if self.base is PriceBase.FIXED:
            return money(self.fixed)
        percent = f'{(self.percent or Decimal(0)).normalize():f}'.replace('.', ',')
        text = f'{percent}{PRICE_BASE_LABELS[self.base]}'
        if self.minimum is not None:
            text += f', от {money(self.minimum)}'
        if self.maximum is not None:
            text += f', до {money(self.maximum)}'
        return text


def base_amount(base: PriceBase, loan: LoanFacts) -> Decimal:
    if base is PriceBase.TOTAL_DEBT:
        return loan.total_debt
    if base is PriceBase.OVERDUE:
        return loan.overdue_amount
    if base is PriceBase.PRINCIPAL:
        return loan.principal_outstanding
    return Decimal(0)


@dataclass(frozen=True)
class Eligibility:
    """Who may be offered the product; None is «no limit»."""

    states: frozenset[str] = frozenset({'active'})
    dpd_min: int | None = None
    dpd_max: int | None = None
    overdue_min: Decimal | None = None
    overdue_max: Decimal | None = None
    once_per_loan: bool = False
    max_per_loan: int | None = None  # the lender's limit (prolongation: 5)


@dataclass(frozen=True)
class ProductRules:
    code: str
    name: str
    kind: str = 'service'
    price: PriceRule = field(default_factory=PriceRule)
    eligibility: Eligibility = field(default_factory=Eligibility)
    active: bool = True


@dataclass(frozen=True)
class Verdict:
    """Offerable at ``price``, or not, with the first rule that said no (``reason``)."""

    price: Decimal | None = None
    reason: str | None = None

    @property
    def offerable(self) -> bool:
        return self.reason is None


def verdict(product: ProductRules, loan: LoanFacts, sold: int = 0) -> Verdict:
    """May ``product`` be sold on ``loan``, of which ``sold`` (pending or confirmed) are already on it."""
    reason = refusal(product, loan, sold)
    if reason is not None:
        return Verdict(reason=reason)
    return Verdict(price=product.price.price(loan))


def refusal(product: ProductRules, loan: LoanFacts, sold: int = 0) -> str | None:
    """The first rule that says no, in the order an operator would ask them; None when all say yes."""
    rules = product.eligibility
    if not product.active:
        return 'Продукт снят с продажи'
    if loan.state not in rules.states:
        return _state_refusal(loan.state, rules.states)
    if rules.once_per_loan and sold > 0:
        return 'Уже оформлено по этому займу'
    if rules.max_per_loan is not None and sold >= rules.max_per_loan:
        one, few, many = _KIND_NOUNS.get(product.kind, _DEFAULT_NOUNS)
        limit = rules.max_per_loan
        return f'Не более {limit} {plural(limit, one, few, many)} по одному займу'
    reason = _dpd_refusal(rules.dpd_min, rules.dpd_max, loan.days_past_due)
    reason = reason or _overdue_refusal(rules.overdue_min, rules.overdue_max, loan.overdue_amount)
    if reason is not None:
        return reason
    price = product.price
    if price.base is not PriceBase.FIXED and price.price(loan) <= 0:
        return f'Цену не из чего рассчитать: нет {_BASE_NOUNS[price.base]}'
    return None


def _state_refusal(state: str, allowed: frozenset[str]) -> str:
    if state == 'closed':
        return 'Займ закрыт'
    if state == 'archived':
        return 'Займ в архиве'
    labels = ', '.join(LOAN_STATES[s].lower() for s in sorted(allowed, key=list(LOAN_STATES).index))
    return f'Только для займов в статусе: {labels}' if labels else 'Продукт не оформляется ни по одному займу'


def _days(n: int) -> str:
    """«30 дней», «21 дня»: after «от» and «до» the genitive."""
    return f'{n} {plural(n, "дня", "дней", "дней")}'


def _dpd_refusal(low: int | None, high: int | None, dpd: int) -> str | None:
    """«Просрочка должна быть от 1 до 30 дней»; a lower bound of 0 is no bound."""
    low = low or None
    if (low is None or dpd >= low) and (high is None or dpd <= high):
        return None
    if high == 0:
        return 'Только для займов без просрочки'
    if low is not None and high is not None:
        return f'Просрочка должна быть от {low} до {_days(high)}'
    if low is not None:
        return f'Просрочка должна быть не меньше {_days(low)}'
    return f'Просрочка должна быть не больше {_days(high or 0)}'


def _overdue_refusal(low: Decimal | None, high: Decimal | None, amount: Decimal) -> str | None:
    low = low or None
    if (low is None or amount >= low) and (high is None or amount <= high):
        return None
    if high == 0:
        return 'Только для займов без просроченной задолженности'
    what = 'Просроченная задолженность должна быть'
    if low is not None and high is not None:
        return f'{what} от {money(low)} до {money(high)}'
    if low is not None:
        return f'{what} не меньше {money(low)}'
    return f'{what} не больше {money(high)}'


# --- what the catalogue accepts -------------------------------------------------------------------
@dataclass(frozen=True)
class ProductDraft:
    """What the catalogue's editor saves: a new product when ``id`` is None."""

    code: str
    name: str
    kind: str = 'service'
    description: str = ''
    price_base: str = PriceBase.FIXED.value
    price: Decimal | None = None
    percent: Decimal | None = None
    price_min: Decimal | None = None
    price_max: Decimal | None = None
    states: tuple[str, ...] = ('active',)
    dpd_min: int | None = None
    dpd_max: int | None = None
    overdue_min: Decimal | None = None
    overdue_max: Decimal | None = None
    once_per_loan: bool = False
    max_per_loan: int | None = None
    id: int | None = None


def check_draft(draft: ProductDraft) -> ProductDraft:
    """The draft cleaned (trimmed, the unused price fields dropped), or a ServiceError naming the field."""
    code = (draft.code or '').strip().lower()
    name = ' '.join((draft.name or '').split())
    description = (draft.description or '').strip()
    if not CODE.fullmatch(code):
        raise ServiceError('Код: от 2 до 32 латинских строчных букв, цифр и «_», начиная с буквы')
    if not name:
        raise ServiceError('Укажите название продукта')
    if len(name) > NAME_LENGTH:
        raise ServiceError(f'Название — не длиннее {NAME_LENGTH} символов')
    if len(description) > DESCRIPTION_LENGTH:
        raise ServiceError(f'Описание — не длиннее {DESCRIPTION_LENGTH} символов')
    if '\x00' in code + name + description:
        raise ServiceError('Недопустимый символ (NUL)')
    if draft.kind not in PRODUCT_KINDS:
        raise ServiceError('Выберите вид продукта')
    states = tuple(s for s in LOAN_STATES if s in set(draft.states))
    if not states or set(draft.states) - set(LOAN_STATES):
        raise ServiceError('Выберите хотя бы один статус займа, при котором продукт можно оформить')
    price_fields = _checked_price(draft)
    _check_range('Просрочка, дней', draft.dpd_min, draft.dpd_max, 0, MAX_DAYS)
    _check_range('Просроченная задолженность', draft.overdue_min, draft.overdue_max, Decimal(0), MAX_PRICE)
    if draft.max_per_loan is not None and not 1 <= draft.max_per_loan <= MAX_PER_LOAN:
        raise ServiceError(f'Не более … по одному займу: от 1 до {MAX_PER_LOAN}')
    return ProductDraft(
        code=code,
        name=name,
        kind=draft.kind,
        description=description,
        states=states,
        dpd_min=draft.dpd_min,
        dpd_max=draft.dpd_max,
        overdue_min=_kopecks(draft.overdue_min),
        overdue_max=_kopecks(draft.overdue_max),
        once_per_loan=draft.once_per_loan,
        max_per_loan=draft.max_per_loan,
        id=draft.id,
        **price_fields,
    )


def _checked_price(draft: ProductDraft) -> dict[str, Any]:
    try:
        base = PriceBase(draft.price_base)
    except ValueError:
        raise ServiceError('Выберите, как считается цена') from None
    if base is PriceBase.FIXED:
        if draft.price is None:
            raise ServiceError('Укажите цену')
        if not Decimal(0) <= draft.price <= MAX_PRICE:
            raise ServiceError(f'Цена — от 0 до {money(MAX_PRICE)}')
        return {'price_base': base.value, 'price': _kopecks(draft.price)}
    if draft.percent is None or not Decimal(0) < draft.percent <= 100:
        raise ServiceError('Процент — больше 0 и не больше 100')
    if draft.percent != draft.percent.quantize(Decimal('0.001')):
        raise ServiceError('Процент — не более трёх знаков после запятой')
    _check_range('Цена', draft.price_min, draft.price_max, Decimal(0), MAX_PRICE)
    return {
        'price_base': base.value,
        'price': None,
        'percent': draft.percent,
        'price_min': _kopecks(draft.price_min),
        'price_max': _kopecks(draft.price_max),
    }


def _check_range(what: str, low: Any, high: Any, floor: Any, ceiling: Any) -> None:
    for value in (low, high):
        if value is not None and not floor <= value <= ceiling:
            shown = money(ceiling) if isinstance(ceiling, Decimal) else str(ceiling)
            raise ServiceError(f'{what}: значения от 0 до {shown}')
    if low is not None and high is not None and low > high:
        raise ServiceError(f'{what}: нижняя граница больше верхней')


def _kopecks(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(KOPECK, rounding=ROUND_HALF_UP)


def rules_of(draft: ProductDraft, active: bool = True) -> ProductRules:
    """A checked draft as the rules the verdict reads."""
    return ProductRules(
        code=draft.code,
        name=draft.name,
        kind=draft.kind,
        price=PriceRule(
            base=PriceBase(draft.price_base),
            fixed=draft.price or Decimal(0),
            percent=draft.percent,
            minimum=draft.price_min,
            maximum=draft.price_max,
        ),
        eligibility=Eligibility(
            states=frozenset(draft.states),
            dpd_min=draft.dpd_min,
            dpd_max=draft.dpd_max,
            overdue_min=draft.overdue_min,
            overdue_max=draft.overdue_max,
            once_per_loan=draft.once_per_loan,
            max_per_loan=draft.max_per_loan,
        ),
        active=active,
    )


def states_of(text: str) -> tuple[str, ...]:
    """The allowed states as the database keeps them (``active,closed``)."""
    return tuple(s for s in (part.strip() for part in text.split(',')) if s)


def states_text(states: Iterable[str]) -> str:
    return ','.join(states)


def describe_eligibility(rules: Eligibility, kind: str = 'service') -> str:
    """The rules in one line for the catalogue: «займ: действующий · просрочка до 30 дней · …»."""
    states = ', '.join(LOAN_STATES[s].lower() for s in LOAN_STATES if s in rules.states)
    parts = [f'займ: {states}']
    low, high = rules.dpd_min or None, rules.dpd_max
    if high == 0:
        parts.append('без просрочки')
    elif low is not None and high is not None:
        parts.append(f'просрочка от {low} до {_days(high)}')
    elif low is not None:
        parts.append(f'просрочка от {_days(low)}')
    elif high is not None:
        parts.append(f'просрочка до {_days(high)}')
    low_m, high_m = rules.overdue_min or None, rules.overdue_max
    if low_m is not None:
        parts.append(f'просрочено от {money(low_m)}')
    if high_m is not None:
        parts.append(f'просрочено до {money(high_m)}')
    if rules.once_per_loan:
        parts.append('один раз по займу')
    elif rules.max_per_loan is not None:
        one, few, many = _KIND_NOUNS.get(kind, _DEFAULT_NOUNS)
        parts.append(f'не более {rules.max_per_loan} {plural(rules.max_per_loan, one, few, many)} по займу')
    return ' · '.join(parts)
