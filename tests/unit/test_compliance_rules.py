"""230-FZ rules for calls and messages: quiet hours, day / week / month limits, legal flags, time zones."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from crm.domain.contact_rules import (
    LEGAL_FLAG_LABELS,
    QUIET_HOURS,
    CallLimits,
    LegalFlag,
    Verdict,
    allowed_hours,
    check_outgoing_call,
    check_outgoing_message,
    is_day_off,
)

MOSCOW = 'Europe/Moscow'  # UTC+3
KALININGRAD = 'Europe/Kaliningrad'  # UTC+2
VLADIVOSTOK = 'Asia/Vladivostok'  # UTC+10
KAMCHATKA = 'Asia/Kamchatka'  # UTC+12
LEGAL = CallLimits()
# The 2025 production calendar moved the day off from Saturday 1 November to Monday 3 November.
TRANSFER_2025 = CallLimits(
    extra_holidays=frozenset({date(2025, 11, 3)}), extra_workdays=frozenset({date(2025, 11, 1)})
)


def at(zone: str, *parts: int) -> datetime:
    """An aware UTC moment given as the borrower's local wall-clock time."""
    return datetime(*parts, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def check(
    now: datetime,
    zone: str = MOSCOW,
    calls: Iterable[datetime] = (),
    *,
    overdue: bool = True,
    flags: Iterable[LegalFlag] = (),
    limits: CallLimits = LEGAL,
) -> Verdict:
    return check_outgoing_call(
        now=now, timezone=zone, overdue=overdue, flags=flags, reached_calls=calls, limits=limits
    )


# --- days off and windows ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ('day', 'off'),
    [
        (date(2025, 11, 26), False),  # Wednesday
        (date(2025, 11, 28), False),  # Friday
        (date(2025, 11, 29), True),  # Saturday
        (date(2025, 11, 30), True),  # Sunday
        (date(2025, 11, 4), True),  # Unity Day, a Tuesday
        (date(2025, 1, 2), True),  # New Year holidays, a Thursday
        (date(2025, 1, 7), True),  # Christmas
        (date(2025, 1, 8), True),
        (date(2025, 1, 9), False),  # the first working day of 2025
        (date(2025, 2, 23), True),
        (date(2025, 3, 8), True),
        (date(2025, 5, 1), True),
        (date(2025, 5, 9), True),
        (date(2025, 6, 12), True),
        (date(2025, 12, 31), False),  # not a holiday unless the production calendar says so
    ],
)
def test_days_off_are_weekends_and_public_holidays(day: date, off: bool) -> None:
    assert is_day_off(day, LEGAL) is off


def test_production_calendar_transfers() -> None:
    assert is_day_off(date(2025, 11, 1), LEGAL) and not is_day_off(date(2025, 11, 3), LEGAL)
    assert not is_day_off(date(2025, 11, 1), TRANSFER_2025)  # a working Saturday
    assert is_day_off(date(2025, 11, 3), TRANSFER_2025)  # a Monday off
    assert allowed_hours(date(2025, 11, 1), TRANSFER_2025) == (time(8), time(22))
    assert allowed_hours(date(2025, 11, 3), TRANSFER_2025) == (time(9), time(20))


def test_an_extra_workday_wins_over_a_holiday() -> None:
    limits = CallLimits(
        extra_holidays=frozenset({date(2025, 1, 2)}), extra_workdays=frozenset({date(2025, 1, 2)})
    )
    assert not is_day_off(date(2025, 1, 2), limits)


@pytest.mark.parametrize(
    ('day', 'window'),
    [
        (date(2025, 11, 26), (time(8), time(22))),  # Wednesday
        (date(2025, 11, 29), (time(9), time(20))),  # Saturday
        (date(2025, 11, 4), (time(9), time(20))),  # Unity Day
        (date(2025, 1, 2), (time(9), time(20))),  # New Year holidays
    ],
)
def test_allowed_hours(day: date, window: tuple[time, time]) -> None:
    assert allowed_hours(day, LEGAL) == window


