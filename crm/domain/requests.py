"""Requests (обращения): statuses, channels, origins and the answer deadline (pure rules, no I/O).

The deadline is the lender's base standard: an answer within 15 working days of the day the request
was opened, counted on the production calendar the 230-FZ rules use (``contact_rules.is_day_off``:
weekends, public holidays and the government's transfers). The day of opening does not count; the
answer is due by the end of the 15th working day after it. From the 10th working day on, the request is
shown with a warning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from crm.domain.contact_rules import CallLimits, is_day_off
from crm.domain.identifiers import name_key

ANSWER_WORKING_DAYS = 15
WARNING_FROM_WORKING_DAY = 10


class RequestStatus(StrEnum):
    NEW = 'new'
    IN_PROGRESS = 'in_progress'
    WAITING = 'waiting'  # for the borrower
    RESOLVED = 'resolved'
    CLOSED = 'closed'


REQUEST_STATUS_LABELS: dict[str, str] = {
    RequestStatus.NEW: 'Новое',
    RequestStatus.IN_PROGRESS: 'В работе',
    RequestStatus.WAITING: 'Ожидает клиента',
    RequestStatus.RESOLVED: 'Решено',
    RequestStatus.CLOSED: 'Закрыто',
}

# A borrower has at most one open request of each origin; inbound contacts join it.
OPEN_STATUSES: tuple[str, ...] = (RequestStatus.NEW, RequestStatus.IN_PROGRESS, RequestStatus.WAITING)


# Where a status may go by hand («Закрыто» is final; «Решено» may be reopened). An answer resolves a
# request from any open status.
TRANSITIONS: dict[str, frozenset[str]] = {
    RequestStatus.NEW: frozenset({RequestStatus.IN_PROGRESS, RequestStatus.CLOSED}),
    RequestStatus.IN_PROGRESS: frozenset({RequestStatus.WAITING, RequestStatus.RESOLVED}),
    RequestStatus.WAITING: frozenset({RequestStatus.IN_PROGRESS, RequestStatus.RESOLVED}),
    RequestStatus.RESOLVED: frozenset({RequestStatus.CLOSED, RequestStatus.IN_PROGRESS}),
    RequestStatus.CLOSED: frozenset(),
}


class RequestOrigin(StrEnum):
    CONTACT = 'contact'  # a call, chat, e-mail or one written down by hand
    BROKEN_PROMISE = 'broken_promise'  # opened by the promise checker for the assigned operator


class RequestChannel(StrEnum):
    CALL = 'call'
    CHAT = 'chat'
    EMAIL = 'email'
    MANUAL = 'manual'  # written down by an operator (a visit, a letter, a call on another phone)
    SYSTEM = 'system'  # opened by the CRM itself (a broken promise)


REQUEST_CHANNEL_LABELS: dict[str, str] = {
    RequestChannel.CALL: 'Звонок',
    RequestChannel.CHAT: 'Чат',
    RequestChannel.EMAIL: 'E-mail',
    RequestChannel.MANUAL: 'Вручную',
    RequestChannel.SYSTEM: 'Система',
}

# The topic list an empty database starts with (administrators edit it: request_topics).
DEFAULT_TOPICS: tuple[tuple[str, str], ...] = (
    ('payment', 'Платёж'),
    ('requisites', 'Реквизиты'),
    ('restructuring', 'Реструктуризация'),
    ('prolongation', 'Пролонгация'),
    ('account_access', 'Доступ в ЛК'),
    ('complaint', 'Жалоба'),
    ('broken_promise', 'Нарушено обещание'),
    ('documents', 'Справки и документы'),
    ('other', 'Другое'),
)


class RequestEventKind(StrEnum):
    """What a line of a request's history says happened."""

    OPENED = 'opened'
    CONTACT = 'contact'  # an inbound contact joined the request
    TAKEN = 'taken'
    ASSIGNED = 'assigned'
    STATUS = 'status'
    TOPIC = 'topic'
    COMMENT = 'comment'
    ANSWER = 'answer'


def search_text(subject: str, body: str, full_name: str, pin: str, phones: Sequence[str]) -> str:
    """What full-text search reads: lower case, ё→е, single spaces; phones as 7XXXXXXXXXX."""
    return name_key(' '.join([subject, body, full_name, pin, *phones]))


def is_working_day(day: date, limits: CallLimits) -> bool:
    return not is_day_off(day, limits)


def add_working_days(start: date, days: int, limits: CallLimits) -> date:
    """The ``days``-th working day after ``start`` (``start`` itself does not count)."""
    day = start
    left = days
    while left > 0:
        day += timedelta(days=1)
        if is_working_day(day, limits):
            left -= 1
    return day


def working_days_between(start: date, end: date, limits: CallLimits) -> int:
    """Working days after ``start`` up to and including ``end``; negative if ``end`` is before ``start``."""
    if end < start:
        return -working_days_between(end, start, limits)
    return sum(
        1 for n in range(1, (end - start).days + 1) if is_working_day(start + timedelta(days=n), limits)
    )


def answer_due(opened_on: date, limits: CallLimits) -> date:
    """The last day to answer a request opened on ``opened_on`` (Moscow calendar)."""
    return add_working_days(opened_on, ANSWER_WORKING_DAYS, limits)


@dataclass(frozen=True, slots=True)
class Deadline:
    """Where a request stands against its deadline on a given day."""

    due_on: date
    working_days_left: int  # 0 on the last day, negative when overdue
    warning: bool  # the 10th working day or later
    overdue: bool

    @property
    def label(self) -> str:
        if self.overdue:
            return f'просрочено на {-self.working_days_left} раб. дн.'
        if self.working_days_left == 0:
            return 'последний день'
        return f'осталось {self.working_days_left} раб. дн.'


def deadline(opened_on: date, today: date, limits: CallLimits) -> Deadline:
    due = answer_due(opened_on, limits)
    left = working_days_between(today, due, limits)
    elapsed = working_days_between(opened_on, today, limits)
    return Deadline(
        due_on=due, working_days_left=left, warning=elapsed >= WARNING_FROM_WORKING_DAY, overdue=left < 0
    )
