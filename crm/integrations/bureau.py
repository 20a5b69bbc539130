"""The credit bureau (БКИ) port, its report's one strict parser, and the embedded demo bureau.

``report(inn, passport)`` returns the borrower's ``BureauReport`` or raises ``BureauUnavailable`` with a
Russian reason (slow, down, or an answer that does not parse: never a half-filled report). The wire form
is the contract of ``CRM_BUREAU_URL``; ``parse_report`` reads it (from the bureau and from the copy the
CRM keeps) and ``report_json`` writes it back.

The payment-discipline strip (``payment_history``) in its normal form is a string of 24 symbols, one a
month, the oldest first and the report's month last: ``0`` paid on time, ``1`` 1–29 days past due, ``2``
30–59, ``3`` 60–89, ``4`` 90 and more, ``-`` no data (not open yet, closed, not reported). The bureau may
send it as such a string or as a list of the same symbols (numbers 0–4 or null for ``-``), at most 24; a
shorter one is the latest months and is padded on the left with ``-``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from crm.domain.clock import Clock, system_clock

MONTHS = 24
HISTORY_SYMBOLS = frozenset('01234-')


class BureauUnavailable(Exception):
    """No report: the bureau is slow, down or answered something that does not parse."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class BureauRecord:
    """One credit account of the borrower as the bureau knows it."""

    lender: str
    type: str
    amount: Decimal
    opened: date
    closed: date | None
    status: str
    overdue_amount: Decimal
    max_days_past_due: int
    payment_history: str  # 24 symbols of HISTORY_SYMBOLS, oldest month first

    @property
    def is_open(self) -> bool:
        return self.closed is None


@dataclass(frozen=True)
class BureauInquiry:
    """Someone asked the bureau about the borrower (a credit application, a check)."""

    lender: str
    at: datetime


@dataclass(frozen=True)
class BureauReport:
    generated_at: datetime
    records: tuple[BureauRecord, ...]
    inquiries: tuple[BureauInquiry, ...]


class CreditBureau(Protocol):
    def report(self, inn: str | None, passport: str | None) -> BureauReport:
        """The borrower's report; ``BureauUnavailable`` when there is none to be had now."""

    def close(self) -> None: ...


class _Bad(ValueError):
    pass


def parse_report(data: Any) -> BureauReport:
    """The report from its JSON (already decoded); ``BureauUnavailable`` naming the first bad field."""
    try:
        return _report(data)
    except _Bad as error:
        raise BureauUnavailable(f'ответ БКИ не разобран: {error}') from None


def report_json(report: BureauReport) -> str:
    """The report in its wire form (what ``parse_report`` reads back)."""
    return json.dumps(
        {
            'generated_at': report.generated_at.isoformat(),
            'records': [
                {
                    'lender': r.lender,
                    'type': r.type,
                    'amount': str(r.amount),
                    'opened': r.opened.isoformat(),
                    'closed': r.closed.isoformat() if r.closed else None,
                    'status': r.status,
                    'overdue_amount': str(r.overdue_amount),
                    'max_days_past_due': r.max_days_past_due,
                    'payment_history': r.payment_history,
                }
                for r in report.records
            ],
            'inquiries': [{'lender': i.lender, 'at': i.at.isoformat()} for i in report.inquiries],
        },
        ensure_ascii=False,
    )


def _report(data: Any) -> BureauReport:
    if not isinstance(data, dict):
        raise _Bad('ожидался объект JSON')
    records, inquiries = data.get('records'), data.get('inquiries')
    if not isinstance(records, list):
        raise _Bad('нет списка records')
    if not isinstance(inquiries, list):
        raise _Bad('нет списка inquiries')
    return BureauReport(
        generated_at=_moment(data, 'generated_at'),
        records=tuple(_field_of(f'records[{n}]', _record, item) for n, item in enumerate(records)),
        inquiries=tuple(_field_of(f'inquiries[{n}]', _inquiry, item) for n, item in enumerate(inquiries)),
    )


def _field_of(where: str, read: Callable[[Any], Any], item: Any) -> Any:
    try:
        return read(item)
    except _Bad as error:
        raise _Bad(f'{where}: {error}') from None


def _record(item: Any) -> BureauRecord:
    if not isinstance(item, dict):
        raise _Bad('ожидался объект')
    closed = item.get('closed')
    return BureauRecord(
        lender=_text(item, 'lender'),
        type=_text(item, 'type'),
        amount=_money(item, 'amount'),
        opened=_day(item, 'opened'),
        closed=None if closed is None else _day(item, 'closed'),
        status=_text(item, 'status'),
        overdue_amount=_money(item, 'overdue_amount'),
        max_days_past_due=_count(item, 'max_days_past_due'),
        payment_history=normal_history(item.get('payment_history')),
    )


def _inquiry(item: Any) -> BureauInquiry:
    if not isinstance(item, dict):
        raise _Bad('ожидался объект')
    return BureauInquiry(lender=_text(item, 'lender'), at=_moment(item, 'at'))