# --- quiet hours ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ('day', 'clock', 'allowed'),
    [
        # a working Wednesday: 08:00–22:00
        (date(2025, 11, 26), (7, 59), False),
        (date(2025, 11, 26), (8, 0), True),
        (date(2025, 11, 26), (21, 59), True),
        (date(2025, 11, 26), (21, 59, 59), True),
        (date(2025, 11, 26), (22, 0), False),
        # Saturday, Unity Day and 2 January: 09:00–20:00
        (date(2025, 11, 29), (8, 59), False),
        (date(2025, 11, 29), (9, 0), True),
        (date(2025, 11, 29), (19, 59), True),
        (date(2025, 11, 29), (20, 0), False),
        (date(2025, 11, 4), (8, 30), False),
        (date(2025, 11, 4), (9, 0), True),
        (date(2025, 11, 4), (20, 0), False),
        (date(2025, 11, 4), (21, 0), False),  # fine on a working day, not on a holiday
        (date(2025, 1, 2), (8, 59), False),
        (date(2025, 1, 2), (9, 0), True),
        (date(2025, 1, 2), (19, 59), True),
        (date(2025, 1, 2), (20, 0), False),
    ],
)
def test_quiet_hours_boundaries(day: date, clock: tuple[int, ...], allowed: bool) -> None:
    verdict = check(at(MOSCOW, day.year, day.month, day.day, *clock))
    assert verdict.allowed is allowed
    if not allowed:
        assert verdict.reason is not None and verdict.reason.startswith('Тихие часы 230-ФЗ')


def test_quiet_hours_reason_gives_local_time_and_window() -> None:
    verdict = check(at(MOSCOW, 2025, 11, 26, 22, 5))
    assert verdict == Verdict(
        allowed=False,
        reason='Тихие часы 230-ФЗ: у заёмщика 22:05 (рабочий день), звонить можно с 08:00 до 22:00 '
        'по местному времени',
        next_allowed_at=at(MOSCOW, 2025, 11, 27, 8, 0),
        rule='quiet_hours',
    )
    saturday = check(at(MOSCOW, 2025, 11, 29, 8, 0))
    assert saturday.reason is not None and '08:00 (выходной день)' in saturday.reason
    assert 'с 09:00 до 20:00' in saturday.reason


def test_the_same_moment_depends_on_the_borrowers_time_zone() -> None:
    morning = datetime(2025, 11, 26, 5, 30, tzinfo=UTC)  # 08:30 Moscow, 07:30 Kaliningrad
    assert check(morning, MOSCOW).allowed
    kaliningrad = check(morning, KALININGRAD)
    assert not kaliningrad.allowed and kaliningrad.reason is not None and '07:30' in kaliningrad.reason
    assert kaliningrad.next_allowed_at == datetime(2025, 11, 26, 6, 0, tzinfo=UTC)

    afternoon = datetime(2025, 11, 26, 12, 30, tzinfo=UTC)  # 15:30 Moscow, 22:30 Vladivostok
    assert check(afternoon, MOSCOW).allowed
    vladivostok = check(afternoon, VLADIVOSTOK)
    assert not vladivostok.allowed and vladivostok.reason is not None and '22:30' in vladivostok.reason
    assert vladivostok.next_allowed_at == at(VLADIVOSTOK, 2025, 11, 27, 8, 0)  # 26.11 22:00 UTC


def test_the_day_off_is_the_borrowers_local_day() -> None:
    # Friday 23:30 UTC is already Saturday 08:30 in Vladivostok: a day off, so not before 09:00.
    verdict = check(datetime(2025, 11, 28, 22, 30, tzinfo=UTC), VLADIVOSTOK)
    assert not verdict.allowed
    assert verdict.next_allowed_at == at(VLADIVOSTOK, 2025, 11, 29, 9, 0)


