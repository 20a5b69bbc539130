"""Date and date-time fields in the Russian way: typed as ДД.ММ.ГГГГ [ЧЧ:ММ] or picked from Quasar's
calendar (Russian through the page's language, Monday first, 24-hour clock).

The browser's own ``type=date`` fields follow the browser's locale (``mm/dd/yyyy`` and a 12-hour clock on
an English system), so they are not used anywhere. Times typed here are office (Moscow) time; the page
says so in the label.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from nicegui import ui

DAY_FORMAT = '%d.%m.%Y'
MOMENT_FORMAT = '%d.%m.%Y %H:%M'


class BadDate(ValueError):
    """What was typed is not a date (the message is Russian, safe to show)."""


def parse_day(text: str | None) -> date | None:
    """«ДД.ММ.ГГГГ» → a date; empty → None; anything else → BadDate."""
    text = (text or '').strip()
    if not text:
        return None
    try:
        return datetime.strptime(text, DAY_FORMAT).date()
    except ValueError:
        raise BadDate(f'Дата «{text}» не распознана: нужна ДД.ММ.ГГГГ') from None


def parse_moment(text: str | None) -> datetime | None:
    """«ДД.ММ.ГГГГ ЧЧ:ММ» → a naive wall-clock moment; empty → None; anything else → BadDate."""
    text = (text or '').strip()
    if not text:
        return None
    try:
        return datetime.strptime(text, MOMENT_FORMAT)
    except ValueError:
        raise BadDate(f'Время «{text}» не распознано: нужно ДД.ММ.ГГГГ ЧЧ:ММ') from None


def day_or_none(text: str | None) -> date | None:
    """For a filter: a date, or None while what is typed is not (yet) one."""
    try:
        return parse_day(text)
    except BadDate:
        return None


def day_text(day: date | None) -> str:
    return day.strftime(DAY_FORMAT) if day else ''


class DateInput(ui.input):
    """A date: typed through a mask or picked in the calendar behind the icon."""

    def __init__(
        self,
        label: str,
        *,
        value: date | None = None,
        on_change: Callable[..., Any] | None = None,
        min_day: date | None = None,
        max_day: date | None = None,
    ) -> None:
        super().__init__(label, value=day_text(value), placeholder='ДД.ММ.ГГГГ', on_change=on_change)
        self.props('mask="##.##.####" stack-label')
        with self.add_slot('append'):
            icon = ui.icon('event').classes('cursor-pointer')
            with ui.menu().props('no-parent-event') as menu:
                picker = ui.date(mask='DD.MM.YYYY').props('minimal first-day-of-week=1')
                picker.bind_value(self)
                picker.on_value_change(menu.close)
            icon.on('click', menu.open)
        self.picker = picker
        self._limits: tuple[date | None, date | None] = (None, None)
        self.limit(min_day=min_day, max_day=max_day)

    def limit(self, *, min_day: date | None = None, max_day: date | None = None) -> None:
        """The days the calendar offers (typing is checked by the service)."""
        if (min_day, max_day) == self._limits:
            return
        self._limits = (min_day, max_day)
        if min_day or max_day:
            low = (min_day or date(1900, 1, 1)).strftime('%Y/%m/%d')
            high = (max_day or date(2100, 12, 31)).strftime('%Y/%m/%d')
            self.picker.props(f''':options="d => d >= '{low}' && d <= '{high}'"''')
        else:
            self.picker.props(remove=':options')

    @property
    def day(self) -> date | None:
        """The date typed or picked; BadDate if what was typed is not one."""
        return parse_day(self.value)

    @property
    def day_or_none(self) -> date | None:
        """For a filter: the date, or None while what is typed is not (yet) one."""
        return day_or_none(self.value)


class MomentInput(ui.input):
    """A date and a time (24-hour): typed through a mask or picked in a calendar and a clock."""

    def __init__(self, label: str, *, on_change: Callable[..., Any] | None = None) -> None:
        super().__init__(label, placeholder='ДД.ММ.ГГГГ ЧЧ:ММ', on_change=on_change)
        self.props('mask="##.##.#### ##:##" stack-label')
        with self.add_slot('append'):
            day_icon = ui.icon('event').classes('cursor-pointer')
            with ui.menu().props('no-parent-event') as day_menu:
                ui.date(mask='DD.MM.YYYY HH:mm').props('minimal first-day-of-week=1').bind_value(self)
            day_icon.on('click', day_menu.open)
            time_icon = ui.icon('schedule').classes('cursor-pointer')
            with ui.menu().props('no-parent-event') as time_menu:
                ui.time(mask='DD.MM.YYYY HH:mm').props('format24h').bind_value(self)
            time_icon.on('click', time_menu.open)

    @property
    def moment(self) -> datetime | None:
        """The wall-clock moment typed or picked (naive); BadDate if what was typed is not one."""
        return parse_moment(self.value)
