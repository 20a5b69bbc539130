"""Logging in: password check, lockout after repeated failures, and the acting user."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from crm.db.models import User
from crm.domain import Role
from crm.domain.actor import Actor
from crm.domain.clock import Clock, system_clock
from crm.domain.errors import LoginFailed
from crm.domain.passwords import DUMMY_HASH, verify_password
from crm.domain.text import plural
from crm.services import audit

WRONG_CREDENTIALS = 'Неверный логин или пароль'


def locked_message(until: datetime, now: datetime) -> str:
    minutes = max(1, -(-int((until - now).total_seconds()) // 60))
    return (
        'Вход временно заблокирован из-за неудачных попыток ввода пароля. '
        f'Повторите через {minutes} {plural(minutes, "минуту", "минуты", "минут")}.'
    )


def to_actor(user: User) -> Actor:
    return Actor(
        id=user.id, login=user.login, full_name=user.full_name, role=Role(user.role), extension=user.extension
    )


class AuthService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        max_attempts: int = 5,
        lockout_minutes: int = 15,
        clock: Clock = system_clock,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._max_attempts = max_attempts
        self._lockout = timedelta(minutes=lockout_minutes)

    def authenticate(self, login: str, password: str, *, now: datetime | None = None) -> Actor:
        """The actor for valid credentials; LoginFailed with a Russian message otherwise.

        The message never tells whether the login or the password was wrong. After max_attempts
        wrong passwords in a row the account refuses every password for the lockout period.
        """
        now = now or self._clock()
        login = login.strip()
        if not login or not password:
            raise LoginFailed('Введите логин и пароль')
        with self._sessions.begin() as session:  # failures are committed too: they count
            actor, refusal = self._check(session, login, password, now)
        if refusal is not None:
            raise LoginFailed(refusal)
        assert actor is not None
        return actor

    def _check(
        self, session: Session, login: str, password: str, now: datetime
    ) -> tuple[Actor | None, str | None]:
        """(actor, None) on success, (None, the message to show) on refusal; records the outcome."""
        user = session.scalar(
            select(User).where(
                or_(func.lower(User.login) == login.lower(), func.lower(User.email) == login.lower())
            )
        )
        if user is None:
            verify_password(password, DUMMY_HASH)  # the same work as for a real account
            audit.record(session, 'login.failed', user_id=None, login=login)
            return None, WRONG_CREDENTIALS
        if user.locked_until is not None and user.locked_until > now:
            audit.record(session, 'login.locked', user_id=user.id)
            return None, locked_message(user.locked_until, now)
        if not verify_password(password, user.password_hash) or not user.active:
            self._count_failure(session, user, now)
            if user.locked_until is not None and user.locked_until > now:
                return None, locked_message(user.locked_until, now)
            return None, WRONG_CREDENTIALS
        user.failed_logins = 0
        user.locked_until = None
        audit.record(session, 'login', user_id=user.id)
        return to_actor(user), None

    def _count_failure(self, session: Session, user: User, now: datetime) -> None:
        user.failed_logins += 1
        if user.failed_logins >= self._max_attempts:
            user.locked_until = now + self._lockout
            user.failed_logins = 0
            audit.record(
                session, 'login.lockout', user_id=user.id, minutes=int(self._lockout.total_seconds() // 60)
            )
        else:
            audit.record(session, 'login.failed', user_id=user.id)

    def actor(self, user_id: int) -> Actor | None:
        """The acting user for a session, or None if the account is gone or deactivated."""
        with self._sessions() as session:
            user = session.get(User, user_id)
            return to_actor(user) if user is not None and user.active else None

    def logout(self, actor: Actor) -> None:
        with self._sessions.begin() as session:
            audit.record(session, 'logout', user_id=actor.id)
