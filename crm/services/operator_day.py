"""An operator's communications of one office day, as a supervisor opens them from «Мониторинг»."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crm.db.models import Borrower, Communication, User
from crm.domain import CHANNEL_LABELS, Role
from crm.domain.actor import Actor
from crm.domain.clock import Clock, system_clock
from crm.domain.dashboard import day_bounds
from crm.domain.errors import AccessDenied, NotFound
from crm.domain.formatting import OFFICE_TZ
from crm.services import audit
from crm.services.operator_states import leads_group

DAY_LIMIT = 500  # a day's contacts of one operator; more is not a day's work


@dataclass(frozen=True)
class DayContact:
    at: datetime
    channel: str
    direction: str
    borrower_id: int | None
    borrower_name: str | None
    result: str | None
    comment: str | None
    duration_s: int | None

    @property
    def channel_label(self) -> str:
        return CHANNEL_LABELS.get(self.channel, self.channel)


@dataclass(frozen=True)
class OperatorDay:
    operator_name: str
    day: date
    contacts: tuple[DayContact, ...]


class OperatorDayService:
    def __init__(self, sessions: sessionmaker[Session], *, clock: Clock = system_clock) -> None:
        self._sessions = sessions
        self._clock = clock

    def today(self, actor: Actor, operator_id: int) -> OperatorDay:
        """The operator's contacts of today (office day), newest first; a supervisor sees only the operators
        of a group they lead, an admin anyone's. Hidden records are left out but for admins. Audited."""
        actor.require(Role.SUPERVISOR, Role.ADMIN)
        day = self._clock().astimezone(OFFICE_TZ).date()
        start, end = day_bounds(day)
        with self._sessions.begin() as session:
            operator = session.get(User, operator_id)
            if operator is None:
                raise NotFound('Сотрудник не найден')
            if actor.role == Role.SUPERVISOR and not leads_group(session, actor.id, operator.group_id):
                raise AccessDenied('Руководитель группы видит только операторов своей группы')
            query = (
                select(Communication, Borrower.last_name, Borrower.first_name, Borrower.middle_name)
                .outerjoin(Borrower, Borrower.id == Communication.borrower_id)
                .where(
                    Communication.operator_id == operator_id,
                    Communication.started_at >= start,
                    Communication.started_at < end,
                )
                .order_by(Communication.started_at.desc(), Communication.id.desc())
                .limit(DAY_LIMIT)
            )
            if actor.role != Role.ADMIN:
                query = query.where(Communication.hidden_at.is_(None))
            contacts = tuple(
                DayContact(
                    at=c.started_at,
                    channel=c.channel,
                    direction=c.direction,
                    borrower_id=c.borrower_id,
                    borrower_name=' '.join(p for p in (last, first, middle) if p) or None,
                    result=c.result_name,
                    comment=c.comment or c.body,
                    duration_s=c.duration_s,
                )
                for c, last, first, middle in session.execute(query)
            )
            audit.record(
                session, 'operator.day.view', user_id=actor.id, operator_id=operator_id, day=day.isoformat()
            )
            return OperatorDay(operator.full_name, day, contacts)
