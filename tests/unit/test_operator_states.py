"""Operator states: every (state, event) pair against a table written out by hand, and the time-outs."""

from __future__ import annotations

from datetime import timedelta

import pytest

from crm.domain.clock import SettableClock
from crm.domain.notifications import OperatorStateChanged, from_wire, to_wire
from crm.domain.operator_states import (
    BREAK_REASONS,
    FORCED,
    TIMED_OUT,
    TRANSITIONS,
    OperatorEvent,
    OperatorState,
    Refusal,
    Status,
    apply,
    gone,
    reason_label,
    wrap_up_over,
)
from tests.conftest import TEST_NOW

S, E = OperatorState, OperatorEvent
_ = None  # refused
# rows: states; columns: events in this order
COLUMNS = (
    E.SET_READY, E.SET_BREAK, E.CONNECT, E.RING, E.DIAL, E.ANSWER, E.HOLD,
    E.RESUME, E.END, E.RESULT_SAVED, E.WRAP_UP_TIMEOUT, E.DISCONNECT_TIMEOUT, E.FORCE_BREAK, E.FORCE_LOGOUT,
)  # fmt: skip
EXPECTED: dict[OperatorState, tuple[OperatorState | None, ...]] = {
    #            ready    break    connect  ring       dial      answer    hold       resume    end
    #            result   wrap_to  disc_to  f_break  f_logout
    S.OFFLINE: (S.READY, S.BREAK, S.READY, S.RINGING, S.TALKING, _, _, _, _, _, _, _, _, _),
    S.READY: (_, S.BREAK, _, S.RINGING, S.TALKING, _, _, _, _, _, _, S.OFFLINE, S.BREAK, S.OFFLINE),
    S.RINGING: (_, _, _, _, _, S.TALKING, _, _, S.WRAP_UP, _, _, _, _, S.OFFLINE),
    S.TALKING: (_, _, _, _, _, S.TALKING, S.ON_HOLD, _, S.WRAP_UP, _, _, _, _, S.OFFLINE),
    S.ON_HOLD: (_, _, _, _, _, _, _, S.TALKING, S.WRAP_UP, _, _, _, _, S.OFFLINE),
    S.WRAP_UP: (_, _, _, S.RINGING, S.TALKING, _, _, _, _, S.READY, S.READY, S.OFFLINE, S.BREAK, S.OFFLINE),
    S.BREAK: (S.READY, S.BREAK, _, S.RINGING, S.TALKING, _, _, _, _, _, _, S.OFFLINE, S.BREAK, S.OFFLINE),
}
LATER = TEST_NOW + timedelta(minutes=5)
PAIRS = [(state, event, row[i]) for state, row in EXPECTED.items() for i, event in enumerate(COLUMNS)]


def test_the_hand_table_covers_every_pair_and_matches_the_transitions() -> None:
    assert set(EXPECTED) == set(OperatorState) and set(COLUMNS) == set(OperatorEvent)
    assert {(s, e): to for s, e, to in PAIRS if to is not None} == TRANSITIONS


@pytest.mark.parametrize(('state', 'event', 'expected'), PAIRS, ids=[f'{s}-{e}' for s, e, _ in PAIRS])
def test_every_pair(state: OperatorState, event: OperatorEvent, expected: OperatorState | None) -> None:
    status = Status(state, TEST_NOW, 'lunch' if state is S.BREAK else None, 'c1' if state.on_call else None)
    result = apply(status, event, LATER, reason='meeting', call_id='c1')
    if expected is None:
        assert isinstance(result, Refusal)
        assert result.message and result.message.isascii() is False  # said in Russian
    else:
        assert isinstance(result, Status), result
        assert result.state is expected
        unchanged = expected is state and result.reason == status.reason
        assert result.since == (TEST_NOW if unchanged else LATER)