@pytest.mark.parametrize(
    ('now', 'expected'),
    [
        ((2025, 11, 26, 6, 0), (2025, 11, 26, 8, 0)),  # early morning: today's window
        ((2025, 11, 26, 22, 0), (2025, 11, 27, 8, 0)),  # evening: tomorrow, a working day
        ((2025, 11, 28, 22, 30), (2025, 11, 29, 9, 0)),  # Friday evening: Saturday from 09:00
        ((2025, 11, 29, 8, 30), (2025, 11, 29, 9, 0)),  # Saturday morning
        ((2025, 11, 29, 20, 0), (2025, 11, 30, 9, 0)),  # Saturday evening: Sunday
        ((2025, 11, 30, 21, 0), (2025, 12, 1, 8, 0)),  # Sunday evening: Monday from 08:00
        ((2025, 11, 3, 22, 15), (2025, 11, 4, 9, 0)),  # the eve of Unity Day
        ((2025, 12, 31, 23, 0), (2026, 1, 1, 9, 0)),  # New Year's Eve
    ],
)
def test_quiet_hours_next_allowed_at_is_the_next_window_start(
    now: tuple[int, ...], expected: tuple[int, ...]
) -> None:
    verdict = check(at(MOSCOW, *now))
    assert not verdict.allowed
    assert verdict.next_allowed_at == at(MOSCOW, *expected)
    assert verdict.next_allowed_at.tzinfo is UTC


def test_quiet_hours_follow_the_transfers() -> None:
    # With the 2025 transfer Saturday 1 November is a working day and Monday 3 November a day off.
    assert check(at(MOSCOW, 2025, 11, 1, 8, 30), limits=TRANSFER_2025).allowed
    assert not check(at(MOSCOW, 2025, 11, 1, 8, 30)).allowed
    monday = check(at(MOSCOW, 2025, 11, 3, 8, 30), limits=TRANSFER_2025)
    assert not monday.allowed and monday.next_allowed_at == at(MOSCOW, 2025, 11, 3, 9, 0)
    sunday = check(at(MOSCOW, 2025, 11, 2, 20, 30), limits=TRANSFER_2025)
    assert sunday.next_allowed_at == at(MOSCOW, 2025, 11, 3, 9, 0)  # the Monday off starts at 09:00
    friday = check(at(MOSCOW, 2025, 10, 31, 22, 0), limits=TRANSFER_2025)
    assert friday.next_allowed_at == at(MOSCOW, 2025, 11, 1, 8, 0)  # the working Saturday at 08:00


def test_custom_hours() -> None:
    limits = CallLimits(weekday_start=time(9), weekday_end=time(21))
    assert not check(at(MOSCOW, 2025, 11, 26, 8, 30), limits=limits).allowed
    assert not check(at(MOSCOW, 2025, 11, 26, 21, 0), limits=limits).allowed
    assert check(at(MOSCOW, 2025, 11, 26, 20, 59), limits=limits).allowed


# --- frequency limits -------------------------------------------------------------------------------------


def test_no_calls_yet_is_allowed() -> None:
    assert check(at(MOSCOW, 2025, 11, 26, 12, 0)) == Verdict(allowed=True)


def test_daily_limit_reason_and_next_day() -> None:
    verdict = check(at(MOSCOW, 2025, 11, 26, 12, 0), calls=[at(MOSCOW, 2025, 11, 26, 10, 15)])
    assert verdict == Verdict(
        allowed=False,
        reason='Лимит 230-ФЗ: не более 1 звонка в сутки (уже был 26.11 в 10:15 по местному времени)',
        next_allowed_at=at(MOSCOW, 2025, 11, 27, 8, 0),
        rule='limit_day',
    )


def test_daily_limit_on_friday_points_to_saturday_nine() -> None:
    verdict = check(at(MOSCOW, 2025, 11, 28, 15, 0), calls=[at(MOSCOW, 2025, 11, 28, 10, 0)])
    assert not verdict.allowed
    assert verdict.next_allowed_at == at(MOSCOW, 2025, 11, 29, 9, 0)


def test_daily_limit_before_a_holiday_points_to_the_holiday_window() -> None:
    verdict = check(at(MOSCOW, 2025, 11, 3, 15, 0), calls=[at(MOSCOW, 2025, 11, 3, 10, 0)])
    assert verdict.next_allowed_at == at(MOSCOW, 2025, 11, 4, 9, 0)


