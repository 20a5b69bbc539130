"""«Пользователи» (administrators): create, edit, block and unblock users; reset a password, lift the
five-failures lock; groups of operators and the supervisor who leads each. Every change is audited with
what changed (never a password), in the transaction that made it.

A blocked user's sessions end at once (``end_user_sessions``); so do the sessions of a user whose
password an administrator reset. A reset password (and a new user's first one) must be changed at the
next login: ``users.must_change_password`` travels on the ``Actor`` the login middleware resolves, so
checking it costs nothing per request.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from crm.db.models import User, UserGroup
from crm.domain import Role
from crm.domain.actor import Actor
from crm.domain.clock import Clock, system_clock
from crm.domain.errors import NotFound, ServiceError
from crm.domain.password_policy import DEFAULT_MIN_LENGTH, require_acceptable, temporary_password
from crm.domain.passwords import hash_password, verify_password
from crm.services import audit
from crm.services.sessions import end_user_sessions
from crm.services.user_groups import find_group

_LOGIN = re.compile(r'^[A-Za-z0-9._-]{2,64}$')
_EMAIL = re.compile(r'^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$')
_EXTENSION = re.compile(r'^[0-9]{2,16}$')
STATUS_LABELS = {'active': 'Активен', 'blocked': 'Заблокирован', 'locked': 'Вход заблокирован после ошибок'}


@dataclass(frozen=True)
class UserDraft:
    """What an administrator types for a new user or an edit."""

    login: str
    full_name: str
    role: Role
    email: str | None = None
    extension: str | None = None
    group_id: int | None = None


@dataclass(frozen=True)
class UserRow:
    id: int
    login: str
    full_name: str
    role: Role
    email: str | None
    extension: str | None
    group_id: int | None
    group_name: str | None
    status: str  # active | blocked | locked (STATUS_LABELS)
    locked_until: datetime | None
    must_change_password: bool

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]


@dataclass(frozen=True)
class NewPassword:
    """A password an administrator set or the system generated: shown once, stored only hashed."""

    user: UserRow
    password: str
    generated: bool


class UserService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        min_password_length: int = DEFAULT_MIN_LENGTH,
        clock: Clock = system_clock,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self.min_password_length = min_password_length

    # ---- reading

    def users(
        self,
        actor: Actor,
        *,
        role: Role | None = None,
        group_id: int | None = None,
        status: str | None = None,
    ) -> list[UserRow]:
        """Every user, by full name; filtered by role, group and status (active / blocked / locked)."""
        actor.require(Role.ADMIN)
        query = select(User, UserGroup.name).outerjoin(UserGroup, UserGroup.id == User.group_id)
        if role is not None:
            query = query.where(User.role == role)
        if group_id is not None:
            query = query.where(User.group_id == group_id)
        now = self._clock()
        with self._sessions() as session:
            rows = [_row(user, group, now) for user, group in session.execute(query.order_by(User.full_name))]
        return [row for row in rows if status is None or row.status == status]

    # ---- users

    def create(self, actor: Actor, draft: UserDraft, password: str | None = None) -> NewPassword:
        """A new active user who must change the first password (typed by the admin, or generated)."""
        actor.require(Role.ADMIN)
        draft = _clean(draft)
        plain, generated = self._password_for(draft.login, password)
        password_hash = hash_password(plain)  # argon2 outside the transaction
        now = self._clock()
        with self._writing() as session:
            _check_unique(session, draft, None)
            _check_group(session, draft.group_id)
            user = User(
                login=draft.login,
                full_name=draft.full_name,
                role=draft.role,
                email=draft.email,
                extension=draft.extension,
                group_id=draft.group_id,
                password_hash=password_hash,
                active=True,
                failed_logins=0,
                must_change_password=True,
                created_at=now,
            )
            session.add(user)
            session.flush()
            audit.record(
                session, 'user.create', user_id=actor.id, target=_target(user), fields=_fields(draft)
            )
            return NewPassword(self._row(session, user), plain, generated)

    def edit(self, actor: Actor, user_id: int, draft: UserDraft) -> UserRow:
        """Change login, name, role, e-mail, extension or group; the audit entry lists old → new."""
        actor.require(Role.ADMIN)
        draft = _clean(draft)
        with self._writing() as session:
            user = _user(session, user_id)
            if user.id == actor.id and draft.role != Role.ADMIN:
                raise ServiceError('Нельзя снять роль администратора с самого себя')
            _check_unique(session, draft, user.id)
            _check_group(session, draft.group_id)
            if draft.role != Role.SUPERVISOR:
                _check_leads_nothing(session, user.id)
            before = _fields(_draft_of(user))
            after = _fields(draft)
            changes = {key: [before[key], value] for key, value in after.items() if before[key] != value}
            if not changes:
                return self._row(session, user)
            user.login, user.full_name, user.role = draft.login, draft.full_name, draft.role
            user.email, user.extension, user.group_id = draft.email, draft.extension, draft.group_id
            audit.record(session, 'user.edit', user_id=actor.id, target=_target(user), changes=changes)
            session.flush()
            return self._row(session, user)

    def block(self, actor: Actor, user_id: int) -> UserRow:
        """The user can no longer log in, and every session of theirs ends now."""
        actor.require(Role.ADMIN)
        if user_id == actor.id:
            raise ServiceError('Нельзя заблокировать самого себя')
        with self._writing() as session:
            user = _user(session, user_id)
            if not user.active:
                return self._row(session, user)
            user.active = False
            ended = end_user_sessions(session, user.id, self._clock())
            audit.record(session, 'user.block', user_id=actor.id, target=_target(user), sessions_ended=ended)
            session.flush()
            return self._row(session, user)

    def unblock(self, actor: Actor, user_id: int) -> UserRow:
        actor.require(Role.ADMIN)
        with self._writing() as session:
            user = _user(session, user_id)
            if user.active:
                return self._row(session, user)
            user.active = True
            audit.record(session, 'user.unblock', user_id=actor.id, target=_target(user))
            session.flush()
            return self._row(session, user)

    def unlock(self, actor: Actor, user_id: int) -> UserRow:
        """Lift the lock after repeated wrong passwords (and forget the failures so far)."""
        actor.require(Role.ADMIN)
        with self._writing() as session:
            user = _user(session, user_id)
            audit.record(
                session,
                'user.unlock',
                user_id=actor.id,
                target=_target(user),
                failed_logins=user.failed_logins,
                locked_until=user.locked_until,
            )
            user.failed_logins, user.locked_until = 0, None
            session.flush()
            return self._row(session, user)

    def reset_password(self, actor: Actor, user_id: int, password: str | None = None) -> NewPassword:
        """A new password (typed, checked by the policy; or generated) to be changed at the next login.

        The user's sessions end; the lock after wrong passwords is lifted with it.
        """
        actor.require(Role.ADMIN)
        with self._sessions() as session:
            login = _user(session, user_id).login
        plain, generated = self._password_for(login, password)
        password_hash = hash_password(plain)
        now = self._clock()
        with self._writing() as session:
            user = _user(session, user_id)
            user.password_hash, user.must_change_password = password_hash, True
            user.failed_logins, user.locked_until, user.password_changed_at = 0, None, now
            ended = end_user_sessions(session, user.id, now)
            audit.record(
                session,
                'user.password.reset',
                user_id=actor.id,
                target=_target(user),
                generated=generated,
                sessions_ended=ended,
            )
            session.flush()
            return NewPassword(self._row(session, user), plain, generated)

    def change_own_password(self, actor: Actor, current: str, new: str) -> Actor:
        """Any user: the current password, then a new one by the policy (not the same as the current).
        Clears the must-change flag; returns the actor as it is now."""
        with self._sessions() as session:
            user = _user(session, actor.id)
            login, password_hash = user.login, user.password_hash
        if not verify_password(current, password_hash):
            raise ServiceError('Текущий пароль введён неверно')
        require_acceptable(new, login, min_length=self.min_password_length)
        if new == current:
            raise ServiceError('Новый пароль должен отличаться от текущего')
        new_hash = hash_password(new)
        with self._writing() as session:
            user = _user(session, actor.id)
            user.password_hash, user.must_change_password = new_hash, False
            user.password_changed_at = self._clock()
            audit.record(session, 'user.password.change', user_id=actor.id, target=_target(user))
        return replace(actor, must_change_password=False)

    # ---- helpers

    def _password_for(self, login: str, password: str | None) -> tuple[str, bool]:
        if password:
            require_acceptable(password, login, min_length=self.min_password_length)
            return password, False
        return temporary_password(login, min_length=self.min_password_length), True

    def _writing(self) -> AbstractContextManager[Session]:
        return _writing(self._sessions)

    def _row(self, session: Session, user: User) -> UserRow:
        group = session.get(UserGroup, user.group_id) if user.group_id is not None else None
        return _row(user, group.name if group else None, self._clock())


@contextmanager
def _writing(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A transaction whose unique-constraint race (two admins, one login at once) reads as a refusal."""
    try:
        with sessions.begin() as session:
            yield session
    except IntegrityError:
        raise ServiceError('Логин, e-mail или внутренний номер уже заняты другим пользователем') from None


