"""«Пороги» of «Мониторинг»: the colour thresholds an administrator sets per operator state — pure rules.

A state's three thresholds (seconds in the state) colour an operator's row yellow, orange and red once
passed (``crm.domain.dashboard.level``). A state with no saved row keeps its default: the setting
``CRM_DASHBOARD_THRESHOLDS`` over ``DEFAULT_THRESHOLDS``. ``check`` is the one validation: whole seconds,
0 ≤ first ≤ second ≤ third ≤ a day, for a state the dashboard colours; a refusal names its field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from crm.domain.dashboard import Thresholds
from crm.domain.errors import ServiceError
from crm.domain.operator_states import OperatorState

S = OperatorState
# the states the dashboard colours, in the order the dialog lists them (Не в сети is never coloured)
COLOURED_STATES: tuple[OperatorState, ...] = (S.RINGING, S.TALKING, S.ON_HOLD, S.WRAP_UP, S.READY, S.BREAK)
MAX_SECONDS = 24 * 60 * 60
FIELDS = ('warn', 'alert', 'critical')  # the three thresholds, as the page's inputs and the errors name them
FIELD_LABELS = {
    'warn': 'Порог 1 (жёлтый)',
    'alert': 'Порог 2 (оранжевый)',
    'critical': 'Порог 3 (красный)',
}
Limits = tuple[int, int, int]


class BadThreshold(ServiceError):
    """A refused threshold; ``field`` is 'state' or one of ``FIELDS`` (the page shows it by that input)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def coloured_state(state: str) -> OperatorState:
    try:
        found = OperatorState(state)
    except ValueError:
        raise BadThreshold('state', f'Состояние «{state}» не известно') from None
    if found not in COLOURED_STATES:
        raise BadThreshold('state', f'Состояние «{found.label}» на мониторинге не окрашивается')
    return found


def seconds(field: str, value: object) -> int:
    """One input as whole seconds, or a refusal naming the field."""
    label = FIELD_LABELS[field]
    if value is None or (isinstance(value, str) and not value.strip()):
        raise BadThreshold(field, f'{label}: укажите число секунд')
    if isinstance(value, bool):
        raise BadThreshold(field, f'{label}: нужно целое число секунд')
    if isinstance(value, str):
        try:
            value = float(value.strip().replace(',', '.'))
        except ValueError:
            raise BadThreshold(field, f'{label}: нужно целое число секунд') from None
    if not isinstance(value, int | float) or value != value or value != int(value):
        raise BadThreshold(field, f'{label}: нужно целое число секунд')
    whole = int(value)
    if not 0 <= whole <= MAX_SECONDS:
        raise BadThreshold(field, f'{label}: от 0 до {MAX_SECONDS:,} секунд (сутки)'.replace(',', ' '))
    return whole


def check(state: str, warn: object, alert: object, critical: object) -> tuple[OperatorState, Limits]:
    """The state and its three thresholds, or ``BadThreshold`` for the first field that is wrong."""
    found = coloured_state(state)
    a, b, c = seconds('warn', warn), seconds('alert', alert), seconds('critical', critical)
    if b < a:
        raise BadThreshold('alert', f'{FIELD_LABELS["alert"]}: не меньше порога 1 ({a} с)')
    if c < b:
        raise BadThreshold('critical', f'{FIELD_LABELS["critical"]}: не меньше порога 2 ({b} с)')
    return found, (a, b, c)


@dataclass(frozen=True)
class StateThresholds:
    """One state's line of the dialog: what colours it now, and what «По умолчанию» would give."""

    state: OperatorState
    limits: Limits
    default: Limits
    changed: bool  # an administrator's row, not the default


def effective(defaults: Thresholds, saved: Mapping[str, Limits]) -> dict[OperatorState, Limits]:
    """The thresholds the dashboard colours by: the saved rows over the defaults (unknown states ignored)."""
    result = dict(defaults)
    for state, limits in saved.items():
        if state in COLOURED_STATES:
            result[OperatorState(state)] = limits
    return result


def text(limits: Limits) -> str:
    """'10/60/300': how the audit log and the setting write three thresholds."""
    return '/'.join(str(v) for v in limits)
