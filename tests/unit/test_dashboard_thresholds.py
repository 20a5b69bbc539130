"""«Пороги» of «Мониторинг», the pure rules: what a threshold may be (each refusal naming its field in
Russian), which states are coloured, and the saved rows over the defaults."""

from __future__ import annotations

import pytest

from crm.domain.dashboard import DEFAULT_THRESHOLDS, level, parse_thresholds
from crm.domain.dashboard_thresholds import (
    COLOURED_STATES,
    FIELD_LABELS,
    MAX_SECONDS,
    BadThreshold,
    check,
    effective,
    text,
)
from crm.domain.operator_states import OperatorState

S = OperatorState


def test_the_coloured_states_are_those_with_default_thresholds() -> None:
    assert set(COLOURED_STATES) == set(DEFAULT_THRESHOLDS)
    assert S.OFFLINE not in COLOURED_STATES
    assert len(set(COLOURED_STATES)) == len(COLOURED_STATES)


@pytest.mark.parametrize(
    ('values', 'expected'),
    [
        ((10, 60, 300), (10, 60, 300)),
        ((0, 0, 0), (0, 0, 0)),  # every moment past 0 s is red
        ((5, 5, 5), (5, 5, 5)),
        ((5.0, '6', ' 7 '), (5, 6, 7)),  # a number input gives floats; text is trimmed
        ((0, 1, MAX_SECONDS), (0, 1, 86_400)),
    ],
)
def test_valid_thresholds_are_whole_seconds_in_order(values: tuple, expected: tuple) -> None:
    assert check('talking', *values) == (S.TALKING, expected)


@pytest.mark.parametrize(
    ('values', 'field', 'words'),
    [
        ((None, 60, 300), 'warn', 'укажите число секунд'),
        (('', 60, 300), 'warn', 'укажите число секунд'),
        ((10, 'abc', 300), 'alert', 'целое число'),
        ((10, 60.5, 300), 'alert', 'целое число'),
        ((10, True, 300), 'alert', 'целое число'),
        ((float('nan'), 60, 300), 'warn', 'целое число'),
        ((-1, 60, 300), 'warn', 'от 0 до 86 400'),
        ((10, 60, MAX_SECONDS + 1), 'critical', 'от 0 до 86 400'),
        ((61, 60, 300), 'alert', 'не меньше порога 1 (61 с)'),
        ((10, 60, 59), 'critical', 'не меньше порога 2 (60 с)'),
    ],
)
def test_a_wrong_threshold_is_refused_naming_its_field(values: tuple, field: str, words: str) -> None:
    with pytest.raises(BadThreshold) as refused:
        check('talking', *values)
    assert refused.value.field == field
    assert refused.value.message.startswith(FIELD_LABELS[field] + ':')
    assert words in refused.value.message


@pytest.mark.parametrize(('state', 'words'), [('offline', '«Не в сети»'), ('nap', '«nap» не известно')])
def test_only_a_coloured_state_takes_thresholds(state: str, words: str) -> None:
    with pytest.raises(BadThreshold) as refused:
        check(state, 1, 2, 3)
    assert refused.value.field == 'state'
    assert words in refused.value.message


def test_saved_rows_override_the_defaults_and_unknown_states_are_ignored() -> None:
    defaults = parse_thresholds('talking:20/40/80')
    result = effective(defaults, {'ready': (1, 2, 3), 'offline': (1, 1, 1), 'nap': (1, 1, 1)})
    assert result[S.READY] == (1, 2, 3)
    assert result[S.TALKING] == (20, 40, 80)  # the setting, no row
    assert result[S.WRAP_UP] == DEFAULT_THRESHOLDS[S.WRAP_UP]
    assert S.OFFLINE not in result and level(S.OFFLINE, 10_000, result) == 0
    assert level(S.READY, 4, result) == 3
    assert defaults[S.READY] == DEFAULT_THRESHOLDS[S.READY]  # not changed in place
    assert text((10, 60, 300)) == '10/60/300'
