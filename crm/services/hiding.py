"""Hiding a communication or a note from operators (administrators), and showing it again. Audited.

A hidden row is kept as it was, marked (``hidden_at``, ``hidden_by``, ``hidden_reason``): the card's
history leaves it out for operators and supervisors and shows it marked to administrators
(``crm.services.cards.history_of``); the 230-FZ ledger still counts it — hiding changes who sees a
contact, not that it happened. Open cards redraw (``HistoryChanged``) after the commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from crm.db.models import Communication
from crm.domain import Role
from crm.domain.actor import Actor
from crm.domain.clock import Clock
from crm.domain.errors import NotFound, ServiceError
from crm.domain.notifications import HistoryChanged
from crm.services import audit
from crm.services.notifier import Notifier

MAX_REASON = 500


@dataclass(frozen=True)
class Hidden:
    communication_id: int
    borrower_id: int | None
    hidden_at: datetime | None
    hidden_reason: str | None


class HidingService:
    def __init__(self, sessions: sessionmaker[Session], notifier: Notifier, *, clock: Clock) -> None:
        self._sessions = sessions
        self._notifier = notifier
        self._clock = clock

    def hide(self, actor: Actor, communication_id: int, reason: str) -> Hidden:
        """Hide it from operators and supervisors; the reason is required and goes to the audit log."""
        actor.require(Role.ADMIN)
        reason = ' '.join((reason or '').split())
        if not reason or len(reason) > MAX_REASON:
            raise ServiceError(f'Причина: укажите, почему запись скрыта (до {MAX_REASON} символов)')
        with self._sessions.begin() as session:
            row = _communication(session, communication_id)
            if row.hidden_at is not None:
                raise ServiceError('Запись уже скрыта')
            row.hidden_at, row.hidden_by, row.hidden_reason = self._clock(), actor.id, reason
            audit.record(
                session,
                'communication.hide',
                user_id=actor.id,
                borrower_id=row.borrower_id,
                communication_id=row.id,
                channel=row.channel,
                reason=reason,
            )
            result = Hidden(row.id, row.borrower_id, row.hidden_at, reason)
        self._changed(result.borrower_id)
        return result

    def show(self, actor: Actor, communication_id: int) -> Hidden:
        """Show a hidden record to everyone again (the reason it was hidden stays in the audit log)."""
        actor.require(Role.ADMIN)
        with self._sessions.begin() as session:
            row = _communication(session, communication_id)
            if row.hidden_at is None:
                raise ServiceError('Запись не скрыта')
            audit.record(
                session,
                'communication.show',
                user_id=actor.id,
                borrower_id=row.borrower_id,
                communication_id=row.id,
                channel=row.channel,
                reason=row.hidden_reason,
            )
            row.hidden_at, row.hidden_by, row.hidden_reason = None, None, None
            result = Hidden(row.id, row.borrower_id, None, None)
        self._changed(result.borrower_id)
        return result

    def _changed(self, borrower_id: int | None) -> None:
        if borrower_id is not None:
            self._notifier.publish([HistoryChanged(borrower_id)])


def _communication(session: Session, communication_id: int) -> Communication:
    row = session.get(Communication, communication_id, with_for_update=True)
    if row is None:
        raise NotFound('Запись не найдена')
    return row
