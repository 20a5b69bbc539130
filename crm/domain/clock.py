"""Time as an input: every service asks a clock for "now" instead of the operating system.

A clock is any callable returning an aware UTC datetime. Production uses the system clock; tests use a
``SettableClock`` fixed at a chosen moment (so no test depends on the day or hour it runs), and a
training or demo installation may start its clock at a chosen moment (``CRM_CLOCK_START``) and let it
run on from there with ``RunningClock``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The operating system's time, in UTC."""
    return datetime.now(UTC)


def aware(moment: datetime) -> datetime:
    """A moment in UTC; a naive one is taken as UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass
class SettableClock:
    """Stands still at ``now`` until moved: ``clock.now += timedelta(hours=2)`` or ``clock.advance(...)``."""

    now: datetime

    def __post_init__(self) -> None:
        self.now = aware(self.now)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass
class RunningClock:
    """Starts at ``start`` and runs at the speed of real time from the moment it was made."""

    start: datetime
    _origin: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.start = aware(self.start)

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self._origin)
