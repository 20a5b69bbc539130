"""The password policy: length (a setting), not the login in any case, two kinds of character; the
temporary password of a reset passes it."""

from __future__ import annotations

import pytest

from crm.domain.password_policy import (
    PasswordRejected,
    describe,
    problems,
    require_acceptable,
    temporary_password,
)


@pytest.mark.parametrize(
    ('password', 'message'),
    [
        ('Abc-12345', 'Пароль должен быть не короче 10 символов'),
        ('xx-IVANOV-2026', 'Пароль не должен содержать логин'),
        ('abcdefghijkl', 'хотя бы двух видов'),
        ('123456789012', 'хотя бы двух видов'),
        ('x' * 129 + '1', 'не длиннее 128'),
    ],
)
def test_each_rule_refuses_in_russian(password: str, message: str) -> None:
    with pytest.raises(PasswordRejected, match=message):
        require_acceptable(password, 'ivanov')


def test_an_acceptable_password_and_every_problem_at_once() -> None:
    require_acceptable('Летний-дождь-7', 'ivanov')
    require_acceptable('только буквы', 'ivanov')  # a space is another kind of character
    assert len(problems('ivanov', 'ivanov')) == 3
    assert problems('', 'ivanov') == ['Пароль должен быть не короче 10 символов']


def test_the_minimum_length_is_a_setting() -> None:
    assert problems('Abc-123', 'ivanov', min_length=7) == []
    assert problems('Abc-123456', 'ivanov', min_length=12) == ['Пароль должен быть не короче 12 символов']
    assert describe(12).startswith('Не короче 12 символов')
    assert describe(21).startswith('Не короче 21 символа')


def test_an_empty_login_is_not_in_every_password() -> None:
    assert problems('Летний-дождь-7', '  ') == []


@pytest.mark.parametrize('min_length', [6, 10, 16])
def test_temporary_passwords_pass_the_policy_and_differ(min_length: int) -> None:
    made = {temporary_password('ivanov', min_length=min_length) for _ in range(50)}
    assert len(made) == 50
    for password in made:
        assert len(password) >= max(12, min_length)
        assert problems(password, 'ivanov', min_length=min_length) == []
        assert not set(password) & set('0O1lI')
