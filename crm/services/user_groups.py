"""Groups of operators (administrators): create, rename, and the supervisor who leads each. Audited.

A supervisor leads a group (``user_groups.supervisor_id``); the dashboard shows a supervisor their group's
operators. Users join a group through «Пользователи» (``crm/services/users.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from crm.db.models import User, UserGroup
from crm.domain import Role
from crm.domain.actor import Actor
from crm.domain.errors import NotFound, ServiceError
from crm.services import audit


@dataclass(frozen=True)
class GroupRow:
    id: int
    name: str
    supervisor_id: int | None
    supervisor_name: str | None
    members: int


class GroupService:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def groups(self, actor: Actor) -> list[GroupRow]:
        actor.require(Role.ADMIN)
        members = (
            select(User.group_id, func.count().label('n'))
            .where(User.group_id.is_not(None))
            .group_by(User.group_id)
        ).subquery()
        query = (
            select(UserGroup, User.full_name, members.c.n)
            .outerjoin(User, User.id == UserGroup.supervisor_id)
            .outerjoin(members, members.c.group_id == UserGroup.id)
            .order_by(UserGroup.name)
        )
        with self._sessions() as session:
            return [
                GroupRow(group.id, group.name, group.supervisor_id, name, n or 0)
                for group, name, n in session.execute(query)
            ]

    def create_group(self, actor: Actor, name: str) -> GroupRow:
        actor.require(Role.ADMIN)
        name = _group_name(name)
        with self._sessions.begin() as session:
            _check_group_name(session, name, None)
            group = UserGroup(name=name)
            session.add(group)
            session.flush()
            audit.record(session, 'group.create', user_id=actor.id, group_id=group.id, name=name)
            return GroupRow(group.id, group.name, None, None, 0)

    def rename_group(self, actor: Actor, group_id: int, name: str) -> int:
        """Returns the group's id."""
        actor.require(Role.ADMIN)
        name = _group_name(name)
        with self._sessions.begin() as session:
            group = find_group(session, group_id)
            _check_group_name(session, name, group.id)
            if group.name != name:
                audit.record(
                    session, 'group.rename', user_id=actor.id, group_id=group.id, changes=[group.name, name]
                )
                group.name = name
            return group.id

    def set_supervisor(self, actor: Actor, group_id: int, supervisor_id: int | None) -> int:
        """The supervisor who leads the group (an active user with the supervisor role), or none; returns
        the group's id."""
        actor.require(Role.ADMIN)
        with self._sessions.begin() as session:
            group = find_group(session, group_id)
            if supervisor_id is not None:
                supervisor = session.get(User, supervisor_id)
                if supervisor is None or supervisor.role != Role.SUPERVISOR or not supervisor.active:
                    raise ServiceError('Группу может вести только действующий руководитель группы')
            if group.supervisor_id != supervisor_id:
                audit.record(
                    session,
                    'group.supervisor',
                    user_id=actor.id,
                    group_id=group.id,
                    changes=[group.supervisor_id, supervisor_id],
                )
                group.supervisor_id = supervisor_id
            return group.id


def _check_group_name(session: Session, name: str, own_id: int | None) -> None:
    """Names are unique whatever the case (compared here: SQLite's lower() knows only ASCII)."""
    taken = session.scalars(select(UserGroup.name).where(UserGroup.id != (own_id or 0))).all()
    if name.casefold() in {other.casefold() for other in taken}:
        raise ServiceError(f'Группа «{name}» уже есть')


def _group_name(name: str) -> str:
    name = ' '.join(name.split())
    if not name or len(name) > 100:
        raise ServiceError('Укажите название группы (до 100 символов)')
    return name


def find_group(session: Session, group_id: int) -> UserGroup:
    group = session.get(UserGroup, group_id)
    if group is None:
        raise NotFound('Группа не найдена')
    return group