def _row(user: User, group_name: str | None, now: datetime) -> UserRow:
    if not user.active:
        status = 'blocked'
    elif user.locked_until is not None and user.locked_until > now:
        status = 'locked'
    else:
        status = 'active'
    return UserRow(
        id=user.id,
        login=user.login,
        full_name=user.full_name,
        role=Role(user.role),
        email=user.email,
        extension=user.extension,
        group_id=user.group_id,
        group_name=group_name,
        status=status,
        locked_until=user.locked_until,
        must_change_password=user.must_change_password,
    )


def _clean(draft: UserDraft) -> UserDraft:
    """Trimmed and checked; empty optional fields become None."""
    login = draft.login.strip()
    full_name = ' '.join(draft.full_name.split())
    email = (draft.email or '').strip().lower() or None
    extension = (draft.extension or '').strip() or None
    if not _LOGIN.match(login):
        raise ServiceError('Логин: латинские буквы, цифры, точка, дефис и _, от 2 до 64 символов')
    if not full_name or len(full_name) > 200:
        raise ServiceError('Укажите ФИО (до 200 символов)')
    if email is not None and (len(email) > 254 or not _EMAIL.match(email)):
        raise ServiceError('E-mail указан неверно')
    if extension is not None and not _EXTENSION.match(extension):
        raise ServiceError('Внутренний номер: от 2 до 16 цифр')
    try:
        role = Role(draft.role)
    except ValueError:
        raise ServiceError('Выберите роль') from None
    return UserDraft(login, full_name, role, email, extension, draft.group_id)


