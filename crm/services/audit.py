"""The audit log (152-FZ): who looked at or did what to whom, and when."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session, sessionmaker

from crm.db.engine import session_now
from crm.db.models import AuditEntry, Borrower, User
from crm.domain import Role
from crm.domain.actor import Actor
from crm.domain.origin import acting_from, current_address

__all__ = ['AuditRow', 'AuditService', 'acting_from', 'record']

# Built once, run on the session's connection at once (not at the ORM's flush): every card view writes one.
_INSERT = insert(cast(Table, AuditEntry.__table__))


def record(
    session: Session,
    action: str,
    *,
    user_id: int | None,
    borrower_id: int | None = None,
    **details: object,
) -> None:
    """Write an audit entry in the caller's transaction, so it commits or rolls back with the act.

    The users and borrowers it names exist before the act (it is written before the ORM flushes). The
    address is the request's this code acts for (``crm.domain.origin``), None for workers and the bus.
    """
    session.connection().execute(
        _INSERT,
        {
            'at': session_now(session),
            'user_id': user_id,
            'action': action,
            'borrower_id': borrower_id,
            'details': json.dumps(details, ensure_ascii=False, default=str) if details else None,
            'address': current_address(),
        },
    )


@dataclass(frozen=True)
class AuditRow:
    at: datetime
    user_login: str | None
    action: str
    borrower_id: int | None
    borrower_name: str | None
    details: str | None


class AuditService:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def recent(self, actor: Actor, *, borrower_id: int | None = None, limit: int = 100) -> list[AuditRow]:
        actor.require(Role.ADMIN, Role.SUPERVISOR)
        query = (
            select(AuditEntry, User.login, Borrower.last_name, Borrower.first_name)
            .outerjoin(User, User.id == AuditEntry.user_id)
            .outerjoin(Borrower, Borrower.id == AuditEntry.borrower_id)
            .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
            .limit(limit)
        )
        if borrower_id is not None:
            query = query.where(AuditEntry.borrower_id == borrower_id)
        with self._sessions() as session:
            return [
                AuditRow(
                    at=entry.at,
                    user_login=login,
                    action=entry.action,
                    borrower_id=entry.borrower_id,
                    borrower_name=f'{last} {first}' if last else None,
                    details=entry.details,
                )
                for entry, login, last, first in session.execute(query)
            ]
