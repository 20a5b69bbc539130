"""Login: either credential accepted, one message for any mistake, lockout after five failures."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from crm.db.models import AuditEntry, User
from crm.domain import Role
from crm.domain.errors import LoginFailed
from crm.services.auth import AuthService
from tests.conftest import TEST_NOW
from tests.factories import make_user


@pytest.fixture
def auth(sessions, clock) -> AuthService:
    return AuthService(sessions, max_attempts=5, lockout_minutes=15, clock=clock)


def test_login_by_login_or_email_any_case(auth, sessions) -> None:
    user = make_user(sessions, role=Role.SUPERVISOR)
    assert auth.authenticate(user.login, 'secret').role == Role.SUPERVISOR
    assert auth.authenticate(user.email.upper(), 'secret').id == user.id


def test_wrong_password_and_unknown_login_say_the_same(auth, sessions) -> None:
    user = make_user(sessions)
    with pytest.raises(LoginFailed) as wrong_password:
        auth.authenticate(user.login, 'nope')
    with pytest.raises(LoginFailed) as unknown_login:
        auth.authenticate('no_such_user', 'secret')
    assert wrong_password.value.message == unknown_login.value.message == auth.refusal
    assert auth.refusal.startswith('Неверный логин или пароль')


def test_five_failures_lock_for_fifteen_minutes_even_the_right_password(auth, sessions) -> None:
    user = make_user(sessions)
    now = TEST_NOW
    for _ in range(4):
        with pytest.raises(LoginFailed, match='Неверный логин или пароль'):
            auth.authenticate(user.login, 'wrong', now=now)
    with pytest.raises(LoginFailed, match='Неверный логин или пароль'):
        auth.authenticate(user.login, 'wrong', now=now)
    with pytest.raises(LoginFailed) as locked:
        auth.authenticate(user.login, 'secret', now=now + timedelta(minutes=14))
    assert locked.value.message == auth.refusal  # a locked account reads like an unknown login
    assert auth.authenticate(user.login, 'secret', now=now + timedelta(minutes=15, seconds=1)).id == user.id
    with sessions() as session:
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.user_id == user.id).order_by(AuditEntry.id)
        ).all()
    assert 'login.lockout' in actions and actions[-1] == 'login'


def test_a_locked_login_and_an_unknown_one_answer_alike_and_check_a_hash_alike(
    auth, sessions, monkeypatch
) -> None:
    from crm.services import auth as auth_module

    checked: list[str] = []
    real_verify = auth_module.verify_password
    monkeypatch.setattr(auth_module, 'verify_password', lambda p, h: checked.append(p) or real_verify(p, h))
    user = make_user(sessions)
    for _ in range(5):
        with pytest.raises(LoginFailed):
            auth.authenticate(user.login, 'wrong', now=TEST_NOW)
    answers = []
    for login in (user.login, 'no_such_login'):
        checked.clear()
        with pytest.raises(LoginFailed) as refused:
            auth.authenticate(login, 'secret', now=TEST_NOW + timedelta(minutes=1))
        answers.append(refused.value.message)
        assert checked == ['secret']  # one hash checked either way: the same time
    assert answers[0] == answers[1] == auth.refusal


def test_success_resets_the_failure_count(auth, sessions) -> None:
    user = make_user(sessions)
    for _ in range(4):
        with pytest.raises(LoginFailed):
            auth.authenticate(user.login, 'wrong')
    auth.authenticate(user.login, 'secret')
    with pytest.raises(LoginFailed, match='Неверный'):
        auth.authenticate(user.login, 'wrong')  # a fresh count: not locked after one more


def test_deactivated_account_cannot_log_in_and_loses_its_session(auth, sessions) -> None:
    user = make_user(sessions)
    with sessions.begin() as session:
        session.get(User, user.id).active = False
    with pytest.raises(LoginFailed, match='Неверный логин или пароль'):
        auth.authenticate(user.login, 'secret')
    assert auth.actor(user.id) is None


def test_empty_fields_get_a_prompt(auth) -> None:
    with pytest.raises(LoginFailed, match='Введите логин и пароль'):
        auth.authenticate('  ', '')
