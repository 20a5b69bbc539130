"""A request's answer deadline: 15 working days on the production calendar of the 230-FZ rules."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from crm.domain.contact_rules import CallLimits
from crm.domain.requests import add_working_days, answer_due, deadline

PLAIN = CallLimits()


def test_a_plain_month_counts_weekdays_only() -> None:
    # Thursday 26.11.2026: the opening day does not count; three weeks of weekdays
    assert answer_due(date(2026, 11, 26), PLAIN) == date(2026, 12, 17)


def test_new_year_holidays_are_skipped() -> None:
    # Monday 28.12.2026: 29–31.12 are days 1–3, 1–8.01 holidays, 9–10.01 a weekend, 11.01 is day 4
    assert answer_due(date(2026, 12, 28), PLAIN) == date(2027, 1, 26)


def test_a_transferred_holiday_from_the_calendar_moves_the_deadline() -> None:
    limits = CallLimits(extra_holidays=frozenset({date(2026, 12, 31)}))
    assert answer_due(date(2026, 12, 28), limits) == date(2027, 1, 27)


def test_may_holidays_with_their_transfers() -> None:
    # Wednesday 28.04.2027: 1 and 9 May fall on a weekend; by law alone the Mondays after are working
    assert answer_due(date(2027, 4, 28), PLAIN) == date(2027, 5, 19)
    transfers = CallLimits(extra_holidays=frozenset({date(2027, 5, 3), date(2027, 5, 10)}))
    assert answer_due(date(2027, 4, 28), transfers) == date(2027, 5, 21)


def test_a_saturday_made_a_working_day_counts() -> None:
    friday = date(2026, 11, 27)
    assert answer_due(friday, PLAIN) == date(2026, 12, 18)
    saturday_works = CallLimits(extra_workdays=frozenset({date(2026, 11, 28)}))
    assert answer_due(friday, saturday_works) == date(2026, 12, 17)


@pytest.mark.parametrize(
    ('working_day', 'left', 'warning', 'overdue', 'label'),
    [
        (0, 15, False, False, 'осталось 15 раб. дн.'),
        (9, 6, False, False, 'осталось 6 раб. дн.'),
        (10, 5, True, False, 'осталось 5 раб. дн.'),  # the warning starts on the 10th working day
        (15, 0, True, False, 'последний день'),
        (16, -1, True, True, 'просрочено на 1 раб. дн.'),
        (18, -3, True, True, 'просрочено на 3 раб. дн.'),
    ],
)
def test_days_left_warning_and_overdue(
    working_day: int, left: int, warning: bool, overdue: bool, label: str
) -> None:
    opened = date(2026, 12, 28)  # across the New Year holidays
    today = add_working_days(opened, working_day, PLAIN) if working_day else opened
    state = deadline(opened, today, PLAIN)
    assert state.due_on == date(2027, 1, 26)
    assert (state.working_days_left, state.warning, state.overdue, state.label) == (
        left,
        warning,
        overdue,
        label,
    )


def test_a_day_off_counts_as_the_working_day_before_it() -> None:
    opened = date(2026, 12, 28)
    holiday = date(2027, 1, 5)  # inside the New Year holidays: three working days (29–31.12) are gone
    state = deadline(opened, holiday, PLAIN)
    assert (state.working_days_left, state.warning, state.overdue) == (12, False, False)
    assert deadline(opened, state.due_on + timedelta(days=1), PLAIN).overdue
