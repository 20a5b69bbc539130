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

KOPECK = Decimal('0.01')


def needed(amount: Decimal, share: float) -> Decimal:
    """What payments must reach for a promise of ``amount`` to be kept (rounded to the kopeck)."""
    return (amount * Decimal(str(share))).quantize(KOPECK, rounding=ROUND_HALF_UP)


def last_day(due_on: date, grace_days: int) -> date:
    """The last day (Moscow calendar) a payment still counts for a promise due on ``due_on``."""
    return due_on + timedelta(days=grace_days)


def closing_status(paid: Decimal) -> PromiseStatus:
    """What a promise whose window passed without enough payment becomes."""
    return PromiseStatus.PARTLY_KEPT if paid > 0 else PromiseStatus.BROKEN
