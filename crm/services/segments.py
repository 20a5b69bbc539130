"""A mailing's segment: which borrowers it reaches, read set-wise.

``Segment`` is what a supervisor builds on «Рассылки» (kept as JSON in ``Mailing.segment``);
``segment_query`` turns it into one statement over ``borrowers`` (a loan's product and status by
``EXISTS``), with the borrower's address for the channel beside each row: the primary mobile phone
(else the first mobile) for SMS, the e-mail for e-mail.

What the law makes of them is ``crm.services.mailing_law``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from itertools import product
from operator import attrgetter
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import ColumnElement, Select, Subquery, Table, and_, exists, false, func, or_, select
from sqlalchemy.orm import Session

from crm.db.models import Borrower, BorrowerPhone, Loan
from crm.domain import LOAN_STATUSES
from crm.domain import formatting as fmt
from crm.domain.contact_rules import LegalFlag
from crm.domain.errors import ServiceError
from crm.domain.messages import MessageChannel

_borrowers = cast(Table, Borrower.__table__)
_phones = cast(Table, BorrowerPhone.__table__)
_loans = cast(Table, Loan.__table__)

MAX_CHOICES = 200  # items in one list of a segment (products, cities, zones, statuses)
NO_ADDRESS = {MessageChannel.SMS: 'нет мобильного телефона', MessageChannel.EMAIL: 'нет e-mail'}
FLAG_COLUMNS = tuple(flag.value for flag in LegalFlag)


@dataclass(frozen=True)
class Segment:
    """Which borrowers a mailing reaches; an empty field does not narrow it.

    Ranges are inclusive. ``products`` and ``statuses`` match one loan of the borrower having both (an
    archived loan only with ``include_archived``); ``no_contact_days``: the last contact is older than
    that many days, or there never was one.
    """

    dpd_min: int | None = None
    dpd_max: int | None = None
    overdue_min: Decimal | None = None
    overdue_max: Decimal | None = None
    products: tuple[str, ...] = ()
    cities: tuple[str, ...] = ()
    timezones: tuple[str, ...] = ()
    statuses: tuple[int, ...] = ()
    no_contact_days: int | None = None
    include_archived: bool = False

    def to_json(self) -> str:
        values = asdict(self)
        for name in ('overdue_min', 'overdue_max'):
            values[name] = None if values[name] is None else str(values[name])
        return json.dumps(values, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Segment:
        raw = json.loads(text)
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {name: value for name, value in raw.items() if name in known}
        for name in ('products', 'cities', 'timezones', 'statuses'):
            values[name] = tuple(values.get(name) or ())
        for name in ('overdue_min', 'overdue_max'):
            if values.get(name) is not None:
                values[name] = Decimal(values[name])
        return cls(**values)

    def checked(self) -> Segment:
        """The segment if it makes sense, else a Russian ServiceError naming the field."""
        _range('Дней просрочки', self.dpd_min, self.dpd_max)
        _range('Сумма просрочки', self.overdue_min, self.overdue_max)
        if self.no_contact_days is not None and not 0 <= self.no_contact_days <= 3650:
            raise ServiceError('Последний контакт: число дней от 0 до 3650')
        for label, items in (('Продукт', self.products), ('Город', self.cities)):
            if len(items) > MAX_CHOICES or any(not item or len(item) > 100 for item in items):
                raise ServiceError(f'{label}: не больше {MAX_CHOICES} значений по 100 символов')
        if len(self.statuses) > MAX_CHOICES or len(self.timezones) > MAX_CHOICES:
            raise ServiceError(f'Статус и часовой пояс: не больше {MAX_CHOICES} значений')
        for zone in self.timezones:
            try:
                ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ServiceError(f'Часовой пояс: неизвестный пояс «{zone[:64]}»') from None
        return self

    def describe(self) -> str:
        """The segment in a line of Russian, for the list of mailings."""
        parts = []
        if self.dpd_min is not None or self.dpd_max is not None:
            parts.append(f'просрочка {_between(self.dpd_min, self.dpd_max)} дн.')
        if self.overdue_min is not None or self.overdue_max is not None:
            low, high = (
                fmt.money(v) if v is not None else None for v in (self.overdue_min, self.overdue_max)
            )
            parts.append(f'сумма просрочки {_between(low, high)}')
        if self.products:
            parts.append('продукт: ' + ', '.join(self.products))
        if self.statuses:
            parts.append('статус: ' + ', '.join(str(code) for code in self.statuses))
        if self.cities:
            parts.append('город: ' + ', '.join(self.cities))
        if self.timezones:
            parts.append('пояс: ' + ', '.join(self.timezones))
        if self.no_contact_days is not None:
            parts.append(f'без контакта {self.no_contact_days} дн. и больше')
        if self.include_archived:
            parts.append('с архивом')
        return '; '.join(parts) or 'все заёмщики'


def _range(label: str, low: int | Decimal | None, high: int | Decimal | None) -> None:
    if (low is not None and low < 0) or (high is not None and high < 0):
        raise ServiceError(f'{label}: значения не могут быть отрицательными')
    if low is not None and high is not None and low > high:
        raise ServiceError(f'{label}: «от» больше, чем «до»')


def _between(low: object, high: object) -> str:
    if low is not None and high is not None:
        return f'{low}–{high}'
    return f'от {low}' if low is not None else f'до {high}'


def parse_money(text: str | None, label: str) -> Decimal | None:
    """'1 000,50' -> Decimal('1000.50'); empty -> None; else a Russian ServiceError."""
    if text is None or not str(text).strip():
        return None
    cleaned = str(text).replace(' ', '').replace('\u00a0', '').replace(',', '.')
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ServiceError(f'{label}: нужна сумма в рублях, например 1000 или 1000,50') from None
    if not value.is_finite() or abs(value) > Decimal('1e12'):
        raise ServiceError(f'{label}: нужна сумма в рублях, например 1000 или 1000,50')
    return value.quantize(Decimal('0.01'))


# --- the statement ------------------------------------------------------------------------------
def address_column(channel: MessageChannel) -> ColumnElement[str | None]:
    """The borrower's address for the channel, as a column of the segment's rows."""
    b = _borrowers.c
    if channel is MessageChannel.EMAIL:
        return b.email
    p = _phones.c
    mobile = (
        select(p.phone)
        .where(p.borrower_id == b.id, p.kind == 'mobile')
        .order_by(p.is_primary.desc(), p.id)
        .limit(1)
        .scalar_subquery()
    )
    return cast(ColumnElement[str | None], mobile)


def segment_conditions(segment: Segment, now: datetime) -> list[ColumnElement[bool]]:
    b = _borrowers.c
    conditions: list[ColumnElement[bool]] = []
    if not segment.include_archived:
        conditions.append(b.archived.is_(false()))
    if segment.dpd_min is not None:
        conditions.append(b.days_past_due >= segment.dpd_min)
    if segment.dpd_max is not None:
        conditions.append(b.days_past_due <= segment.dpd_max)
    if segment.overdue_min is not None:
        conditions.append(b.overdue_amount >= segment.overdue_min)
    if segment.overdue_max is not None:
        conditions.append(b.overdue_amount <= segment.overdue_max)
    if segment.cities:
        conditions.append(b.city.in_(segment.cities))
    if segment.timezones:
        conditions.append(b.timezone.in_(segment.timezones))
    if segment.no_contact_days is not None:
        since = now - timedelta(days=segment.no_contact_days)
        conditions.append(or_(b.last_contact_at.is_(None), b.last_contact_at < since))
    if segment.products or segment.statuses:
        conditions.append(exists(_loan_match(segment)))
    return conditions


def _loan_match(segment: Segment) -> Select[tuple[int]]:
    loan = _loans.c
    where = [loan.borrower_id == _borrowers.c.id]
    if segment.products:
        where.append(loan.product.in_(segment.products))
    if segment.statuses:
        where.append(loan.status_code.in_(segment.statuses))
    if not segment.include_archived:
        where.append(loan.state != 'archived')
    return select(loan.id).where(and_(*where))


def segment_query(
    segment: Segment,
    channel: MessageChannel,
    now: datetime,
    *columns: ColumnElement[Any],
    joined: bool = False,
) -> Select[Any]:
    """Id, time zone, days past due, the legal flags and the address, then ``columns``, by id.

    ``joined``: the mobile phones are joined once, ranked (for a whole segment: one pass over the
    phones); otherwise each row looks its phone up by index (a batch of a thousand by id).
    """
    b = _borrowers.c
    base = [b.id, b.timezone, b.days_past_due, *(b[name] for name in FLAG_COLUMNS)]
    if not joined or channel is MessageChannel.EMAIL:
        query = select(*base, address_column(channel).label('address'), *columns)
    else:
        mobiles = _ranked_mobiles()
        on = and_(mobiles.c.borrower_id == b.id, mobiles.c.n == 1)
        query = select(*base, mobiles.c.phone.label('address'), *columns).select_from(
            _borrowers.outerjoin(mobiles, on)
        )
    return query.where(*segment_conditions(segment, now)).order_by(b.id)


def _ranked_mobiles() -> Subquery:
    """Every mobile phone ranked per borrower as ``address_column`` picks: the primary, then the first."""
    p = _phones.c
    rank = func.row_number().over(partition_by=p.borrower_id, order_by=(p.is_primary.desc(), p.id))
    return select(p.borrower_id, p.phone, rank.label('n')).where(p.kind == 'mobile').subquery()


_FLAG_BITS = attrgetter(*FLAG_COLUMNS)
_FLAG_SETS = {
    bits: tuple(flag for flag, on in zip(LegalFlag, bits, strict=True) if on)
    for bits in product((False, True), repeat=len(FLAG_COLUMNS))
}


def flags_of(row: Any) -> tuple[LegalFlag, ...]:
    """The legal flags of a segment's row, in ``LegalFlag``'s order (a lookup: it runs for every row)."""
    return _FLAG_SETS[_FLAG_BITS(row)]  # (0/1 from a driver finds the same keys as False/True)


def usable_address(channel: MessageChannel, address: str | None) -> str | None:
    """The address if a message can go to it: a mobile phone as stored (7XXXXXXXXXX), an e-mail with @."""
    if not address:
        return None
    address = address.strip()
    if channel is MessageChannel.EMAIL:
        local, _, domain = address.rpartition('@')
        return address if local and '.' in domain and ' ' not in address else None
    return address if address.isdigit() and len(address) == 11 else None


@dataclass(frozen=True)
class SegmentOptions:
    """What the segment form offers: the values found in the database."""

    products: tuple[str, ...]
    cities: tuple[str, ...]
    timezones: tuple[str, ...]
    statuses: tuple[tuple[int, str], ...]  # (code, name)


def segment_options(session: Session) -> SegmentOptions:
    b, loan = _borrowers.c, _loans.c
    products = session.execute(select(loan.product).distinct().order_by(loan.product)).scalars()
    cities = session.execute(select(b.city).distinct().order_by(b.city)).scalars()
    zones = session.execute(select(b.timezone).distinct().order_by(b.timezone)).scalars()
    codes = set(session.execute(select(loan.status_code).distinct()).scalars())
    return SegmentOptions(
        products=tuple(products),
        cities=tuple(cities),
        timezones=tuple(zones),
        statuses=tuple((code, LOAN_STATUSES.get(code, str(code))) for code in sorted(codes)),
    )