def normal_history(value: Any) -> str:
    """The strip in its normal form (see the module's docstring)."""
    if isinstance(value, str):
        symbols = list(value)
    elif isinstance(value, list):
        symbols = ['-' if s is None else str(s) for s in value if not isinstance(s, bool)]
        if len(symbols) != len(value):
            raise _Bad('payment_history: неверный элемент')
    else:
        raise _Bad('payment_history: ожидалась строка или список')
    if len(symbols) > MONTHS or not all(s in HISTORY_SYMBOLS for s in symbols):
        raise _Bad(f'payment_history: не более {MONTHS} знаков из 0–4 и «-»')
    return ''.join(symbols).rjust(MONTHS, '-')


def _text(item: dict[str, Any], name: str) -> str:
    value = item.get(name)
    if not isinstance(value, str) or not value.strip() or '\x00' in value:
        raise _Bad(f'{name}: ожидалась непустая строка')
    return ' '.join(value.split())[:200]


def _money(item: dict[str, Any], name: str) -> Decimal:
    value = item.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _Bad(f'{name}: ожидалась сумма')
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise _Bad(f'{name}: ожидалась сумма') from None
    if not amount.is_finite() or amount < 0 or amount >= Decimal(10) ** 13:
        raise _Bad(f'{name}: сумма вне допустимых пределов')
    return amount.quantize(Decimal('0.01'))


def _count(item: dict[str, Any], name: str) -> int:
    value = item.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100_000:
        raise _Bad(f'{name}: ожидалось целое число не меньше 0')
    return value


def _day(item: dict[str, Any], name: str) -> date:
    value = item.get(name)
    try:
        day = date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        day = None
    if day is None or not 1900 <= day.year <= 2100:
        raise _Bad(f'{name}: ожидалась дата ГГГГ-ММ-ДД')
    return day


def _moment(item: dict[str, Any], name: str) -> datetime:
    value = item.get(name)
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or not 2000 <= moment.year <= 2100:
        raise _Bad(f'{name}: ожидалась дата и время ISO 8601')
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


_LENDERS = ('Сбербанк', 'Т-Банк', 'ВТБ', 'Альфа-Банк', 'МКК «Быстроденьги»', 'МФК «Займер»', 'Совкомбанк')
_TYPES = ('Потребительский кредит', 'Кредитная карта', 'Микрозайм', 'Автокредит')


class DemoBureau:
    """The embedded default: a plausible report made up from the INN / passport, the same for the same
    borrower on the same day; no I/O. ``report`` with neither identifier is unavailable, as a real
    bureau's would be."""

    def __init__(self, clock: Clock = system_clock) -> None:
        self._clock = clock

    def report(self, inn: str | None, passport: str | None) -> BureauReport:
        if not inn and not passport:
            raise BureauUnavailable('для запроса в БКИ нужен ИНН или паспорт')
        seed = hashlib.sha256(f'{inn or ""}|{passport or ""}'.encode()).digest()
        now = self._clock().astimezone(UTC).replace(microsecond=0)
        records = tuple(_demo_record(seed, n, now.date()) for n in range(1 + seed[0] % 4))
        inquiries = tuple(
            BureauInquiry(
                _LENDERS[seed[10 + n] % len(_LENDERS)], now - timedelta(days=seed[14 + n] % 60, hours=n)
            )
            for n in range(seed[1] % 4)
        )
        return BureauReport(now, records, tuple(sorted(inquiries, key=lambda i: i.at, reverse=True)))

    def close(self) -> None:
        pass


def _demo_record(seed: bytes, n: int, today: date) -> BureauRecord:
    byte = seed[2 + n * 2 : 4 + n * 2]
    months_ago = 3 + byte[0] % 40
    opened = today.replace(day=1) - timedelta(days=30 * months_ago)
    closed = None if byte[1] % 3 else today.replace(day=1) - timedelta(days=30 * (byte[1] % months_ago))
    trouble = byte[0] % 5  # 0: a bad payer here, else mostly on time
    history = ''.join(_demo_month(seed, n, m, opened, closed, today, trouble) for m in range(MONTHS))
    worst = max((int(s) for s in history if s.isdigit()), default=0)
    overdue = Decimal(0) if closed or history[-1] in '0-' else Decimal(1000 + byte[1] * 97)
    return BureauRecord(
        lender=_LENDERS[(byte[0] + n) % len(_LENDERS)],
        type=_TYPES[byte[1] % len(_TYPES)],
        amount=Decimal(10_000 + (byte[0] * 256 + byte[1]) % 490 * 1000),
        opened=opened,
        closed=closed,
        status='Закрыт' if closed else ('Просрочка' if overdue else 'Активный'),
        overdue_amount=overdue,
        max_days_past_due=(0, 15, 45, 75, 120)[worst],
        payment_history=history,
    )


def _demo_month(
    seed: bytes, n: int, m: int, opened: date, closed: date | None, today: date, trouble: int
) -> str:
    month = today.replace(day=1) - timedelta(days=30 * (MONTHS - 1 - m))
    if month < opened.replace(day=1) or (closed is not None and month > closed):
        return '-'
    roll = seed[(n * 7 + m) % len(seed)]
    if trouble == 0:
        return '01234'[min(4, roll % 6)] if roll % 3 == 0 else '0'
    return '1' if roll % 17 == 0 else '0'
