"""Operator states: what every operator is doing now, the events that move them, and the one table of moves.

The operator sets Готов and Перерыв (with a reason); the call path moves the rest (a ring, the answer,
hold, the end, the result saved); time-outs end a forgotten wrap-up and mark a closed browser Не в сети;
a supervisor or an admin may force a break or a logout. ``apply`` is the whole rule: a state and an event
give the new status or a refusal in Russian — the services only store and announce what it decided.

Calls are real whatever the state says (the PBX rings the extension), so a ring is taken from any state
that is not already on a call; the operator's own commands are refused while a call needs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class OperatorState(StrEnum):
    OFFLINE = 'offline'
    READY = 'ready'
    RINGING = 'ringing'
    TALKING = 'talking'
    ON_HOLD = 'on_hold'
    WRAP_UP = 'wrap_up'
    BREAK = 'break'

    @property
    def label(self) -> str:
        return STATE_LABELS[self]

    @property
    def on_call(self) -> bool:
        return self in CALL_STATES


STATE_LABELS: dict[OperatorState, str] = {
    OperatorState.OFFLINE: 'Не в сети',
    OperatorState.READY: 'Готов',
    OperatorState.RINGING: 'Входящий',
    OperatorState.TALKING: 'Разговор',
    OperatorState.ON_HOLD: 'Удержание',
    OperatorState.WRAP_UP: 'Постобработка',
    OperatorState.BREAK: 'Перерыв',
}
# the header's chip and the dashboard's rows (Quasar colour names)
STATE_COLORS: dict[OperatorState, str] = {
    OperatorState.OFFLINE: 'grey-6',
    OperatorState.READY: 'positive',
    OperatorState.RINGING: 'amber-8',
    OperatorState.TALKING: 'blue-7',
    OperatorState.ON_HOLD: 'deep-purple-5',
    OperatorState.WRAP_UP: 'cyan-8',
    OperatorState.BREAK: 'orange-9',
}
CALL_STATES = frozenset({OperatorState.RINGING, OperatorState.TALKING, OperatorState.ON_HOLD})

# the reasons of a break: code -> label (a constant list; the code is what is stored)
BREAK_REASONS: dict[str, str] = {
    'lunch': 'обед',
    'training': 'обучение',
    'technical': 'технический',
    'meeting': 'совещание',
    'personal': 'личное',
}
FORCED = 'forced'  # the reason of a logout a supervisor forced: connecting again does not make them Готов
TIMED_OUT = 'timeout'  # the reason of Не в сети when no tab was seen for the time-out


class OperatorEvent(StrEnum):
    SET_READY = 'set_ready'  # the operator
    SET_BREAK = 'set_break'  # the operator, with a reason
    CONNECT = 'connect'  # a tab of an operator who is Не в сети was seen
    RING = 'ring'  # the call path
    DIAL = 'dial'
    ANSWER = 'answer'
    HOLD = 'hold'
    RESUME = 'resume'
    END = 'end'
    RESULT_SAVED = 'result_saved'
    WRAP_UP_TIMEOUT = 'wrap_up_timeout'  # the worker
    DISCONNECT_TIMEOUT = 'disconnect_timeout'
    FORCE_BREAK = 'force_break'  # a supervisor or an admin, with a reason
    FORCE_LOGOUT = 'force_logout'


S, E = OperatorState, OperatorEvent
_NOT_ON_CALL = (S.OFFLINE, S.READY, S.WRAP_UP, S.BREAK)
_AWAY = (S.READY, S.WRAP_UP, S.BREAK)  # what a closed browser turns into Не в сети
TRANSITIONS: dict[tuple[OperatorState, OperatorEvent], OperatorState] = {
    **{(s, E.SET_READY): S.READY for s in (S.OFFLINE, S.BREAK)},
    **{(s, E.SET_BREAK): S.BREAK for s in (S.OFFLINE, S.READY, S.BREAK)},
    (S.OFFLINE, E.CONNECT): S.READY,
    **{(s, E.RING): S.RINGING for s in _NOT_ON_CALL},
    **{(s, E.DIAL): S.TALKING for s in _NOT_ON_CALL},
    (S.RINGING, E.ANSWER): S.TALKING,
    (S.TALKING, E.ANSWER): S.TALKING,  # an outgoing call (already Разговор since the dial) was answered
    (S.TALKING, E.HOLD): S.ON_HOLD,
    (S.ON_HOLD, E.RESUME): S.TALKING,
    **{(s, E.END): S.WRAP_UP for s in CALL_STATES},
    (S.WRAP_UP, E.RESULT_SAVED): S.READY,  # back to the state before the call
    (S.WRAP_UP, E.WRAP_UP_TIMEOUT): S.READY,
    **{(s, E.DISCONNECT_TIMEOUT): S.OFFLINE for s in _AWAY},
    **{(s, E.FORCE_BREAK): S.BREAK for s in _AWAY},
    **{(s, E.FORCE_LOGOUT): S.OFFLINE for s in (S.READY, S.WRAP_UP, S.BREAK, *CALL_STATES)},
}
NEEDS_REASON = frozenset({E.SET_BREAK, E.FORCE_BREAK})
SAME_CALL = frozenset({E.ANSWER, E.HOLD, E.RESUME, E.END, E.RESULT_SAVED})  # about the call the status names


@dataclass(frozen=True)
class Status:
    """An operator's state now: since when, why (a break's reason, a logout's), and the call it is about."""

    state: OperatorState
    since: datetime
    reason: str | None = None
    call_id: str | None = None