def test_the_calendar_day_is_local_not_utc() -> None:
    # 08:30 on 26.11 in Kamchatka is 20:30 on 25.11 in UTC: the same local day as 13:00 on 26.11.
    call = at(KAMCHATKA, 2025, 11, 26, 8, 30)
    now = at(KAMCHATKA, 2025, 11, 26, 13, 0)
    assert call.date() != now.date()
    verdict = check(now, KAMCHATKA, [call])
    assert not verdict.allowed
    assert (
        verdict.reason is not None and 'в сутки (уже был 26.11 в 08:30 по местному времени)' in verdict.reason
    )
    assert verdict.next_allowed_at == at(KAMCHATKA, 2025, 11, 27, 8, 0)

    # 21:30 on 25.11 in Kamchatka and 09:00 on 26.11 are both 25.11 in UTC, but different local days.
    yesterday = at(KAMCHATKA, 2025, 11, 25, 21, 30)
    morning = at(KAMCHATKA, 2025, 11, 26, 9, 0)
    assert yesterday.date() == morning.date()
    assert check(morning, KAMCHATKA, [yesterday]).allowed


def test_the_calendar_day_west_of_utc() -> None:
    # 21:30 on 25.11 in New York is 02:30 on 26.11 in UTC, the same UTC day as 10:00 on 26.11.
    call = at('America/New_York', 2025, 11, 25, 21, 30)
    now = at('America/New_York', 2025, 11, 26, 10, 0)
    assert call.date() == now.date()
    assert check(now, 'America/New_York', [call]).allowed
    assert not check(now, MOSCOW, [call]).allowed  # for a Moscow borrower both are on 26.11


def test_weekly_limit_waits_for_monday() -> None:
    calls = [at(MOSCOW, 2025, 11, 24, 10, 0), at(MOSCOW, 2025, 11, 26, 10, 0)]  # Monday and Wednesday
    friday = check(at(MOSCOW, 2025, 11, 28, 12, 0), calls=calls)
    assert friday == Verdict(
        allowed=False,
        reason='Лимит 230-ФЗ: не более 2 звонков в неделю '
        '(уже 2, последний 26.11 в 10:00 по местному времени)',
        next_allowed_at=at(MOSCOW, 2025, 12, 1, 8, 0),
        rule='limit_week',
    )
    sunday = check(at(MOSCOW, 2025, 11, 30, 19, 59), calls=calls)
    assert not sunday.allowed and sunday.next_allowed_at == at(MOSCOW, 2025, 12, 1, 8, 0)
    assert check(at(MOSCOW, 2025, 12, 1, 8, 0), calls=calls).allowed


def test_week_boundary_sunday_to_monday() -> None:
    weekend = [at(MOSCOW, 2025, 11, 29, 10, 0), at(MOSCOW, 2025, 11, 30, 10, 0)]  # Saturday and Sunday
    assert not check(at(MOSCOW, 2025, 11, 30, 19, 0), calls=weekend).allowed
    assert check(at(MOSCOW, 2025, 12, 1, 8, 0), calls=weekend).allowed


def test_the_week_is_local_not_utc() -> None:
    # 09:00 on Monday 1.12 in Kamchatka is still Sunday 30.11 in UTC; it counts in the new local week.
    monday = at(KAMCHATKA, 2025, 12, 1, 9, 0)
    assert monday.weekday() == 6
    calls = [at(KAMCHATKA, 2025, 11, 28, 10, 0), monday, at(KAMCHATKA, 2025, 12, 2, 9, 0)]
    verdict = check(at(KAMCHATKA, 2025, 12, 3, 10, 0), KAMCHATKA, calls)
    assert not verdict.allowed
    assert verdict.reason is not None and 'в неделю' in verdict.reason
    assert verdict.next_allowed_at == at(KAMCHATKA, 2025, 12, 8, 8, 0)


def test_daily_and_weekly_limits_together_wait_for_next_week() -> None:
    # Monday and Tuesday called: on Tuesday the daily limit alone would point to Wednesday.
    calls = [at(MOSCOW, 2025, 11, 24, 10, 0), at(MOSCOW, 2025, 11, 25, 10, 0)]
    verdict = check(at(MOSCOW, 2025, 11, 25, 12, 0), calls=calls)
    assert not verdict.allowed
    assert verdict.reason is not None and 'в неделю' in verdict.reason  # the widest limit is named
    assert verdict.next_allowed_at == at(MOSCOW, 2025, 12, 1, 8, 0)


