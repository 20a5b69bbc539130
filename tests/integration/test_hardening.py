"""Hostile input, from the outside probe of 01.12.2026: each finding has a test here.

Each of these failed before its fix (run against the commit before it) and passes now.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from crm.domain.errors import LoginFailed
from crm.services import auth as auth_module
from crm.services.auth import AuthService
from tests.factories import make_user


def test_twenty_wrong_passwords_at_once_check_five_and_lock_the_account(sessions, monkeypatch) -> None:
    auth = AuthService(sessions, max_attempts=5, lockout_minutes=15)
    user = make_user(sessions)
    checked = []
    real_verify = auth_module.verify_password

    def counting_verify(password: str, password_hash: str) -> bool:
        checked.append(password)
        return real_verify(password, password_hash)

    monkeypatch.setattr(auth_module, 'verify_password', counting_verify)

    def attempt(_: int) -> str:
        try:
            auth.authenticate(user.login, 'wrong')
        except LoginFailed as failure:
            return failure.message
        return 'logged in'

    with ThreadPoolExecutor(20) as pool:
        messages = list(pool.map(attempt, range(20)))
    assert len(checked) <= 5
    assert 'logged in' not in messages
    with pytest.raises(LoginFailed, match='заблокирован'):
        auth.authenticate(user.login, 'secret')  # the right password, but the account is locked
