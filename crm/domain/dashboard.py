"""The supervisor's dashboard («Мониторинг»): the pure rules — colour thresholds of time in a state, the
office day's hours, wrap-up episodes and operators by state over the day from the state history.

Thresholds are VICIdial-style: a state's time past the first, second or third threshold colours the row
more urgently. They come from ``CRM_DASHBOARD_THRESHOLDS``: ``state:a/b/c`` pairs, comma-separated
(e.g. ``talking:10/60/300,wrap_up:30/60/120``); states not named keep the defaults below.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from crm.domain.formatting import OFFICE_TZ
from crm.domain.operator_states import OperatorState

S = OperatorState
Thresholds = Mapping[OperatorState, tuple[int, int, int]]
DEFAULT_THRESHOLDS: dict[OperatorState, tuple[int, int, int]] = {
    S.TALKING: (10, 60, 300),
    S.ON_HOLD: (30, 60, 120),
    S.RINGING: (5, 10, 20),
    S.WRAP_UP: (30, 60, 120),
    S.BREAK: (600, 900, 1800),
    S.READY: (60, 300, 600),
}
LEVEL_CLASSES = ('', 'crm-level-1', 'crm-level-2', 'crm-level-3')  # the page's sheet colours them


def parse_thresholds(text: str | None) -> dict[OperatorState, tuple[int, int, int]]:
    """``talking:10/60/300,…`` over the defaults; a ValueError names what is wrong."""
    result = dict(DEFAULT_THRESHOLDS)
    for part in (text or '').split(','):
        if not part.strip():
            continue
        name, _, values = part.partition(':')
        try:
            state = OperatorState(name.strip())
            a, b, c = (int(v) for v in values.split('/'))
        except ValueError:
            raise ValueError(f'CRM_DASHBOARD_THRESHOLDS: «{part.strip()}» is not state:a/b/c') from None
        if not 0 <= a <= b <= c:
            raise ValueError(f'CRM_DASHBOARD_THRESHOLDS: {name.strip()} needs 0 <= a <= b <= c')
        result[state] = (a, b, c)
    return result


def level(state: OperatorState, seconds: float, thresholds: Thresholds) -> int:
    """0 (fine) … 3 (past the third threshold) for a state held ``seconds``."""
    limits = thresholds.get(state)
    if limits is None:
        return 0
    return sum(1 for limit in limits if seconds > limit)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The office day (Moscow) as a half-open UTC-comparable range."""
    start = datetime.combine(day, time(), OFFICE_TZ)
    return start, start + timedelta(days=1)


def office_hour(moment: datetime) -> int:
    return moment.astimezone(OFFICE_TZ).hour


def per_hour(moments: Iterable[datetime]) -> tuple[int, ...]:
    counts = [0] * 24
    for moment in moments:
        counts[office_hour(moment)] += 1
    return tuple(counts)


@dataclass(frozen=True)
class Change:
    """One row of the state history, as the dashboard reads it (ordered by user, then time)."""

    user_id: int
    at: datetime
    from_state: str | None
    to_state: str


def wrap_ups(changes: Sequence[Change]) -> dict[int, list[float]]:
    """Per operator: the seconds of each wrap-up that began and ended within ``changes``."""
    result: dict[int, list[float]] = {}
    began: dict[int, datetime] = {}
    for change in changes:
        if change.from_state == S.WRAP_UP and change.user_id in began:
            seconds = (change.at - began.pop(change.user_id)).total_seconds()
            result.setdefault(change.user_id, []).append(seconds)
        if change.to_state == S.WRAP_UP:
            began[change.user_id] = change.at
        else:
            began.pop(change.user_id, None)
    return result


def states_by_hour(
    changes: Sequence[Change], now_states: Mapping[int, OperatorState], day: date, now: datetime
) -> dict[OperatorState, tuple[int, ...]]:
    """Operators in each state at the start of every hour of the day that has begun (the chart's series;
    later hours are 0). An operator's state at the day's start is the first change's ``from_state``, or
    the state now if nothing changed today."""
    start, _ = day_bounds(day)
    by_user: dict[int, list[Change]] = {}
    for change in changes:
        by_user.setdefault(change.user_id, []).append(change)
    series = {state: [0] * 24 for state in OperatorState}
    hours = [start + timedelta(hours=h) for h in range(24)]
    for user_id, state_now in now_states.items():
        own = by_user.get(user_id, [])
        state = (
            OperatorState(own[0].from_state)
            if own and own[0].from_state
            else (S.OFFLINE if own else state_now)
        )
        i = 0
        for h, moment in enumerate(hours):
            if moment > now:
                break
            while i < len(own) and own[i].at <= moment:
                state = OperatorState(own[i].to_state)
                i += 1
            series[state][h] += 1
    return {state: tuple(counts) for state, counts in series.items()}


def average(values: Iterable[float]) -> int | None:
    items = list(values)
    return round(sum(items) / len(items)) if items else None