def test_daily_limit_then_the_weekly_one_from_a_later_call() -> None:
    # Called on Sunday 30.11 (the previous week) and Monday 1.12: on Monday the daily limit points to
    # Tuesday, and the new week has one call, so there is room.
    calls = [at(MOSCOW, 2025, 11, 30, 10, 0), at(MOSCOW, 2025, 12, 1, 10, 0)]
    verdict = check(at(MOSCOW, 2025, 12, 1, 12, 0), calls=calls)
    assert verdict.next_allowed_at == at(MOSCOW, 2025, 12, 2, 8, 0)
    # A later call already recorded for Wednesday fills the week: Tuesday is no longer possible.
    verdict = check(at(MOSCOW, 2025, 12, 1, 12, 0), calls=[*calls, at(MOSCOW, 2025, 12, 3, 10, 0)])
    assert verdict.next_allowed_at == at(MOSCOW, 2025, 12, 8, 8, 0)


SEPTEMBER_2025 = [at(MOSCOW, 2025, 9, day, 10, 0) for day in (1, 3, 8, 10, 15, 17, 22, 24)]  # 2 a week


def test_monthly_limit_waits_for_the_first_of_next_month() -> None:
    verdict = check(at(MOSCOW, 2025, 9, 29, 12, 0), calls=SEPTEMBER_2025)  # Monday: new week, no call today
    assert verdict == Verdict(
        allowed=False,
        reason='Лимит 230-ФЗ: не более 8 звонков в месяц '
        '(уже 8, последний 24.09 в 10:00 по местному времени)',
        next_allowed_at=at(MOSCOW, 2025, 10, 1, 8, 0),  # Wednesday 1 October
        rule='limit_month',
    )
    assert check(at(MOSCOW, 2025, 10, 1, 8, 0), calls=SEPTEMBER_2025).allowed


def test_monthly_limit_with_the_week_still_full_across_the_month_boundary() -> None:
    calls = [*SEPTEMBER_2025[2:], at(MOSCOW, 2025, 9, 29, 10, 0), at(MOSCOW, 2025, 9, 30, 10, 0)]
    verdict = check(at(MOSCOW, 2025, 9, 30, 15, 0), calls=calls)
    assert not verdict.allowed
    assert verdict.reason is not None and 'в месяц' in verdict.reason
    # 1 October starts a new month, but the week 29.09–5.10 already has two calls.
    assert verdict.next_allowed_at == at(MOSCOW, 2025, 10, 6, 8, 0)


def test_the_month_is_local_not_utc() -> None:
    limits = CallLimits(per_day=5, per_week=5, per_month=1)
    call = at(KAMCHATKA, 2025, 11, 1, 9, 30)  # still 31 October in UTC
    assert call.month == 10
    verdict = check(at(KAMCHATKA, 2025, 11, 3, 10, 0), KAMCHATKA, [call], limits=limits)
    assert not verdict.allowed
    assert verdict.reason == (
        'Лимит 230-ФЗ: не более 1 звонка в месяц (уже был 01.11 в 09:30 по местному времени)'
    )
    assert verdict.next_allowed_at == at(KAMCHATKA, 2025, 12, 1, 8, 0)
    assert check(at(KAMCHATKA, 2025, 10, 31, 12, 0), KAMCHATKA, [call], limits=limits).allowed


def test_limits_are_configurable() -> None:
    limits = CallLimits(per_day=2, per_week=3)
    first = at(MOSCOW, 2025, 11, 26, 10, 0)
    assert check(at(MOSCOW, 2025, 11, 26, 12, 0), calls=[first], limits=limits).allowed
    verdict = check(
        at(MOSCOW, 2025, 11, 26, 15, 0), calls=[first, at(MOSCOW, 2025, 11, 26, 12, 0)], limits=limits
    )
    assert not verdict.allowed
    assert verdict.reason == (
        'Лимит 230-ФЗ: не более 2 звонков в сутки (уже 2, последний 26.11 в 12:00 по местному времени)'
    )
    assert verdict.next_allowed_at == at(MOSCOW, 2025, 11, 27, 8, 0)


