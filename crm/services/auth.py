"""Logging in: password check, lockout after repeated failures, and the acting user."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from crm.db.models import User
from crm.domain import Role
from crm.domain.actor import Actor
from crm.domain.clock import Clock, system_clock
from crm.domain.errors import LoginFailed
from crm.domain.passwords import DUMMY_HASH, verify_password
from crm.domain.text import plural
from crm.services import audit


def refusal(max_attempts: int, lockout_minutes: int) -> str:
    """The one answer to every refused login: a wrong password, an unknown login and a locked account
    read alike (and take alike: each checks a password hash), so the form does not tell which logins
    exist. It names the lockout rule, so a locked-out user knows why the right password fails."""
    return (
        f'Неверный логин или пароль. После {max_attempts} '
        f'{plural(max_attempts, "неудачной попытки", "неудачных попыток", "неудачных попыток")} подряд '
        f'вход блокируется на {lockout_minutes} {plural(lockout_minutes, "минуту", "минуты", "минут")}.'
    )


def to_actor(user: User) -> Actor:
    return Actor(
        id=user.id,
        login=user.login,
        full_name=user.full_name,
        role=Role(user.role),
        extension=user.extension,
        must_change_password=user.must_change_password,
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
        self.refusal = refusal(max_attempts, lockout_minutes)

    def authenticate(self, login: str, password: str, *, now: datetime | None = None) -> Actor:
        """The actor for valid credentials; LoginFailed with a Russian message otherwise.

        The message never tells whether the login or the password was wrong, or that the account is
        locked (``refusal``). After max_attempts wrong passwords in a row the account refuses every
        password for the lockout period.

        The count holds under concurrency: each attempt first takes its number with one atomic
        ``UPDATE … SET failed_logins = failed_logins + 1 … RETURNING`` (an attempt counts as failed
        until its password is proven right), and an attempt numbered past the limit is refused without
        checking its password. So twenty wrong passwords sent at once check at most max_attempts of them
        and lock the account. The password is checked outside any transaction (argon2 takes a while).
        """
        now = now or self._clock()
        login = login.strip()
        if not login or not password:
            raise LoginFailed('Введите логин и пароль')
        attempt: int | None = None
        with self._sessions.begin() as session:  # failures are committed too: they count
            user = session.scalar(
                select(User).where(
                    or_(func.lower(User.login) == login.lower(), func.lower(User.email) == login.lower())
                )
            )
            if user is None:
                audit.record(session, 'login.failed', user_id=None, login=login)
            else:
                attempt = self._take_attempt(session, user, now)
        if user is None or attempt is None or attempt > self._max_attempts:
            verify_password(password, DUMMY_HASH)  # the same work as for a real account
            raise LoginFailed(self.refusal)
        right = verify_password(password, user.password_hash) and user.active
        with self._sessions.begin() as session:
            if right:
                session.execute(
                    update(User).where(User.id == user.id).values(failed_logins=0, locked_until=None)
                )
                audit.record(session, 'login', user_id=user.id)
                return to_actor(user)
            if attempt == self._max_attempts:
                self._lock(session, user.id, now)
            else:
                audit.record(session, 'login.failed', user_id=user.id)
        raise LoginFailed(self.refusal)

    def _take_attempt(self, session: Session, user: User, now: datetime) -> int | None:
        """This attempt's number in the current run of failures; None while the account is locked."""
        attempt = session.scalar(
            update(User)
            .where(User.id == user.id, or_(User.locked_until.is_(None), User.locked_until <= now))
            .values(failed_logins=User.failed_logins + 1)
            .returning(User.failed_logins)
        )
        if attempt is None:
            audit.record(session, 'login.locked', user_id=user.id)
        elif attempt > self._max_attempts:  # more attempts at once than the limit: lock now
            self._lock(session, user.id, now)
        return attempt

    def _lock(self, session: Session, user_id: int, now: datetime) -> None:
        locked = session.execute(
            update(User)
            .where(User.id == user_id, or_(User.locked_until.is_(None), User.locked_until <= now))
            .values(locked_until=now + self._lockout, failed_logins=0)
        )
        if locked.rowcount:  # type: ignore[attr-defined]
            minutes = int(self._lockout.total_seconds() // 60)
            audit.record(session, 'login.lockout', user_id=user_id, minutes=minutes)

    def actor(self, user_id: int) -> Actor | None:
        """The acting user for a session, or None if the account is gone or deactivated."""
        with self._sessions() as session:
            user = session.get(User, user_id)
            return to_actor(user) if user is not None and user.active else None
