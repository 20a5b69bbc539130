"""Promises to pay: their statuses and when one counts as kept (pure rules, no I/O)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum


class PromiseStatus(StrEnum):
    OPEN = 'open'
    KEPT = 'kept'
    PARTLY_KEPT = 'partly_kept'
    BROKEN = 'broken'
    CANCELLED = 'cancelled'


PROMISE_STATUS_LABELS: dict[str, str] = {
    PromiseStatus.OPEN: 'Открыто',
    PromiseStatus.KEPT: 'Выполнено',
    PromiseStatus.PARTLY_KEPT: 'Выполнено частично',
    PromiseStatus.BROKEN: 'Нарушено',
    PromiseStatus.CANCELLED: 'Отменено',
}

# where a promise was made: read from the contact it is tied to (a call's result, the chat message)
PROMISE_SOURCE_LABELS: dict[str, str] = {
    'call': 'Звонок',
    'chat': 'Чат',
    'hand': 'Вручную',
}

KOPECK = Decimal('0.01')
MAX_DAYS_AHEAD = 30  # CRM_PROMISE_MAX_DAYS: a promise further off is a wish, not a promise


def date_problem(due_on: date, today: date, max_days: int = MAX_DAYS_AHEAD) -> str | None:
    """Why a promise cannot be due on ``due_on`` (Russian), or None: from today (the office's day) to
    ``max_days`` ahead."""
    if due_on < today:
        return 'Дата обещания не может быть в прошлом'
    latest = today + timedelta(days=max_days)
    if due_on > latest:
        return f'Дата обещания — не позже {latest:%d.%m.%Y}: не более {max_days} дн. от сегодняшнего дня'
    return None


def source_of(channel: str | None) -> str:
    """The source of a promise from the channel of the contact it is tied to (none: written by hand)."""
    if channel in ('call_in', 'call_out'):
        return 'call'
    return 'chat' if channel == 'chat' else 'hand'


def needed(amount: Decimal, share: float) -> Decimal:
    """What payments must reach for a promise of ``amount`` to be kept (rounded to the kopeck)."""
    return (amount * Decimal(str(share))).quantize(KOPECK, rounding=ROUND_HALF_UP)


def last_day(due_on: date, grace_days: int) -> date:
    """The last day (Moscow calendar) a payment still counts for a promise due on ``due_on``."""
    return due_on + timedelta(days=grace_days)


def closing_status(paid: Decimal) -> PromiseStatus:
    """What a promise whose window passed without enough payment becomes."""
    return PromiseStatus.PARTLY_KEPT if paid > 0 else PromiseStatus.BROKEN
