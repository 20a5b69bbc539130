"""Demo data for an empty database: users, borrowers with loans, credit history, sales and contacts.

Everything is drawn from one seed (random.Random and Faker('ru_RU')) and every date is counted back
from "today", the clock's date at the office (Moscow), so the same seed and day give the same rows.
Rows are built as plain dicts and written with one bulk INSERT per table: 2,000 borrowers make some
40,000 rows, too many for the unit of work.
"""

from __future__ import annotations

import functools
import math
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from faker import Faker
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from crm.db.demo_requests import seed_requests
from crm.db.demo_templates import seed_templates
from crm.db.models import (
    Base,
    Borrower,
    BorrowerPhone,
    Communication,
    CreditApplication,
    Loan,
    Product,
    ProductSale,
    User,
    UserGroup,
)
from crm.domain import LOAN_STATUSES, RESULT_CODES, Role
from crm.domain.clock import Clock, system_clock
from crm.domain.formatting import OFFICE_TZ
from crm.domain.identifiers import inn_with_check_digits, name_key, snils_check_digits
from crm.domain.passwords import hash_password
from crm.domain.products import LoanFacts, ProductDraft, ProductRules, refusal, rules_of, states_text

Row = dict[str, Any]

EMAIL_DOMAIN = 'lender.example'
PIN_BASE = 3000001000

# (login, password, role, full name, phone extension)
DEMO_USERS: list[tuple[str, str, Role, str, str | None]] = [
    ('admin', 'admin', Role.ADMIN, 'Воронцов Андрей Игоревич', None),
    ('supervisor', 'supervisor', Role.SUPERVISOR, 'Белова Ирина Сергеевна', None),
    ('operator1', 'operator', Role.OPERATOR, 'Кузнецова Анна Павловна', '101'),
    ('operator2', 'operator', Role.OPERATOR, 'Морозов Дмитрий Олегович', '102'),
    ('operator3', 'operator', Role.OPERATOR, 'Егорова Мария Андреевна', '103'),
    ('operator4', 'operator', Role.OPERATOR, 'Соколов Илья Николаевич', '104'),
    ('operator5', 'operator', Role.OPERATOR, 'Фёдорова Ольга Викторовна', '105'),
]

# The catalogue of additional products, with their price and eligibility rules (crm.domain.products).
DEMO_PRODUCTS: list[ProductDraft] = [
    ProductDraft(
        'life_insurance',
        'Страхование жизни заёмщика',
        'insurance',
        'Страховка на срок займа: при несчастном случае долг гасит страховая компания.',
        price=Decimal('1490.00'),
        dpd_max=30,
        once_per_loan=True,
    ),
    ProductDraft(
        'legal_advice',
        'Юридическая консультация',
        'legal',
        'Консультация юриста партнёра по телефону, 30 минут.',
        price=Decimal('990.00'),
        states=('active', 'closed'),
    ),
    ProductDraft(
        'prolongation',
        'Пролонгация займа',
        'prolongation',
        'Продление срока возврата на 30 дней; плата — процент от общей задолженности.',
        price_base='total_debt',
        percent=Decimal('7.5'),
        price_min=Decimal('300.00'),
        price_max=Decimal('5000.00'),
        dpd_max=30,
        max_per_loan=5,
    ),
    ProductDraft(
        'sms_info',
        'SMS-информирование',
        'informing',
        'SMS о платежах и остатке долга на весь срок займа.',
        price=Decimal('199.00'),
        once_per_loan=True,
    ),
    ProductDraft(
        'restructuring',
        'Реструктуризация долга',
        'restructuring',
        'Новый график платежей для займа с просрочкой больше 30 дней.',
        price=Decimal('1990.00'),
        dpd_min=31,
        overdue_min=Decimal('1000.00'),
        once_per_loan=True,
    ),
    ProductDraft(
        'credit_holidays',
        'Кредитные каникулы',
        'holidays',
        'Отсрочка платежей до 6 месяцев при снижении дохода.',
        price=Decimal('490.00'),
        dpd_max=90,
        overdue_max=Decimal('100000.00'),
        once_per_loan=True,
    ),
]
# What the demo's past sales are drawn from, in this order (the seed's draws depend on their number):
# the fixed-price products; one the main loan is not eligible for now is legal advice instead.
DEMO_SOLD = ('life_insurance', 'legal_advice', 'sms_info', 'restructuring', 'credit_holidays')
_FALLBACK_SOLD = 'legal_advice'
_SALE_IDS = uuid.UUID('6b1f0c1e-7c2a-4d8e-9a51-0d3c6e9b2f10')  # uuid5 namespace: the same ids every time


@dataclass(frozen=True)
class _City:
    name: str
    timezone: str
    weight: int
    postcodes: tuple[int, int]
    passport_region: str  # first two digits of a passport series issued there
    inn_region: str  # first two digits of an INN assigned there
    police: str  # the region as the issuing authority names it, after 'по'