def test_a_zero_limit_never_allows() -> None:
    verdict = check(at(MOSCOW, 2025, 11, 26, 12, 0), limits=CallLimits(per_month=0))
    assert not verdict.allowed and verdict.next_allowed_at is None
    assert verdict.reason is not None and 'в месяц' in verdict.reason


def test_quiet_hours_come_first_but_next_allowed_at_respects_the_limits() -> None:
    calls = [at(MOSCOW, 2025, 11, 24, 10, 0), at(MOSCOW, 2025, 11, 26, 10, 0)]
    evening = check(at(MOSCOW, 2025, 11, 26, 23, 0), calls=calls)
    assert evening.reason is not None and evening.reason.startswith('Тихие часы')
    assert evening.next_allowed_at == at(MOSCOW, 2025, 12, 1, 8, 0)
    morning = check(at(MOSCOW, 2025, 11, 27, 6, 0), calls=calls)
    assert morning.reason is not None and morning.reason.startswith('Тихие часы')
    assert morning.next_allowed_at == at(MOSCOW, 2025, 12, 1, 8, 0)
    # Daily limit only: the evening of a call day points to the next morning, not to today.
    late = check(at(MOSCOW, 2025, 11, 28, 23, 0), calls=[at(MOSCOW, 2025, 11, 28, 10, 0)])
    assert late.next_allowed_at == at(MOSCOW, 2025, 11, 29, 9, 0)


def test_calls_may_be_any_iterable_in_any_order() -> None:
    calls = (c for c in [at(MOSCOW, 2025, 11, 26, 10, 0), at(MOSCOW, 2025, 11, 24, 9, 0)])
    verdict = check(at(MOSCOW, 2025, 11, 26, 12, 0), calls=calls)
    assert verdict.reason is not None and 'последний 26.11 в 10:00' in verdict.reason


# --- legal flags and debt ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ('flag', 'words'),
    [
        (LegalFlag.CONTACT_REFUSED, 'отказался от взаимодействия (230-ФЗ, ст. 8)'),
        (LegalFlag.REPRESENTATIVE_ONLY, 'только через представителя'),
        (LegalFlag.BANKRUPT, 'банкрот'),
        (LegalFlag.INCAPACITATED, 'недееспособен'),
    ],
)
@pytest.mark.parametrize('overdue', [True, False])
def test_a_legal_flag_blocks_any_call(flag: LegalFlag, words: str, overdue: bool) -> None:
    verdict = check(at(MOSCOW, 2025, 11, 26, 12, 0), overdue=overdue, flags=[flag])
    assert not verdict.allowed and verdict.next_allowed_at is None
    assert (
        verdict.reason is not None
        and verdict.reason.startswith('Звонки запрещены: ')
        and words in verdict.reason
    )


def test_contact_refused_reason() -> None:
    verdict = check(at(MOSCOW, 2025, 11, 26, 12, 0), flags={LegalFlag.CONTACT_REFUSED})
    assert verdict == Verdict(
        allowed=False,
        reason='Звонки запрещены: заёмщик отказался от взаимодействия (230-ФЗ, ст. 8)',
        rule='contact_refused',
    )


def test_several_flags_name_the_first_in_a_stable_order() -> None:
    verdict = check(
        at(MOSCOW, 2025, 11, 26, 23, 0), flags=[LegalFlag.INCAPACITATED, LegalFlag.CONTACT_REFUSED]
    )
    assert verdict.reason is not None and 'отказался' in verdict.reason


def test_flags_are_strings_with_russian_labels() -> None:
    assert LegalFlag('bankrupt') is LegalFlag.BANKRUPT
    assert set(LEGAL_FLAG_LABELS) == set(LegalFlag)
    assert all(label and label[0].isupper() for label in LEGAL_FLAG_LABELS.values())