def _check_unique(session: Session, draft: UserDraft, own_id: int | None) -> None:
    """Refuse a login, e-mail or extension another user has, naming which (case does not matter)."""
    others = select(User.id).where(User.id != own_id) if own_id is not None else select(User.id)
    if session.scalar(others.where(func.lower(User.login) == draft.login.lower()).limit(1)) is not None:
        raise ServiceError(f'Логин «{draft.login}» уже занят другим пользователем')
    if (
        draft.email
        and session.scalar(others.where(func.lower(User.email) == draft.email).limit(1)) is not None
    ):
        raise ServiceError(f'E-mail «{draft.email}» уже указан у другого пользователя')
    if (
        draft.extension
        and session.scalar(others.where(User.extension == draft.extension).limit(1)) is not None
    ):
        raise ServiceError(f'Внутренний номер {draft.extension} уже занят другим пользователем')


def _check_group(session: Session, group_id: int | None) -> None:
    if group_id is not None:
        find_group(session, group_id)


def _check_leads_nothing(session: Session, user_id: int) -> None:
    led = session.scalar(select(UserGroup.name).where(UserGroup.supervisor_id == user_id).limit(1))
    if led is not None:
        raise ServiceError(
            f'Пользователь руководит группой «{led}»: сначала назначьте группе другого руководителя'
        )


def _user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound('Пользователь не найден')
    return user


def _draft_of(user: User) -> UserDraft:
    return UserDraft(user.login, user.full_name, Role(user.role), user.email, user.extension, user.group_id)


def _fields(draft: UserDraft) -> dict[str, object]:
    """What the audit entry says about a user (never a password)."""
    return {
        'login': draft.login,
        'full_name': draft.full_name,
        'role': str(draft.role),
        'email': draft.email,
        'extension': draft.extension,
        'group_id': draft.group_id,
    }


def _target(user: User) -> dict[str, object]:
    return {'id': user.id, 'login': user.login}