CITIES: tuple[_City, ...] = (
    _City('Москва', 'Europe/Moscow', 22, (101000, 129999), '45', '77', 'г. Москве'),
    _City(
        'Санкт-Петербург',
        'Europe/Moscow',
        8,
        (190000, 199999),
        '40',
        '78',
        'г. Санкт-Петербургу и Ленинградской области',
    ),
    _City('Ростов-на-Дону', 'Europe/Moscow', 6, (344000, 344113), '60', '61', 'Ростовской области'),
    _City('Новочеркасск', 'Europe/Moscow', 2, (346400, 346430), '60', '61', 'Ростовской области'),
    _City('Краснодар', 'Europe/Moscow', 5, (350000, 350089), '03', '23', 'Краснодарскому краю'),
    _City('Воронеж', 'Europe/Moscow', 3, (394000, 394090), '20', '36', 'Воронежской области'),
    _City('Нижний Новгород', 'Europe/Moscow', 3, (603000, 603163), '22', '52', 'Нижегородской области'),
    _City('Казань', 'Europe/Moscow', 3, (420000, 420140), '92', '16', 'Республике Татарстан'),
    _City('Волгоград', 'Europe/Volgograd', 3, (400000, 400138), '18', '34', 'Волгоградской области'),
    _City('Тула', 'Europe/Moscow', 2, (300000, 300062), '70', '71', 'Тульской области'),
    _City('Калининград', 'Europe/Kaliningrad', 2, (236000, 236040), '27', '39', 'Калининградской области'),
    _City('Самара', 'Europe/Samara', 3, (443000, 443125), '36', '63', 'Самарской области'),
    _City('Саратов', 'Europe/Saratov', 2, (410000, 410080), '63', '64', 'Саратовской области'),
    _City('Уфа', 'Asia/Yekaterinburg', 3, (450000, 450112), '80', '02', 'Республике Башкортостан'),
    _City('Пермь', 'Asia/Yekaterinburg', 2, (614000, 614113), '57', '59', 'Пермскому краю'),
    _City('Екатеринбург', 'Asia/Yekaterinburg', 4, (620000, 620149), '65', '66', 'Свердловской области'),
    _City('Челябинск', 'Asia/Yekaterinburg', 3, (454000, 454139), '75', '74', 'Челябинской области'),
    _City('Омск', 'Asia/Omsk', 2, (644000, 644123), '52', '55', 'Омской области'),
    _City('Новосибирск', 'Asia/Novosibirsk', 3, (630000, 630133), '50', '54', 'Новосибирской области'),
    _City('Барнаул', 'Asia/Barnaul', 1, (656000, 656067), '01', '22', 'Алтайскому краю'),
    _City('Красноярск', 'Asia/Krasnoyarsk', 2, (660000, 660135), '04', '24', 'Красноярскому краю'),
    _City('Иркутск', 'Asia/Irkutsk', 2, (664000, 664082), '25', '38', 'Иркутской области'),
    _City('Якутск', 'Asia/Yakutsk', 1, (677000, 677027), '98', '14', 'Республике Саха (Якутия)'),
    _City('Хабаровск', 'Asia/Vladivostok', 1, (680000, 680054), '08', '27', 'Хабаровскому краю'),
    _City('Владивосток', 'Asia/Vladivostok', 2, (690000, 690106), '05', '25', 'Приморскому краю'),
    _City('Магадан', 'Asia/Magadan', 1, (685000, 685031), '44', '49', 'Магаданской области'),
    _City('Петропавловск-Камчатский', 'Asia/Kamchatka', 1, (683000, 683038), '30', '41', 'Камчатскому краю'),
)
_CITY_BY_NAME = {city.name: city for city in CITIES}


@dataclass(frozen=True)
class _LoanProduct:
    name: str
    weight: int
    amounts: tuple[int, int]  # thousands of roubles
    terms: tuple[int, ...]  # days
    rates: tuple[str, ...]  # percent per day
    installments: bool  # monthly annuity payments; otherwise one payment at the end (PDL)


LOAN_PRODUCTS: tuple[_LoanProduct, ...] = (
    _LoanProduct('PDL До зарплаты', 40, (3, 30), (7, 10, 14, 21, 30), ('0.800', '0.750'), False),
    _LoanProduct('Потреб Лайт', 25, (10, 50), (60, 90, 120, 180), ('0.500', '0.600'), True),
    _LoanProduct('IL Стандарт', 20, (20, 100), (90, 180, 270, 360), ('0.292', '0.350'), True),
    _LoanProduct('ILS ГлавПотреб', 15, (30, 100), (180, 270, 360), ('0.292', '0.250'), True),
)
_PRODUCT_BY_NAME = {product.name: product for product in LOAN_PRODUCTS}

# State of a borrower's newest loan -> weight. 'dpd_a_b' are active loans that many days past due.
_PROFILES = {
    'current': 32,
    'dpd_1_5': 10,
    'dpd_6_30': 13,
    'dpd_31_90': 12,
    'dpd_90': 10,
    'closed': 15,
    'review': 8,
}
_DPD_RANGES = {'dpd_1_5': (1, 5), 'dpd_6_30': (6, 30), 'dpd_31_90': (31, 90)}


@dataclass(frozen=True)
class _Echo:
    """A borrower shaped after the examples in the original system description."""

    city: str
    product: str
    phone: str | None = None
    profile: str | None = None
    loan_number: str | None = None
    amount: int | None = None
    term: int | None = None
    employer: str | None = None
    address: str | None = None


_ECHOES = {
    0: _Echo(
        'Москва',
        'PDL До зарплаты',
        profile='review',
        loan_number='7441271',
        amount=30000,
        term=30,
        employer='Пенсионер',
        address='129085, Москва, пр-кт Мира, д. 99, кв. 12',
    ),
    126: _Echo('Новочеркасск', 'ILS ГлавПотреб', phone='79280009977'),
    134: _Echo('Ростов-на-Дону', 'ILS ГлавПотреб', phone='79280006677'),
}

_YO_NAMES = {
    True: (
        ('Семёнов', 'Королёв', 'Ерёмин', 'Артёмов', 'Плетнёв', 'Пугачёв', 'Горбачёв'),
        ('Пётр', 'Артём', 'Семён', 'Фёдор'),
        ('Фёдорович', 'Семёнович', 'Артёмович'),
    ),
    False: (
        ('Семёнова', 'Королёва', 'Ерёмина', 'Артёмова', 'Плетнёва', 'Пугачёва', 'Горбачёва'),
        ('Алёна', 'Фёкла'),
        ('Фёдоровна', 'Семёновна', 'Артёмовна'),
    ),
}

_TRANSLIT = {
    **dict(zip('абвгдезийклмнопрстуфыэ', 'abvgdeziyklmnoprstufye', strict=True)),
    **{'ё': 'e', 'ж': 'zh', 'х': 'kh', 'ц': 'ts', 'ч': 'ch', 'ш': 'sh', 'щ': 'shch'},
    **{'ъ': '', 'ь': '', 'ю': 'yu', 'я': 'ya'},
}
_MAIL_DOMAINS = (('mail.ru', 30), ('yandex.ru', 25), ('gmail.com', 20), ('bk.ru', 8), ('inbox.ru', 6))

