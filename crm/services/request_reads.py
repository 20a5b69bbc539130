"""What a request looks like to the screens: frozen views read by one statement each.

The deadline (``crm.domain.requests.Deadline``) of an open request is computed for the clock's day in
Moscow; of a resolved or closed one, for the day it was resolved (closed) — whether it was answered in time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session, aliased

from crm.db.models import Borrower, Request, RequestEvent, RequestTopic, User
from crm.domain.contact_rules import CallLimits
from crm.domain.requests import (
    OPEN_STATUSES,
    REQUEST_CHANNEL_LABELS,
    REQUEST_STATUS_LABELS,
    Deadline,
    RequestStatus,
    deadline,
)
from crm.services.request_store import office_day


@dataclass(frozen=True)
class RequestView:
    id: int
    borrower_id: int
    borrower_name: str
    pin: str
    origin: str  # RequestOrigin
    channel: str  # RequestChannel: how it began
    topic_code: str | None
    topic_name: str | None
    status: str  # RequestStatus
    assignee_id: int | None
    assignee_name: str | None
    subject: str
    text: str
    opened_at: datetime
    updated_at: datetime
    due_on: date
    deadline: Deadline
    resolved_at: datetime | None

    @property
    def status_label(self) -> str:
        return REQUEST_STATUS_LABELS[self.status]

    @property
    def channel_label(self) -> str:
        return REQUEST_CHANNEL_LABELS.get(self.channel, self.channel)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(frozen=True)
class RequestEventView:
    at: datetime
    actor_name: str | None  # None: the system (a contact, the promise checker)
    kind: str  # RequestEventKind
    from_status: str | None
    to_status: str | None
    assignee_name: str | None
    text: str
    communication_id: int | None


@dataclass(frozen=True)
class TopicView:
    code: str
    name: str
    active: bool


_assignee = aliased(User)
_actor = aliased(User)


def _views_statement() -> Select[Any]:
    statement = (
        select(
            Request,
            Borrower.last_name,
            Borrower.first_name,
            Borrower.middle_name,
            Borrower.pin,
            RequestTopic.name,
            _assignee.full_name,
        )
        .join(Borrower, Borrower.id == Request.borrower_id)
        .outerjoin(RequestTopic, RequestTopic.code == Request.topic_code)
        .outerjoin(_assignee, _assignee.id == Request.assignee_id)
    )
    return cast('Select[Any]', statement)


def views(
    session: Session, where: ColumnElement[bool], now: datetime, limits: CallLimits
) -> list[RequestView]:
    """The requests ``where`` selects, newest first."""
    rows = session.execute(
        _views_statement().where(where).order_by(Request.opened_at.desc(), Request.id.desc())
    )
    today = office_day(now)
    return [_view(*row, today=today, limits=limits) for row in rows]


def _view(
    r: Request,
    last: str,
    first: str,
    middle: str | None,
    pin: str,
    topic: str | None,
    assignee: str | None,
    *,
    today: date,
    limits: CallLimits,
) -> RequestView:
    if r.status in OPEN_STATUSES:
        on = today
    else:
        on = office_day(
            r.resolved_at if r.status == RequestStatus.RESOLVED and r.resolved_at else r.updated_at
        )
    return RequestView(
        id=r.id,
        borrower_id=r.borrower_id,
        borrower_name=' '.join(p for p in (last, first, middle) if p),
        pin=pin,
        origin=r.origin,
        channel=r.channel,
        topic_code=r.topic_code,
        topic_name=topic,
        status=r.status,
        assignee_id=r.assignee_id,
        assignee_name=assignee,
        subject=r.subject,
        text=r.text,
        opened_at=r.opened_at,
        updated_at=r.updated_at,
        due_on=r.due_on,
        deadline=deadline(office_day(r.opened_at), on, limits),
        resolved_at=r.resolved_at,
    )


def history(session: Session, request_id: int) -> list[RequestEventView]:
    """A request's history in the order it was written."""
    rows = session.execute(
        select(RequestEvent, _actor.full_name, _assignee.full_name)
        .outerjoin(_actor, _actor.id == RequestEvent.actor_id)
        .outerjoin(_assignee, _assignee.id == RequestEvent.assignee_id)
        .where(RequestEvent.request_id == request_id)
        .order_by(RequestEvent.at, RequestEvent.id)
    )
    return [
        RequestEventView(
            at=e.at,
            actor_name=actor,
            kind=e.kind,
            from_status=e.from_status,
            to_status=e.to_status,
            assignee_name=assignee,
            text=e.text,
            communication_id=e.communication_id,
        )
        for e, actor, assignee in rows
    ]


def topics(session: Session, include_retired: bool = False) -> list[TopicView]:
    statement = select(RequestTopic).order_by(RequestTopic.position, RequestTopic.name)
    if not include_retired:
        statement = statement.where(RequestTopic.active.is_(True))
    return [TopicView(t.code, t.name, t.active) for t in session.scalars(statement)]


def count(session: Session, where: ColumnElement[bool]) -> int:
    return session.scalar(select(func.count()).select_from(Request).where(where)) or 0
