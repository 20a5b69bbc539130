"""UI tests run app.py in NiceGUI's user simulation against the shared test database."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from nicegui import ui
from nicegui.testing import User

WAIT = 50  # should_see retries 0.1 s apart: pages run services in threads, on PostgreSQL too


@pytest.fixture(autouse=True)
def _app_environment(app_env: str) -> None:
    """Requested for every UI test so app.py finds the test database before the user fixture starts it."""


@pytest.fixture(autouse=True)
def _navigation_stays_with_its_user(monkeypatch: pytest.MonkeyPatch) -> None:
    """With several simulated users, NiceGUI points the global ``ui.navigate`` at whichever user was
    touched last, and every update sent to a user's page touches that user. So a login's redirect
    could open the page for another user whose page was still loading. Updates leave it as it was."""
    patch_outbox = User._patch_outbox_emit_function

    def patched(user: User) -> None:
        patch_outbox(user)
        outbox = object.__getattribute__(user, 'client').outbox
        emit = outbox._emit

        async def emit_keeping_navigation(message: Any) -> None:
            kept = ui.navigate, ui.notify, ui.download
            try:
                await emit(message)
            finally:
                if ui.navigate is object.__getattribute__(user, 'navigate'):  # turned to this user
                    ui.navigate, ui.notify, ui.download = kept

        outbox._emit = emit_keeping_navigation

    monkeypatch.setattr(User, '_patch_outbox_emit_function', patched)


async def log_in(user: User, login: str, password: str, *, path: str = '/') -> None:
    await user.open(path)
    await user.should_see('Вход в систему', retries=WAIT)
    user.find('Логин/Email').type(login)
    user.find('Пароль').type(password)
    await submit_login(user)


async def submit_login(user: User) -> None:
    """Click «Войти» and wait for the password check (argon2 takes a good part of a second)."""
    (button,) = user.find('Войти').elements
    user.find('Войти').click()
    for _ in range(100):
        await asyncio.sleep(0.05)
        if not button.props.get('loading'):
            break
    await asyncio.sleep(0.05)  # let the navigation that follows a success start


async def until(condition, timeout: float = 10.0) -> None:
    """Wait for an async page handler (it runs the service in a thread) to show its effect."""
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError('the page did not update in time')


async def never(condition, during: float = 2.0) -> None:
    """A negative: ``condition`` stays false for ``during`` seconds (what a page might still do by then)."""
    for _ in range(int(during / 0.05)):
        assert not condition(), 'the page did what it should not'
        await asyncio.sleep(0.05)