def test_a_break_needs_a_reason_from_the_list() -> None:
    ready = Status(S.READY, TEST_NOW)
    assert apply(ready, E.SET_BREAK, LATER) == Refusal('Выберите причину перерыва из списка')
    assert apply(ready, E.FORCE_BREAK, LATER, reason='кофе') == Refusal('Выберите причину перерыва из списка')
    for code in BREAK_REASONS:
        assert apply(ready, E.SET_BREAK, LATER, reason=code) == Status(S.BREAK, LATER, code)
    assert reason_label(S.BREAK, 'lunch') == 'Перерыв: обед'


def test_a_call_is_followed_to_wrap_up_and_back_to_ready() -> None:
    status: Status | Refusal = Status(S.READY, TEST_NOW)
    for event, state in ((E.RING, S.RINGING), (E.ANSWER, S.TALKING), (E.HOLD, S.ON_HOLD)):
        assert isinstance(status, Status)
        status = apply(status, event, LATER, call_id='c1')
        assert isinstance(status, Status) and status.state is state and status.call_id == 'c1'
    assert isinstance(status, Status)
    status = apply(apply(status, E.RESUME, LATER, call_id='c1'), E.END, LATER, call_id='c1')  # type: ignore[arg-type]
    assert status == Status(S.WRAP_UP, LATER, None, 'c1')
    assert apply(status, E.RESULT_SAVED, LATER, call_id='other') == Refusal(
        'Событие другого звонка: состояние оператора не меняется'
    )
    assert apply(status, E.RESULT_SAVED, LATER, call_id='c1') == Status(S.READY, LATER)


def test_refusals_say_why() -> None:
    talking = Status(S.TALKING, TEST_NOW, None, 'c1')
    assert apply(talking, E.SET_BREAK, LATER, reason='lunch') == Refusal(
        'Идёт звонок: статус можно сменить после него'
    )
    assert apply(Status(S.WRAP_UP, TEST_NOW), E.SET_READY, LATER) == Refusal(
        'Сначала сохраните результат звонка'
    )
    assert apply(Status(S.READY, TEST_NOW), E.SET_READY, LATER) == Refusal('Уже в статусе «Готов»')
    assert apply(Status(S.OFFLINE, TEST_NOW), E.FORCE_BREAK, LATER, reason='lunch') == Refusal(
        'Оператор не в сети'
    )
    assert apply(talking, E.FORCE_BREAK, LATER, reason='lunch') == Refusal(
        'Оператор разговаривает: дождитесь конца звонка'
    )


def test_logouts_carry_why() -> None:
    ready = Status(S.READY, TEST_NOW)
    assert apply(ready, E.FORCE_LOGOUT, LATER) == Status(S.OFFLINE, LATER, FORCED)
    assert apply(ready, E.DISCONNECT_TIMEOUT, LATER) == Status(S.OFFLINE, LATER, TIMED_OUT)


def test_wrap_up_time_out_on_a_settable_clock() -> None:
    clock = SettableClock(TEST_NOW)
    wrap_up = Status(S.WRAP_UP, clock(), None, 'c1')
    clock.advance(seconds=119)
    assert not wrap_up_over(wrap_up, clock(), 120)
    clock.advance(seconds=1)
    assert wrap_up_over(wrap_up, clock(), 120)
    assert not wrap_up_over(Status(S.READY, TEST_NOW), clock(), 120)


def test_disconnect_time_out_on_a_settable_clock() -> None:
    clock = SettableClock(TEST_NOW)
    seen = clock()
    clock.advance(seconds=59)
    for state in (S.READY, S.BREAK, S.WRAP_UP):
        assert not gone(Status(state, TEST_NOW), seen, clock(), 60)
    clock.advance(seconds=1)
    for state in (S.READY, S.BREAK, S.WRAP_UP):
        assert gone(Status(state, TEST_NOW), seen, clock(), 60)
    for state in (S.OFFLINE, S.RINGING, S.TALKING, S.ON_HOLD):  # a call goes on without a browser
        assert not gone(Status(state, TEST_NOW), seen, clock(), 60)


def test_the_notification_goes_over_the_wire_and_back() -> None:
    changed = OperatorStateChanged(7, S.BREAK, 'lunch', TEST_NOW, None, 'Руководитель Р.')
    assert from_wire(to_wire([changed])) == [changed]
    assert to_wire([changed])['state'] == 'break'