def test_without_overdue_debt_the_limits_do_not_apply_but_the_quiet_hours_do() -> None:
    calls = [at(MOSCOW, 2025, 11, 26, 10, 0), at(MOSCOW, 2025, 11, 26, 11, 0), at(MOSCOW, 2025, 11, 24, 9, 0)]
    assert check(at(MOSCOW, 2025, 11, 26, 12, 0), calls=calls, overdue=False) == Verdict(allowed=True)
    night = check(at(MOSCOW, 2025, 11, 27, 2, 6), calls=calls, overdue=False)  # the newcomer's 02:06
    assert not night.allowed and night.rule == QUIET_HOURS and '02:06' in (night.reason or '')
    assert night.next_allowed_at == at(MOSCOW, 2025, 11, 27, 8, 0)  # the limits do not push it further
    saturday = check(at(MOSCOW, 2025, 11, 29, 7, 0), overdue=False)
    assert not saturday.allowed and saturday.next_allowed_at == at(MOSCOW, 2025, 11, 29, 9, 0)


def test_the_quiet_hours_for_calls_without_overdue_debt_can_be_switched_off() -> None:
    lenient = replace(LEGAL, quiet_hours_for_every_call=False)
    assert check(at(MOSCOW, 2025, 11, 27, 2, 6), overdue=False, limits=lenient) == Verdict(allowed=True)
    assert not check(at(MOSCOW, 2025, 11, 27, 2, 6), overdue=True, limits=lenient).allowed


def test_messages_without_overdue_debt_are_free_of_hours_and_limits() -> None:
    assert message(at(MOSCOW, 2025, 11, 27, 2, 6), overdue=False).allowed


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError):
        check(datetime(2025, 11, 26, 12, 0))
    with pytest.raises(ValueError):
        check(at(MOSCOW, 2025, 11, 26, 12, 0), calls=[datetime(2025, 11, 26, 9, 0)])


def test_now_in_another_offset_is_the_same_moment() -> None:
    now = at(MOSCOW, 2025, 11, 26, 21, 30).astimezone(ZoneInfo(VLADIVOSTOK))
    assert check(now, MOSCOW).allowed


# --- property: random histories against a day-by-day oracle ------------------------------------------------


def _oracle(
    now: datetime, zone: str, calls: list[datetime], limits: CallLimits
) -> tuple[bool, datetime | None]:
    """Allowed now, and the first allowed moment: walk day by day, counting the calls anew each time."""
    tz = ZoneInfo(zone)
    local_calls = [c.astimezone(tz) for c in calls]
    local_now = now.astimezone(tz)

    def free(moment: datetime) -> bool:
        start, end = allowed_hours(moment.date(), limits)
        if not start <= moment.time() < end:
            return False
        day = moment.date()
        week = day.isocalendar()[:2]
        return (
            sum(c.date() == day for c in local_calls) < limits.per_day
            and sum(c.date().isocalendar()[:2] == week for c in local_calls) < limits.per_week
            and sum((c.year, c.month) == (day.year, day.month) for c in local_calls) < limits.per_month
        )

    if free(local_now):
        return True, None
    for offset in range(0, 120):
        day = local_now.date() + timedelta(days=offset)
        start, _ = allowed_hours(day, limits)
        candidate = max(local_now, datetime.combine(day, start, tzinfo=tz))
        if free(candidate):
            return False, candidate.astimezone(UTC)
    return False, None


@pytest.mark.parametrize('seed', range(400))
def test_random_histories_match_the_oracle(seed: int) -> None:
    rng = random.Random(seed)
    zone = rng.choice([MOSCOW, KALININGRAD, VLADIVOSTOK, KAMCHATKA, 'Asia/Yekaterinburg'])
    limits = rng.choice([LEGAL, LEGAL, TRANSFER_2025, CallLimits(per_day=2, per_week=3, per_month=5)])
    base = datetime(2025, 10, 20, tzinfo=UTC)
    now = base + timedelta(minutes=rng.randrange(60 * 24 * 20))
    span = rng.choice([2, 9, 40])  # days of history: dense histories hit the limits more often
    calls = [now - timedelta(minutes=rng.randrange(60 * 24 * span)) for _ in range(rng.randrange(12))]
    verdict = check(now, zone, calls, limits=limits)

    allowed, first = _oracle(now, zone, calls, limits)
    assert verdict.allowed is allowed
    assert verdict.next_allowed_at == first
    if verdict.allowed:
        assert verdict.reason is None
    else:
        assert verdict.reason and verdict.next_allowed_at is not None and verdict.next_allowed_at > now
        again = check(verdict.next_allowed_at, zone, calls, limits=limits)
        assert again.allowed, again.reason