_COMMENTS: dict[str, tuple[str, ...]] = {
    'promise': (
        'Обещал оплатить до пятницы',
        'Обещает внести платёж с зарплаты',
        'Оплатит частично, остаток на следующей неделе',
        'Подтвердил дату платежа',
        'Обещала оплатить через личный кабинет',
    ),
    'refusal': (
        'Отказывается платить, ссылается на тяжёлое финансовое положение',
        'Не согласен с суммой задолженности',
        'Просит реструктуризацию, от оплаты сейчас отказался',
        'Потерял работу, платить нечем',
    ),
    'wrong_number': (
        'Номер принадлежит другому человеку',
        'Ответили, что такой здесь не проживает',
        'Номер не обслуживается',
    ),
    'no_answer': ('Не берёт трубку', 'Абонент недоступен', 'Длинные гудки', 'Сброс после второго гудка'),
    'callback': (
        'Просит перезвонить после 18:00',
        'Занят на работе, перезвонить завтра',
        'За рулём, просил перезвонить через час',
        'Просит перезвонить в выходные',
    ),
    'third_party': (
        'Ответила супруга, обещала передать информацию',
        'Ответил коллега, заёмщик на смене',
        'Ответила мать, заёмщик живёт отдельно',
    ),
    'consultation': (
        'Уточнил сумму к погашению',
        'Консультация по способам оплаты',
        'Объяснили порядок досрочного погашения',
        'Запросил график платежей на e-mail',
        'Вопрос по начислению процентов',
    ),
    'paid': (
        'Сообщил об оплате, платёж в обработке',
        'Оплатил через банк, прислал чек',
        'Подтвердил оплату просроченной суммы',
    ),
    'note': (
        'Клиент в больнице, просил не беспокоить до конца месяца',
        'Сменил место работы',
        'Направлено уведомление о задолженности почтой',
        'Клиент просит связываться только по SMS',
        'Обновлён адрес проживания со слов клиента',
        'Передано на проверку службы безопасности',
    ),
}

_OUT_RESULTS_OVERDUE = {
    'promise': 20,
    'refusal': 8,
    'no_answer': 28,
    'callback': 14,
    'wrong_number': 4,
    'third_party': 7,
    'consultation': 9,
    'paid': 10,
}
_OUT_RESULTS_CURRENT = {'consultation': 40, 'no_answer': 25, 'callback': 20, 'paid': 10, 'promise': 5}
_IN_RESULTS_OVERDUE = {'consultation': 35, 'promise': 30, 'paid': 15, 'callback': 10, 'refusal': 10}
_IN_RESULTS_CURRENT = {'consultation': 60, 'paid': 20, 'callback': 15, 'promise': 5}
_CHANNELS_OVERDUE = {'call_out': 55, 'call_in': 12, 'sms': 18, 'email': 7, 'note': 8}
_CHANNELS_CURRENT = {'call_out': 25, 'call_in': 30, 'sms': 25, 'email': 12, 'note': 8}

_CENT = Decimal('0.01')
_ZERO = Decimal('0.00')


def _money(value: float | Decimal) -> Decimal:
    return Decimal(str(value)).quantize(_CENT, rounding=ROUND_HALF_UP)


def _rub(value: Decimal) -> str:
    """12345.6 -> '12 345,60' as Russian texts write amounts."""
    return f'{value:,.2f}'.replace(',', ' ').replace('.', ',')


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _translit(text: str) -> str:
    return ''.join(_TRANSLIT.get(char, char) for char in text.lower())


def _annuity(amount: float, monthly_rate: float, months: int) -> float:
    return amount * monthly_rate / (1 - (1 + monthly_rate) ** -months)


