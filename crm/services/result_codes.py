"""The configurable list of call results (administrators edit it; operators pick from the active ones)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from crm.db.models import ResultCode
from crm.domain import Role
from crm.domain.actor import Actor
from crm.domain.errors import NotFound, ServiceError
from crm.services import audit

_CODE = re.compile(r'^[a-z][a-z0-9_]{1,31}$')


@dataclass(frozen=True)
class ResultCodeRow:
    code: str
    name: str
    reached: bool
    needs_promise: bool
    needs_callback: bool
    active: bool


class ResultCodeService:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def all(self, actor: Actor) -> list[ResultCodeRow]:
        actor.require(Role.ADMIN)
        with self._sessions() as session:
            return [
                _row(c)
                for c in session.scalars(select(ResultCode).order_by(ResultCode.position, ResultCode.id))
            ]

    def create(self, actor: Actor, row: ResultCodeRow) -> ResultCodeRow:
        """A new result; a code that exists is refused (never overwritten)."""
        return self._write(actor, row, new=True)

    def save(self, actor: Actor, row: ResultCodeRow) -> ResultCodeRow:
        """Change a result; codes are never deleted (history refers to them), only retired."""
        return self._write(actor, row, new=False)

    def _write(self, actor: Actor, row: ResultCodeRow, *, new: bool) -> ResultCodeRow:
        actor.require(Role.ADMIN)
        name = row.name.strip()
        if not name:
            raise ServiceError('Укажите название результата')
        if row.needs_promise and row.needs_callback:
            raise ServiceError('Результат не может требовать и обещание, и обратный звонок')
        with self._sessions.begin() as session:
            existing = session.scalar(select(ResultCode).where(ResultCode.code == row.code))
            if new and existing is not None:
                raise ServiceError(f'Результат с кодом «{row.code}» уже есть: выберите другой код')
            if not new and existing is None:
                raise NotFound('Результат не найден')
            if existing is None:
                if not _CODE.match(row.code):
                    raise ServiceError('Код: латинские строчные буквы, цифры и _, от 2 до 32 символов')
                position = (session.scalar(select(func.max(ResultCode.position))) or 0) + 1
                existing = ResultCode(code=row.code, position=position)
                session.add(existing)
            existing.name = name[:100]
            existing.reached = row.reached
            existing.needs_promise = row.needs_promise
            existing.needs_callback = row.needs_callback
            existing.active = row.active
            if (
                session.scalar(
                    select(func.count()).select_from(ResultCode).where(ResultCode.active.is_(True))
                )
                == 0
            ):
                raise ServiceError('Должен остаться хотя бы один действующий результат')
            audit.record(session, 'result_code.save', user_id=actor.id, code=row.code, active=row.active)
            return _row(existing)


def _row(c: ResultCode) -> ResultCodeRow:
    return ResultCodeRow(c.code, c.name, c.reached, c.needs_promise, c.needs_callback, c.active)