# --- messages: the same rules, their own limits and words --------------------------------------------------


def message(now: datetime, sent: Iterable[datetime] = (), **kwargs: object) -> Verdict:
    return check_outgoing_message(
        now=now,
        timezone=str(kwargs.get('zone', MOSCOW)),
        overdue=bool(kwargs.get('overdue', True)),
        flags=kwargs.get('flags', ()),  # type: ignore[arg-type]
        sent_messages=sent,
    )


def test_messages_allow_two_a_day_then_name_the_last_one() -> None:
    morning = [at(MOSCOW, 2025, 11, 26, 9, 0)]
    assert message(at(MOSCOW, 2025, 11, 26, 12, 0), morning).allowed
    two = [*morning, at(MOSCOW, 2025, 11, 26, 10, 15)]
    verdict = message(at(MOSCOW, 2025, 11, 26, 12, 0), two)
    assert verdict == Verdict(
        allowed=False,
        reason='Лимит 230-ФЗ: не более 2 сообщений в сутки '
        '(уже 2, последнее 26.11 в 10:15 по местному времени)',
        next_allowed_at=at(MOSCOW, 2025, 11, 27, 8, 0),
        rule='limit_day',
    )


def test_messages_four_a_week_and_sixteen_a_month() -> None:
    week = [at(MOSCOW, 2025, 11, day, 10, 0) for day in (24, 24, 25, 25)]  # Monday and Tuesday
    verdict = message(at(MOSCOW, 2025, 11, 26, 12, 0), week)
    assert (verdict.rule, verdict.next_allowed_at) == ('limit_week', at(MOSCOW, 2025, 12, 1, 8, 0))
    assert 'не более 4 сообщений в неделю' in (verdict.reason or '')
    month = [at(MOSCOW, 2025, 9, day, 10, 0) for day in (1, 2, 8, 9, 15, 16, 22, 23) for _ in (0, 1)]
    verdict = message(at(MOSCOW, 2025, 9, 25, 12, 0), month)
    assert (verdict.rule, verdict.next_allowed_at) == ('limit_month', at(MOSCOW, 2025, 10, 1, 8, 0))
    assert 'не более 16 сообщений в месяц' in (verdict.reason or '')


def test_messages_keep_the_quiet_hours_of_the_borrowers_zone() -> None:
    verdict = message(at(VLADIVOSTOK, 2025, 11, 26, 22, 1), zone=VLADIVOSTOK)
    assert verdict.rule == 'quiet_hours'
    assert verdict.reason == (
        'Тихие часы 230-ФЗ: у заёмщика 22:01 (рабочий день), отправлять сообщения можно с 08:00 до 22:00 '
        'по местному времени'
    )
    assert verdict.next_allowed_at == at(VLADIVOSTOK, 2025, 11, 27, 8, 0)
    # the same moment is 14:01 in Kaliningrad: allowed there
    assert message(at(VLADIVOSTOK, 2025, 11, 26, 22, 1), zone=KALININGRAD).allowed


def test_a_legal_flag_forbids_messages_in_their_own_words() -> None:
    verdict = message(at(MOSCOW, 2025, 11, 26, 12, 0), flags=[LegalFlag.BANKRUPT])
    assert verdict.reason == 'Сообщения запрещены: заёмщик признан банкротом или в процедуре банкротства'
    assert (verdict.rule, verdict.next_allowed_at) == ('bankrupt', None)


def test_no_overdue_debt_no_message_limits() -> None:
    many = [at(MOSCOW, 2025, 11, 26, hour, 0) for hour in range(8, 12)]
    assert message(at(MOSCOW, 2025, 11, 26, 23, 0), many, overdue=False).allowed
