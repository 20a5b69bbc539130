"""Dates typed the Russian way: ДД.ММ.ГГГГ and ДД.ММ.ГГГГ ЧЧ:ММ (24 hours), refused in Russian otherwise."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from crm.pages.components.dates import BadDate, day_or_none, day_text, parse_day, parse_moment


def test_days_and_moments_read_the_russian_way() -> None:
    assert parse_day('05.12.2026') == date(2026, 12, 5)
    assert parse_day(' 29.02.2028 ') == date(2028, 2, 29)
    assert parse_moment('27.11.2026 22:30') == datetime(2026, 11, 27, 22, 30)
    assert parse_day('') is None and parse_moment(None) is None
    assert day_text(date(2026, 1, 9)) == '09.01.2026' and day_text(None) == ''


@pytest.mark.parametrize('text', ['2026-12-05', '12/05/2026', '31.02.2026', '05.12', '05.12.2026 10:00'])
def test_other_forms_are_refused_in_russian(text: str) -> None:
    with pytest.raises(BadDate, match=r'ДД\.ММ\.ГГГГ'):
        parse_day(text)
    assert day_or_none(text) is None  # a filter waits until a date is typed whole


@pytest.mark.parametrize('text', ['27.11.2026 10:00 PM', '27.11.2026 25:00', '2026-11-27T10:00'])
def test_twelve_hour_and_iso_moments_are_refused(text: str) -> None:
    with pytest.raises(BadDate, match='ЧЧ:ММ'):
        parse_moment(text)
