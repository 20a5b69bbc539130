"""Russian formats for money, dates and counts, as operators expect to read them."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from crm.domain.text import plural

OFFICE_TZ = ZoneInfo('Europe/Moscow')


def money(value: Decimal | int | None) -> str:
    """Decimal('70000') -> '70 000,00 ₽'."""
    if value is None:
        return '—'
    text = f'{Decimal(value):,.2f}'.replace(',', ' ').replace('.', ',')
    return f'{text} ₽'


def day(value: date | None) -> str:
    return f'{value:%d.%m}.{value.year:04d}' if value else '—'  # %Y drops the zeros of year 1 on Linux


def moment(value: datetime | None) -> str:
    """A UTC moment in the office's time: '26.11.2026 14:05'.

    A moment at the very edge of what Python can hold (year 1 or 9999, from a broken clock) is shown in
    UTC rather than failing the page it is on.
    """
    if value is None:
        return '—'
    try:
        local = value.astimezone(OFFICE_TZ)
    except OverflowError:
        return f'{day(value)} {value:%H:%M} UTC'
    return f'{day(local)} {local:%H:%M}'


def days(n: int) -> str:
    return f'{n} {plural(n, "день", "дня", "дней")}'


def percent(value: Decimal) -> str:
    text = f'{value.normalize():f}'.replace('.', ',')
    return f'{text}%'


def duration(seconds: int | None) -> str:
    if not seconds:
        return ''
    minutes, secs = divmod(seconds, 60)
    return f'{minutes}:{secs:02d}'


def local_time(tz_name: str, now: datetime) -> str:
    """The borrower's wall clock and offset: '16:05 (UTC+5)'."""
    try:
        local = now.astimezone(ZoneInfo(tz_name))
    except OverflowError:
        return '—'
    offset = local.utcoffset()
    hours = int(offset.total_seconds() // 3600) if offset else 0
    return f'{local:%H:%M} (UTC{hours:+d})'