@dataclass(frozen=True)
class Refusal:
    message: str  # Russian, safe to show


def apply(
    status: Status,
    event: OperatorEvent,
    at: datetime,
    *,
    reason: str | None = None,
    call_id: str | None = None,
) -> Status | Refusal:
    """The status after ``event`` at ``at``, or why it cannot happen. A move to the same state with the same
    reason keeps ``since`` (time in state goes on: an outgoing call answered, a second tab connecting)."""
    target = TRANSITIONS.get((status.state, event))
    if target is None:
        return Refusal(refusal(status.state, event))
    if event in NEEDS_REASON and reason not in BREAK_REASONS:
        return Refusal('Выберите причину перерыва из списка')
    if event in SAME_CALL and call_id is not None and status.call_id not in (None, call_id):
        return Refusal('Событие другого звонка: состояние оператора не меняется')
    new_reason = reason if target is S.BREAK or event is E.FORCE_LOGOUT else None
    if event is E.FORCE_LOGOUT:
        new_reason = FORCED
    elif event is E.DISCONNECT_TIMEOUT:
        new_reason = TIMED_OUT
    new_call = (call_id or status.call_id) if target.on_call or target is S.WRAP_UP else None
    if target is status.state and new_reason == status.reason:
        return Status(target, status.since, new_reason, new_call)
    return Status(target, at, new_reason, new_call)


def refusal(state: OperatorState, event: OperatorEvent) -> str:
    """Why ``event`` cannot happen in ``state``, in words the operator or the supervisor can act on."""
    if state is event_target(event):
        return f'Уже в статусе «{state.label}»'
    if event in (E.SET_READY, E.SET_BREAK) and state.on_call:
        return 'Идёт звонок: статус можно сменить после него'
    if event in (E.SET_READY, E.SET_BREAK) and state is S.WRAP_UP:
        return 'Сначала сохраните результат звонка'
    if event in (E.FORCE_BREAK, E.DISCONNECT_TIMEOUT) and state.on_call:
        return 'Оператор разговаривает: дождитесь конца звонка'
    if event in (E.FORCE_BREAK, E.FORCE_LOGOUT) and state is S.OFFLINE:
        return 'Оператор не в сети'
    return f'Недоступно в статусе «{state.label}»'


def event_target(event: OperatorEvent) -> OperatorState | None:
    """The state an event leads to wherever it is allowed (all of them lead to one)."""
    targets = {to for (_, e), to in TRANSITIONS.items() if e is event}
    return targets.pop() if len(targets) == 1 else None


def reason_label(state: OperatorState, reason: str | None) -> str:
    """«Перерыв: обед», «Не в сети», …: a state as the chip and the dashboard show it."""
    if state is S.BREAK and reason in BREAK_REASONS:
        return f'{state.label}: {BREAK_REASONS[reason]}'
    return state.label


def wrap_up_over(status: Status, now: datetime, timeout_s: float) -> bool:
    """Whether a wrap-up has lasted its time-out (then the worker ends it)."""
    return status.state is S.WRAP_UP and now - status.since >= timedelta(seconds=timeout_s)


def gone(status: Status, last_seen: datetime | None, now: datetime, after_s: float) -> bool:
    """Whether an operator who is not on a call has had no tab seen for ``after_s`` seconds."""
    if status.state not in _AWAY:
        return False
    return last_seen is None or now - last_seen >= timedelta(seconds=after_s)