def monthly_installment(product: str, amount: Decimal, term_days: int, rate: Decimal) -> Decimal:
    """What the borrower pays a month on a loan: the annuity, or the whole repayment of a PDL."""
    daily = float(rate) / 100
    if _PRODUCT_BY_NAME[product].installments:
        return _money(_annuity(float(amount), daily * 30, max(1, term_days // 30)))
    return _money(float(amount) * (1 + daily * term_days))


class _Unique:
    """Draws values until one has not been used; keeps an identifier unique across all borrowers."""

    def __init__(self) -> None:
        self._used: set[str] = set()

    def reserve(self, value: str) -> None:
        self._used.add(value)

    def draw(self, make: Callable[[], str]) -> str:
        while True:
            value = make()
            if value not in self._used:
                self._used.add(value)
                return value


@dataclass
class _Plan:
    """One borrower and the rows that hang off it, before the borrower has an id."""

    borrower: Row
    phones: list[Row] = field(default_factory=list)
    loans: list[Row] = field(default_factory=list)
    applications: list[Row] = field(default_factory=list)
    sales: list[Row] = field(default_factory=list)
    communications: list[Row] = field(default_factory=list)


@dataclass
class _Contact:
    """What the communications of one borrower refer to."""

    tz: ZoneInfo
    operator_id: int
    phones: list[str]
    email: str | None
    days_past_due: int
    overdue: Decimal
    loan: Row
    horizon: int  # days back that contacts may go
    count: int


class _Generator:
    def __init__(
        self,
        rng: random.Random,
        fake: Faker,
        today: date,
        operator_ids: Sequence[int],
        products: Sequence[tuple[int, ProductRules]],
        borrowers: int,
    ) -> None:
        self.rng = rng
        self.fake = fake
        self.today = today
        self.operator_ids = list(operator_ids)
        self.products = list(products)
        self._product_ids = {rules.code: product_id for product_id, rules in self.products}
        self.phones, self.passports, self.inns, self.snils, self.numbers = (_Unique() for _ in range(5))
        for echo in _ECHOES.values():
            if echo.phone:
                self.phones.reserve(echo.phone)
            if echo.loan_number:
                self.numbers.reserve(echo.loan_number)
        ordinary = [i for i in range(borrowers) if i not in _ECHOES]
        self.archived = set(rng.sample(ordinary, min(len(ordinary), round(borrowers * 0.03))))
        self.number_epoch = today - timedelta(days=2500)

    # -- small draws ------------------------------------------------------------------------------

    def weighted(self, weights: dict[str, int]) -> str:
        return self.rng.choices(list(weights), weights=list(weights.values()))[0]

    def moment(self, day: date, tz: ZoneInfo, *, first_hour: int = 8, last_hour: int = 22) -> datetime:
        """A UTC instant on `day` between the local hours, leaving ten minutes for a call to end.

        Calls keep to the legal hours in the borrower's zone: 08-22 on weekdays, 09-20 at weekends.
        """
        if day.weekday() >= 5:
            first_hour, last_hour = max(first_hour, 9), min(last_hour, 20)
        seconds = self.rng.randint(first_hour * 3600, last_hour * 3600 - 601)
        local = datetime.combine(day, time(seconds // 3600, seconds // 60 % 60, seconds % 60), tzinfo=tz)
        return local.astimezone(UTC)

    def loan_number(self, day: date) -> str:
        """Seven digits that grow with the date, as a loan system's counter would."""
        offset = max(0, (day - self.number_epoch).days) * 300
        return self.numbers.draw(lambda: str(7_000_000 + offset + self.rng.randint(0, 299)))

    def terms(self, product: _LoanProduct) -> tuple[Decimal, int, Decimal]:
        amount = Decimal(self.rng.randint(*product.amounts) * 1000)
        return amount, self.rng.choice(product.terms), Decimal(self.rng.choice(product.rates))

    def loan_product(self) -> _LoanProduct:
        return self.rng.choices(LOAN_PRODUCTS, weights=[p.weight for p in LOAN_PRODUCTS])[0]

    # -- loans ------------------------------------------------------------------------------------

    def loan_row(
        self, product: _LoanProduct, terms: tuple[Decimal, int, Decimal], issued_on: date, code: int
    ) -> Row:
        amount, term, rate = terms
        state = 'active' if code < 4000 else 'closed' if code < 5000 else 'archived'
        return {
            'number': '',
            'product': product.name,
            'amount': amount,
            'term_days': term,
            'rate': rate,
            'issued_on': issued_on,
            'due_on': issued_on + timedelta(days=term),
            'state': state,
            'status_code': code,
            'status_name': LOAN_STATUSES[code],
            'principal_outstanding': _ZERO,
            'total_debt': _ZERO,
            'overdue_amount': _ZERO,
            'days_past_due': 0,
            'closed_on': None,
        }

    def active_loan(self, product: _LoanProduct, dpd: int, terms: tuple[Decimal, int, Decimal]) -> Row:
        amount, term, rate = terms
        rng = self.rng
        if dpd == 0:
            elapsed = rng.randint(1, term - 1)
            code = 2000 if elapsed <= 14 else 2100
        else:
            before_default = 30 * rng.randint(1, term // 30) if product.installments else term
            elapsed = dpd + before_default
            code = 3000 if dpd <= 30 else 3200 if dpd > 90 else rng.choice((3000, 3000, 3100))
        row = self.loan_row(product, terms, self.today - timedelta(days=elapsed), code)
        principal, interest = _accrued(product, float(amount), term, float(rate) / 100, elapsed, dpd)
        penalties = principal * 0.20 / 365 * dpd
        cap = 1.3 * float(amount)  # interest and penalties may not exceed 130 % of the amount lent
        if interest + penalties > cap:
            scale = cap / (interest + penalties)
            interest, penalties = interest * scale, penalties * scale
        total = _money(principal) + _money(interest) + _money(penalties)
        row.update(principal_outstanding=_money(principal), total_debt=total, days_past_due=dpd)
        if dpd:
            installment = monthly_installment(product.name, amount, term, rate)
            owed = installment * math.ceil(dpd / 30) + _money(penalties)
            row['overdue_amount'] = total if not product.installments else min(total, owed)
        return row

    def finished_loan(
        self, product: _LoanProduct, terms: tuple[Decimal, int, Decimal], closed_on: date, archived: bool
    ) -> Row:
        term = terms[1]
        elapsed = self.rng.randint(max(3, term // 2), term + 15)
        code = 5000 if archived else 4100 if elapsed < term else 4000
        row = self.loan_row(product, terms, closed_on - timedelta(days=elapsed), code)
        row['closed_on'] = closed_on
        return row

    def newest_loan(self, profile: str, product: _LoanProduct, terms: tuple[Decimal, int, Decimal]) -> Row:
        rng, today = self.rng, self.today
        if profile == 'review':
            issued_on = today - timedelta(days=rng.randint(1, 3))
            return self.loan_row(product, terms, issued_on, 1200)
        if profile == 'closed':
            return self.finished_loan(product, terms, today - timedelta(days=rng.randint(1, 240)), False)
        if profile == 'archived':
            return self.finished_loan(product, terms, today - timedelta(days=rng.randint(150, 900)), True)
        return self.active_loan(product, _profile_dpd(rng, profile), terms)

    def older_loan(self, anchor: date, newest: Row, archived: bool) -> Row:
        """A loan before `anchor`: mostly repaid, sometimes a second one still being paid."""
        product = self.loan_product()
        terms = self.terms(product)
        if newest['state'] == 'active' and self.rng.random() < 0.2:
            profile = self.weighted({'current': 3, 'dpd_1_5': 1, 'dpd_6_30': 1, 'dpd_31_90': 1})
            loan = self.active_loan(product, _profile_dpd(self.rng, profile), terms)
            if loan['issued_on'] < newest['issued_on']:
                return loan
        closed_on = anchor - timedelta(days=self.rng.randint(3, 90))
        archive = (archived and self.rng.random() < 0.5) or self.rng.random() < 0.04
        return self.finished_loan(product, terms, closed_on, archive)

    def credit_history(self, profile: str, tz: ZoneInfo, echo: _Echo | None) -> tuple[list[Row], list[Row]]:
        """Loans (oldest first, numbered by date) and the applications they came from plus rejected ones."""
        product = _PRODUCT_BY_NAME[echo.product] if echo else self.loan_product()
        amount, term, rate = self.terms(product)
        if echo and echo.amount:
            amount, term = Decimal(echo.amount), echo.term or term
        newest = self.newest_loan(profile, product, (amount, term, rate))
        loans = [newest]
        anchor = newest['issued_on']
        for _ in range(self.rng.choices((0, 1, 2), weights=(55, 30, 15))[0]):
            loan = self.older_loan(anchor, newest, profile == 'archived')
            anchor = min(anchor, loan['issued_on'])
            loans.append(loan)
        loans.sort(key=lambda loan: loan['issued_on'])
        for loan in loans:
            loan['number'] = self.loan_number(loan['issued_on'])
        if echo and echo.loan_number:
            newest['number'] = echo.loan_number
        applications = [self.application_for(loan, tz) for loan in loans]
        rejected = self.rng.choices(range(5 - len(loans)), weights=(60, 30, 10, 5)[: 5 - len(loans)])[0]
        first = loans[0]['issued_on']
        for _ in range(rejected):
            day = first + timedelta(days=self.rng.randint(-400, max(-399, (self.today - first).days - 2)))
            applications.append(self.rejected_application(day, tz))
        applications.sort(key=lambda application: application['applied_at'])
        return loans, applications

    def application_for(self, loan: Row, tz: ZoneInfo) -> Row:
        day = loan['issued_on'] - timedelta(days=0 if loan['status_code'] == 1200 else self.rng.randint(0, 1))
        code = 1200 if loan['status_code'] == 1200 else 1300
        return {
            'number': loan['number'],
            'product': loan['product'],
            'amount': loan['amount'],
            'term_days': loan['term_days'],
            'applied_at': self.moment(day, tz, first_hour=7, last_hour=23),
            'status_code': code,
            'status_name': LOAN_STATUSES[code],
        }

    def rejected_application(self, day: date, tz: ZoneInfo) -> Row:
        product = self.loan_product()
        amount, term, _rate = self.terms(product)
        return {
            'number': self.loan_number(day),
            'product': product.name,
            'amount': amount,
            'term_days': term,
            'applied_at': self.moment(day, tz, first_hour=7, last_hour=23),
            'status_code': 1400,
            'status_name': LOAN_STATUSES[1400],
        }

    # -- personal data ----------------------------------------------------------------------------

    def names(self, male: bool) -> list[str]:
        fake = self.fake
        if male:
            names = [fake.last_name_male(), fake.first_name_male(), fake.middle_name_male()]
        else:
            names = [fake.last_name_female(), fake.first_name_female(), fake.middle_name_female()]
        if self.rng.random() < 0.07:  # so that searching 'семенов' must find 'Семёнов'
            part = self.rng.randrange(3)
            names[part] = self.rng.choice(_YO_NAMES[male][part])
        return names

    def birth_date(self, first_loan: date) -> date:
        """18-75 years old today, and an adult when the first application was made."""
        today = self.today
        age_days = int(self.rng.triangular(18.1, 74.9, 33) * 365.25)
        born = today - timedelta(days=age_days)
        latest = _add_years(first_loan, -18)
        if born > latest:
            born = latest - timedelta(days=self.rng.randint(0, 3000))
        return max(born, _add_years(today, -75) + timedelta(days=1))

    def passport(self, city: _City, born: date) -> tuple[str, str]:
        """A passport issued at 14, 20 or 45 (whichever is the latest so far), numbered by region and year."""
        issued = born
        for age in (45, 20, 14):
            issued = _add_years(born, age) + timedelta(days=self.rng.randint(5, 60))
            if issued < self.today:
                break
        series = city.passport_region + f'{issued.year % 100:02d}'
        number = self.passports.draw(lambda: series + f'{self.rng.randint(100000, 999999)}')
        authority = 'ГУ МВД России' if issued >= date(2016, 7, 1) else 'Отделом УФМС России'
        return number, f'{authority} по {city.police}, {issued:%d.%m.%Y}'

    def inn(self, city: _City) -> str:
        rng = self.rng
        return self.inns.draw(
            lambda: inn_with_check_digits(
                city.inn_region + f'{rng.randint(1, 40):02d}' + f'{rng.randint(0, 999999):06d}'
            )
        )

    def snils_number(self) -> str:
        def make() -> str:
            first_nine = f'{self.rng.randint(2_000_000, 199_999_999):09d}'
            return first_nine + snils_check_digits(first_nine)

        return self.snils.draw(make)

    def phone_rows(self, echo: _Echo | None) -> list[Row]:
        count = self.rng.choices((1, 2, 3), weights=(50, 35, 15))[0]
        rows = []
        for index in range(count):
            if index == 0 and echo and echo.phone:
                phone = echo.phone
            else:
                phone = self.phones.draw(lambda: f'79{self.rng.randint(0, 999_999_999):09d}')
            kind = 'mobile' if index == 0 else self.rng.choice(('home', 'work'))
            rows.append({'phone': phone, 'kind': kind, 'is_primary': index == 0})
        return rows

    def email(self, last: str, first: str, born: date) -> str | None:
        if self.rng.random() < 0.25:
            return None
        last_l, first_l = _translit(last), _translit(first)
        domain = self.rng.choices([d for d, _ in _MAIL_DOMAINS], weights=[w for _, w in _MAIL_DOMAINS])[0]
        local = self.rng.choice(
            (
                f'{last_l}.{first_l}',
                f'{first_l}.{last_l}{born.year % 100:02d}',
                f'{first_l[0]}{last_l}{self.rng.randint(1, 999)}',
                f'{last_l}{born.year}',
            )
        )
        return f'{local}@{domain}'

    def address(self, city: _City) -> str:
        rng = self.rng
        postcode = rng.randint(*city.postcodes)
        house = str(rng.randint(1, 150)) + rng.choice(('', '', '', f'/{rng.randint(1, 9)}', ' к. 2'))
        flat = '' if rng.random() < 0.1 else f', кв. {rng.randint(1, 320)}'
        return f'{postcode}, {city.name}, {self.fake.street_name()}, д. {house}{flat}'

    def employer(self, age: int) -> str:
        if age >= 60 and self.rng.random() < 0.75:
            return 'Пенсионер'
        choice = self.weighted({'company': 82, 'Не работает': 9, 'Самозанятый': 6, 'Пенсионер': 3})
        return self.fake.company() if choice == 'company' else choice

    # -- one borrower -----------------------------------------------------------------------------

    def city(self) -> _City:
        return self.rng.choices(CITIES, weights=[city.weight for city in CITIES])[0]

    def profile(self, echo: _Echo | None) -> str:
        return echo.profile if echo and echo.profile else self.weighted(_PROFILES)

    def borrower(self, index: int) -> _Plan:
        rng = self.rng
        echo = _ECHOES.get(index)
        archived = index in self.archived
        city = _CITY_BY_NAME[echo.city] if echo else self.city()
        tz = ZoneInfo(city.timezone)
        male = rng.random() < 0.52
        last, first, middle = self.names(male)
        profile = 'archived' if archived else self.profile(echo)
        loans, applications = self.credit_history(profile, tz, echo)
        born = self.birth_date(min(loans[0]['issued_on'], applications[0]['applied_at'].date()))
        age = (self.today - born).days // 365
        passport, issued = self.passport(city, born)
        operator_id = self.operator_ids[index % len(self.operator_ids)]
        plan = _Plan(
            borrower={
                'pin': str(PIN_BASE + index),
                'last_name': last,
                'first_name': first,
                'middle_name': middle,
                'search_name': name_key(f'{last} {first} {middle}'),
                'birth_date': born,
                'inn': self.inn(city),
                'snils': self.snils_number(),
                'passport': passport,
                'passport_issued': issued,
                'email': self.email(last, first, born),
                'address': (echo and echo.address) or self.address(city),
                'city': city.name,
                'timezone': city.timezone,
                'employer': (echo and echo.employer) or self.employer(age),
                'assigned_operator_id': operator_id,
                'archived': archived,
                'created_at': applications[0]['applied_at'],
            },
            phones=self.phone_rows(echo),
            loans=loans,
            applications=applications,
        )
        self.fill_activity(plan, tz, profile)
        _fill_aggregates(plan, self.monthly_elsewhere())
        return plan

    def monthly_elsewhere(self) -> Decimal:
        """Payments to other creditors, part of the monthly debt load the card shows."""
        if self.rng.random() < 0.5:
            return _ZERO
        return Decimal(self.rng.randint(4, 80) * 500)

    def fill_activity(self, plan: _Plan, tz: ZoneInfo, profile: str) -> None:
        """Communications and product sales, within the time the borrower has been a client."""
        active = [loan for loan in plan.loans if loan['state'] == 'active']
        dpd = max((loan['days_past_due'] for loan in active), default=0)
        overdue = sum((loan['overdue_amount'] for loan in active), _ZERO)
        main = max(active or plan.loans, key=lambda loan: (loan['days_past_due'], loan['issued_on']))
        horizon = max(1, min(180, (self.today - plan.loans[0]['issued_on']).days))
        operator_id = plan.borrower['assigned_operator_id']
        contact = _Contact(
            tz=tz,
            operator_id=operator_id,
            phones=[row['phone'] for row in plan.phones],
            email=plan.borrower['email'],
            days_past_due=dpd,
            overdue=overdue,
            loan=main,
            horizon=horizon,
            count=self.contact_count(profile, dpd),
        )
        plan.communications = self.communications(contact)
        if profile != 'archived' and self.rng.random() < 0.2:
            plan.sales = self.sales(operator_id, tz, horizon, main)

    def contact_count(self, profile: str, dpd: int) -> int:
        rng = self.rng
        if profile == 'archived':
            return rng.choice((0, 0, 0, 1))
        if dpd > 30:
            return rng.randint(5, 12)
        if dpd > 0:
            return rng.randint(3, 10)
        if profile == 'review':
            return rng.randint(1, 3)
        return rng.randint(0, 5)

    def sales(self, operator_id: int, tz: ZoneInfo, horizon: int, loan: Row) -> list[Row]:
        """Confirmed sales on the borrower's main loan (its id is known after the insert: by number)."""
        count = min(len(self.products), self.rng.choices((1, 2), weights=(70, 30))[0])
        picked = self.rng.sample(self.products, count)
        drawn = [(self.sellable(rules, loan), self.sold_at(horizon, tz)) for _, rules in picked]
        once: dict[ProductRules, datetime] = {}
        for rules, sold_at in drawn:  # a fallback also drawn is sold once
            once.setdefault(rules, sold_at)
        rows = []
        for rules, sold_at in once.items():
            rows.append(
                {
                    'product_id': self._product_ids[rules.code],
                    'operator_id': operator_id,
                    'price': rules.price.fixed,
                    'sold_at': sold_at,
                    'loan_number': loan['number'],
                    'sale_id': str(uuid.uuid5(_SALE_IDS, f'{loan["number"]}:{rules.code}')),
                    'status': 'confirmed',
                    'decided_at': sold_at,
                    'sent_at': sold_at,
                }
            )
        return rows

    def sold_at(self, horizon: int, tz: ZoneInfo) -> datetime:
        return self.moment(self.today - timedelta(days=self.rng.randint(1, horizon)), tz)

    def sellable(self, rules: ProductRules, loan: Row) -> ProductRules:
        """The drawn product, or legal advice when the loan is not eligible for it (no draw: same seed)."""
        facts = LoanFacts(
            loan['state'],
            loan['days_past_due'],
            loan['overdue_amount'],
            loan['total_debt'],
            loan['principal_outstanding'],
        )
        if refusal(rules, facts) is None:
            return rules
        return next(r for _, r in self.products if r.code == _FALLBACK_SOLD)

    # -- communications ---------------------------------------------------------------------------

    def contact_days(self, contact: _Contact) -> list[int]:
        """Distinct days back, oldest first; recent ones likelier, a fresh one for overdue borrowers."""
        days: set[int] = set()
        count = min(contact.count, contact.horizon)
        if count and contact.days_past_due:
            days.add(self.rng.randint(1, min(contact.horizon, 7)))
        tries = 0
        while len(days) < count and tries < 40 * count:
            tries += 1
            day = 1 + int(self.rng.expovariate(1 / 45))
            if day <= contact.horizon:
                days.add(day)
        return sorted(days, reverse=True)

    def communications(self, contact: _Contact) -> list[Row]:
        rows: list[Row] = []
        outgoing_call_days: list[int] = []
        channels = _CHANNELS_OVERDUE if contact.days_past_due else _CHANNELS_CURRENT
        for days_back in self.contact_days(contact):
            channel = self.weighted(channels)
            if channel == 'email' and not contact.email:
                channel = 'sms'
            if channel == 'call_out':
                # 230-FZ: at most two outgoing calls about a debt in any seven days
                if sum(1 for d in outgoing_call_days if d - days_back < 7) >= 2:
                    channel = 'sms'
                else:
                    outgoing_call_days.append(days_back)
            day = self.today - timedelta(days=days_back)
            rows.append(self.communication(contact, channel, day))
        return rows

    def operator_for(self, contact: _Contact) -> int:
        if self.rng.random() < 0.85:
            return contact.operator_id
        return self.rng.choice(self.operator_ids)

    def communication(self, contact: _Contact, channel: str, day: date) -> Row:
        row: Row = dict.fromkeys(_COMMUNICATION_KEYS)
        row.update(
            operator_id=self.operator_for(contact),
            channel=channel,
            direction='in' if channel == 'call_in' else 'out',
            started_at=self.moment(day, contact.tz),
        )
        if channel in ('call_in', 'call_out'):
            self.fill_call(row, contact, day)
        elif channel == 'sms':
            row.update(
                phone=contact.phones[0],
                body=self.sms_text(contact, day),
                delivery_status='delivered' if self.rng.random() < 0.92 else 'failed',
            )
        elif channel == 'email':
            row.update(
                body=self.email_text(contact, day),
                delivery_status='delivered' if self.rng.random() < 0.95 else 'failed',
            )
        else:
            row['comment'] = self.rng.choice(_COMMENTS['note'])
        return row

    def fill_call(self, row: Row, contact: _Contact, day: date) -> None:
        rng = self.rng
        if row['channel'] == 'call_in':
            code = self.weighted(_IN_RESULTS_OVERDUE if contact.days_past_due else _IN_RESULTS_CURRENT)
        else:
            code = self.weighted(_OUT_RESULTS_OVERDUE if contact.days_past_due else _OUT_RESULTS_CURRENT)
        name, reached = RESULT_CODES[code]
        phones = contact.phones
        if code == 'wrong_number':
            phone = phones[-1]  # the extra numbers are the ones that turn out wrong
        else:
            phone = phones[0] if rng.random() < 0.8 else rng.choice(phones)
        if code == 'no_answer':
            duration = 0
        elif reached:
            duration = rng.randint(40, 540)
        else:
            duration = rng.randint(10, 60)
        row.update(
            phone=phone,
            result_code=code,
            result_name=name,
            reached=reached,
            duration_s=duration,
            ended_at=row['started_at'] + timedelta(seconds=duration),
            comment=rng.choice(_COMMENTS[code]) if rng.random() < 0.85 else None,
        )
        if code == 'promise':
            base = float(contact.overdue) if contact.overdue else rng.randint(10, 50) * 100
            amount = max(500, round(base * rng.uniform(0.3, 1.0) / 100) * 100)
            row.update(promise_amount=Decimal(amount), promise_date=day + timedelta(days=rng.randint(1, 7)))

    def sms_text(self, contact: _Contact, day: date) -> str:
        loan = contact.loan
        if contact.overdue:
            return self.rng.choice(
                (
                    f'По займу № {loan["number"]} просрочен платёж {_rub(contact.overdue)} руб. '
                    'Оплатите в личном кабинете или позвоните 8 800 000-00-00',
                    f'Задолженность по займу № {loan["number"]}: {_rub(contact.overdue)} руб. '
                    'Оплатите сегодня, чтобы избежать неустойки. Тел. 8 800 000-00-00',
                    f'Не удалось связаться с вами по займу № {loan["number"]}. '
                    'Пожалуйста, перезвоните: 8 800 000-00-00',
                )
            )
        if loan['state'] == 'active' and loan['status_code'] != 1200:
            payment = monthly_installment(loan['product'], loan['amount'], loan['term_days'], loan['rate'])
            due = day + timedelta(days=self.rng.randint(2, 5))
            return f'Напоминаем: платёж по займу № {loan["number"]} {_rub(payment)} руб. до {due:%d.%m.%Y}'
        return self.rng.choice(
            (
                'Ваша заявка рассматривается. Решение придёт в SMS',
                'Одобрен новый заём на выгодных условиях. Подробнее в личном кабинете',
                'Спасибо, что выбрали нас! Ваш персональный лимит увеличен',
            )
        )

    def email_text(self, contact: _Contact, day: date) -> str:
        loan = contact.loan
        if contact.overdue:
            return (
                f'Здравствуйте! По договору займа № {loan["number"]} на {day:%d.%m.%Y} имеется просроченная '
                f'задолженность {_rub(contact.overdue)} руб. Просим погасить её или связаться с нами '
                'для обсуждения условий.'
            )
        return (
            f'Здравствуйте! Направляем график платежей по договору займа № {loan["number"]}. '
            'Оплатить можно в личном кабинете, в отделении банка или через терминалы партнёров.'
        )


_COMMUNICATION_KEYS = (
    'operator_id',
    'channel',
    'direction',
    'started_at',
    'ended_at',
    'phone',
    'result_code',
    'result_name',
    'reached',
    'promise_amount',
    'promise_date',
    'comment',
    'body',
    'delivery_status',
    'duration_s',
    'recording_url',
)


def _profile_dpd(rng: random.Random, profile: str) -> int:
    if profile == 'current':
        return 0
    if profile == 'dpd_90':
        return min(91 + int(rng.expovariate(1 / 150)), 900)
    return rng.randint(*_DPD_RANGES[profile])


def _accrued(
    product: _LoanProduct, amount: float, term: int, daily_rate: float, elapsed: int, dpd: int
) -> tuple[float, float]:
    """Outstanding principal and unpaid interest `elapsed` days after issue, `dpd` of them overdue."""
    if not product.installments:
        return amount, amount * daily_rate * elapsed
    months = max(1, term // 30)
    monthly = daily_rate * 30
    # an overdue loan missed the installment due `dpd` days ago; the ones before it were paid
    paid = max(0, min(months - 1, (elapsed - dpd) // 30 - 1 if dpd else elapsed // 30))
    growth = (1 + monthly) ** paid
    principal = amount * growth - _annuity(amount, monthly, months) * (growth - 1) / monthly
    return principal, principal * daily_rate * (elapsed - paid * 30)


def _fill_aggregates(plan: _Plan, elsewhere: Decimal) -> None:
    """The borrower's denormalised columns, exactly as the services keep them."""
    active = [loan for loan in plan.loans if loan['state'] == 'active']
    plan.borrower.update(
        total_debt=sum((loan['total_debt'] for loan in active), _ZERO),
        overdue_amount=sum((loan['overdue_amount'] for loan in active), _ZERO),
        days_past_due=max((loan['days_past_due'] for loan in active), default=0),
        last_contact_at=max((row['started_at'] for row in plan.communications), default=None),
        monthly_payment=elsewhere
        + sum(
            (
                monthly_installment(loan['product'], loan['amount'], loan['term_days'], loan['rate'])
                for loan in active
                if loan['status_code'] != 1200
            ),
            _ZERO,
        ),
    )


# -- database -------------------------------------------------------------------------------------


def is_empty(sessions: sessionmaker[Session]) -> bool:
    """True when there are no users yet: the database has never been filled."""
    with sessions() as session:
        return session.scalar(select(User.id).limit(1)) is None


def seed_demo(
    sessions: sessionmaker[Session],
    *,
    borrowers: int = 2000,
    seed: int = 20261126,
    clock: Clock = system_clock,
) -> None:
    """Fill an empty database with demo users and `borrowers` borrowers, in one transaction.

    "Today" is the clock's date at the office (Moscow), whatever the server's time zone: give the
    clock the application runs on (``Settings.clock()``), or a fixed one for a reproducible data set.
    """
    today = clock().astimezone(OFFICE_TZ).date()
    rng = random.Random(seed)
    fake = Faker('ru_RU')
    fake.seed_instance(seed)
    with sessions.begin() as session:
        if session.scalar(select(User.id).limit(1)) is not None:
            raise RuntimeError('demo data goes only into an empty database, and this one has users')
        operator_ids = _insert_users(session, today)
        products = _insert_products(session)
        generator = _Generator(rng, fake, today, operator_ids, products, borrowers)
        _insert_plans(session, [generator.borrower(index) for index in range(borrowers)])
        seed_templates(session, today)
        seed_requests(session, today, seed=seed)


@functools.cache
def _password_hash(password: str) -> str:
    """argon2 takes a good fraction of a second, so each demo password is hashed once per process."""
    return hash_password(password)


def _insert_users(session: Session, today: date) -> list[int]:
    """The demo users; returns the operators' ids. Each distinct password is hashed once (argon2 is slow)."""
    hashes = {password: _password_hash(password) for _, password, *_ in DEMO_USERS}
    created = datetime.combine(today - timedelta(days=400), time(6, 0), tzinfo=UTC)
    users = [
        User(
            login=login,
            email=f'{login}@{EMAIL_DOMAIN}',
            full_name=full_name,
            password_hash=hashes[password],
            role=role.value,
            active=True,
            extension=extension,
            failed_logins=0,
            created_at=created,
        )
        for login, password, role, full_name, extension in DEMO_USERS
    ]
    session.add_all(users)
    session.flush()
    # the demo's supervisor leads its operators («Мониторинг» shows a supervisor their groups only)
    lead = next(user for user in users if user.role == Role.SUPERVISOR.value)
    group = UserGroup(name='Группа взыскания 1', supervisor_id=lead.id)
    session.add(group)
    session.flush()
    for user in users:
        if user.role == Role.OPERATOR.value:
            user.group_id = group.id
    session.flush()
    return [user.id for user in users if user.role == Role.OPERATOR.value]


def _insert_products(session: Session) -> list[tuple[int, ProductRules]]:
    """The catalogue; returns the products the demo's past sales are drawn from (DEMO_SOLD's order)."""
    products = {
        draft.code: Product(
            code=draft.code,
            name=draft.name,
            kind=draft.kind,
            description=draft.description,
            price=draft.price or Decimal(0),
            active=True,
            price_base=draft.price_base,
            price_percent=draft.percent,
            price_min=draft.price_min,
            price_max=draft.price_max,
            allowed_states=states_text(draft.states),
            dpd_min=draft.dpd_min,
            dpd_max=draft.dpd_max,
            overdue_min=draft.overdue_min,
            overdue_max=draft.overdue_max,
            once_per_loan=draft.once_per_loan,
            max_per_loan=draft.max_per_loan,
        )
        for draft in DEMO_PRODUCTS
    }
    session.add_all(products.values())
    session.flush()
    rules = {draft.code: rules_of(draft) for draft in DEMO_PRODUCTS}
    return [(products[code].id, rules[code]) for code in DEMO_SOLD]


def _insert_plans(session: Session, plans: list[_Plan]) -> None:
    """Borrowers first (their ids come back in order), then every child table in one statement each."""
    if not plans:
        return
    statement = insert(Borrower).returning(Borrower.id, sort_by_parameter_order=True)
    # render_nulls: rows with and without a None in some column stay in one batch (many-row INSERTs)
    options = {'render_nulls': True}
    ids = session.scalars(statement, [plan.borrower for plan in plans], execution_options=options).all()
    children: dict[type[Base], list[Row]] = {
        BorrowerPhone: [],
        Loan: [],
        CreditApplication: [],
        ProductSale: [],
        Communication: [],
    }
    for borrower_id, plan in zip(ids, plans, strict=True):
        for model, rows in (
            (BorrowerPhone, plan.phones),
            (Loan, plan.loans),
            (CreditApplication, plan.applications),
            (ProductSale, plan.sales),
            (Communication, plan.communications),
        ):
            for row in rows:
                row['borrower_id'] = borrower_id
            children[model].extend(rows)
    for table, table_rows in children.items():
        if table is ProductSale and table_rows:
            _loan_ids_of_sales(session, table_rows)
        if table_rows:
            session.execute(insert(table), table_rows, execution_options=options)


def _loan_ids_of_sales(session: Session, sales: list[Row]) -> None:
    """The loans are in now: each sale gets its loan's id in place of its number."""
    numbers = {sale['loan_number'] for sale in sales}
    ids = dict(session.execute(select(Loan.number, Loan.id).where(Loan.number.in_(numbers))).all())
    for sale in sales:
        sale['loan_id'] = ids[sale.pop('loan_number')]
