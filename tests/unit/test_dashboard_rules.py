"""«Мониторинг»'s pure rules: thresholds and colour levels, wrap-up episodes, operators by state per hour."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from crm.domain.dashboard import DEFAULT_THRESHOLDS, Change, level, parse_thresholds, states_by_hour, wrap_ups
from crm.domain.operator_states import OperatorState

S = OperatorState


def test_thresholds_default_to_talk_10_60_300_and_can_be_set_per_state() -> None:
    assert parse_thresholds('')[S.TALKING] == (10, 60, 300)
    assert parse_thresholds('wrap_up:5/6/7')[S.WRAP_UP] == (5, 6, 7)
    assert parse_thresholds('wrap_up:5/6/7')[S.TALKING] == DEFAULT_THRESHOLDS[S.TALKING]
    for bad in ('talking:1/2', 'nap:1/2/3', 'talking:60/10/300'):
        with pytest.raises(ValueError, match='CRM_DASHBOARD_THRESHOLDS'):
            parse_thresholds(bad)


@pytest.mark.parametrize(('seconds', 'expected'), [(0, 0), (10, 0), (11, 1), (61, 2), (300, 2), (301, 3)])
def test_level_counts_the_thresholds_passed(seconds: int, expected: int) -> None:
    assert level(S.TALKING, seconds, DEFAULT_THRESHOLDS) == expected
    assert level(S.OFFLINE, 10_000, DEFAULT_THRESHOLDS) == 0


def moment(h: int, m: int = 0) -> datetime:
    return datetime(2031, 3, 14, h, m, tzinfo=UTC)


def test_wrap_ups_are_measured_from_entering_to_leaving() -> None:
    changes = [
        Change(1, moment(7), 'talking', 'wrap_up'),
        Change(1, moment(7, 2), 'wrap_up', 'ready'),
        Change(2, moment(7), 'wrap_up', 'ready'),  # began before the day: not measured
        Change(2, moment(8), 'talking', 'wrap_up'),  # still in it
    ]
    assert wrap_ups(changes) == {1: [120.0]}


def test_operators_by_state_at_the_start_of_each_hour_so_far() -> None:
    changes = [Change(1, moment(7), 'offline', 'ready'), Change(1, moment(8), 'ready', 'break')]
    series = states_by_hour(changes, {1: S.BREAK, 2: S.READY}, date(2031, 3, 14), moment(9))
    # hours in Moscow: 07:00 UTC is 10:00; operator 2 changed nothing today: Готов all day so far
    assert series[S.OFFLINE][:11] == (1,) * 10 + (0,)
    assert series[S.READY][9:14] == (1, 2, 1, 1, 0)
    assert series[S.BREAK][9:14] == (0, 0, 1, 1, 0)
