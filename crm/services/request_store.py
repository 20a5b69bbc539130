"""The statements every writer of requests shares: open or join set-wise, history lines, the new count.

``open_or_join`` is what an inbound contact, a broken promise and a request written down by hand all go
through, in the caller's transaction and with the same handful of statements for one contact or a burst:
one SELECT of the borrowers with their open request of that origin (and what the search text needs), one
``INSERT … ON CONFLICT DO NOTHING`` on the partial unique index ``uq_requests_open_borrower_origin`` for
the borrowers without one (a request another process opened at the same moment is theirs: re-selected
and joined), one INSERT of the history lines, and one UPDATE of the joined requests' ``updated_at``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import Insert, Select, Table, and_, bindparam, case, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from crm.db.bulk import any_of
from crm.db.models import Borrower, BorrowerPhone, Request, RequestEvent
from crm.domain.contact_rules import CallLimits
from crm.domain.formatting import OFFICE_TZ
from crm.domain.notifications import RequestsChanged
from crm.domain.requests import RequestEventKind, RequestStatus, answer_due, search_text

_requests = cast(Table, Request.__table__)
_events = cast(Table, RequestEvent.__table__)
# The partial unique index's predicate as the migration writes it: ON CONFLICT names it literally, so
# PostgreSQL can match the index (a bound IN list would not prove the implication).
OPEN_SQL = "status IN ('new', 'in_progress', 'waiting')"


@dataclass(frozen=True)
class Opening:
    """Something that opens a request of one origin for a borrower, or joins the open one."""

    borrower_id: int
    channel: str
    at: datetime
    subject: str
    text: str = ''
    communication_id: int | None = None
    topic_code: str | None = None
    assignee_id: int | None = None  # of a request it opens
    actor_id: int | None = None  # None: the system
    join_kind: str = RequestEventKind.CONTACT  # the history line's kind when it joins an open request
    note: str | None = None  # the history line's text when it joins (default: ``text``)


@dataclass(frozen=True)
class Joined:
    """Where an opening went: the request, and whether this one opened it."""

    request_id: int
    borrower_id: int
    opened: bool


def office_day(moment: datetime) -> date:
    return moment.astimezone(OFFICE_TZ).date()


def open_or_join(
    session: Session, origin: str, openings: Sequence[Opening], limits: CallLimits
) -> list[Joined]:
    """Each opening joins its borrower's open request of ``origin``, or opens one (the first opening of
    a borrower without one opens it, the rest of the run join it); one ``Joined`` per opening, in order."""
    if not openings:
        return []
    connection = session.connection()
    postgres = connection.dialect.name == 'postgresql'
    borrower_ids = sorted({o.borrower_id for o in openings})
    facts = {
        row.id: row for row in connection.execute(_facts(postgres), {'ids': borrower_ids, 'origin': origin})
    }
    found = {b: row.request_id for b, row in facts.items() if row.request_id is not None}
    first: dict[int, Opening] = {}
    for o in openings:
        if o.borrower_id in facts and o.borrower_id not in found:
            first.setdefault(o.borrower_id, o)
    opened: dict[int, int] = {}  # borrower -> the request this run opened
    if first:
        rows = [_new_row(origin, o, facts[b], limits) for b, o in first.items()]
        opened = dict(connection.execute(_insert_open(connection.dialect.name), rows).all())
        missing = sorted(first.keys() - opened.keys())
        if missing:  # opened meanwhile by another transaction: join theirs
            args = {'ids': missing, 'origin': origin}
            found |= dict(connection.execute(_open_of(postgres), args).all())
    found |= opened
    joined: list[Joined] = []
    lines: list[dict[str, Any]] = []
    touched: dict[int, datetime] = {}
    for o in openings:
        request_id = found.get(o.borrower_id)
        if request_id is None:  # no such borrower (deleted meanwhile)
            continue
        opens = o.borrower_id in opened and first[o.borrower_id] is o
        joined.append(Joined(request_id, o.borrower_id, opens))
        lines.append(
            line(
                request_id,
                o.at,
                RequestEventKind.OPENED if opens else o.join_kind,
                actor_id=o.actor_id,
                to_status=RequestStatus.NEW if opens else None,
                assignee_id=o.assignee_id if opens else None,
                communication_id=o.communication_id,
                text=o.text if opens or o.note is None else o.note,
            )
        )
        if not opens:
            touched[request_id] = max(o.at, touched.get(request_id, o.at))
    add_lines(session, lines)
    if touched:
        connection.execute(TOUCH, [{'b_id': r, 'b_at': at} for r, at in sorted(touched.items())])
    return joined


def line(
    request_id: int,
    at: datetime,
    kind: str,
    *,
    actor_id: int | None = None,
    from_status: str | None = None,
    to_status: str | None = None,
    assignee_id: int | None = None,
    communication_id: int | None = None,
    text: str = '',
) -> dict[str, Any]:
    """A history line as a row (every key present: an executemany wants the same keys in each)."""
    return {
        'request_id': request_id,
        'at': at,
        'actor_id': actor_id,
        'kind': str(kind),
        'from_status': None if from_status is None else str(from_status),
        'to_status': None if to_status is None else str(to_status),
        'assignee_id': assignee_id,
        'communication_id': communication_id,
        'text': text,
    }


INSERT_LINES = insert(_events)


def add_lines(session: Session, lines: Sequence[dict[str, Any]]) -> None:
    """History lines in one statement (their ids are not needed: one round trip on either database)."""
    if lines:
        session.connection().execute(INSERT_LINES, list(lines))


def new_count(session: Session) -> int:
    """Requests in status «Новое» (the header's badge): read from ix_requests_status_opened_at."""
    return session.scalar(select(func.count()).select_from(_requests).where(_requests.c.status == 'new')) or 0


def changed(
    session: Session, joined: Sequence[Joined], *, count: bool | None = None
) -> list[RequestsChanged]:
    """The notification for what was joined or opened; the new count is read when something opened (or
    ``count`` says so)."""
    if not joined:
        return []
    if count is None:
        count = any(j.opened for j in joined)
    return [
        RequestsChanged(
            new_count=new_count(session) if count else None,
            borrower_ids=tuple(sorted({j.borrower_id for j in joined})),
            request_ids=tuple(sorted({j.request_id for j in joined})),
        )
    ]


def _new_row(origin: str, o: Opening, facts: Any, limits: CallLimits) -> dict[str, Any]:
    full_name = ' '.join(p for p in (facts.last_name, facts.first_name, facts.middle_name) if p)
    phones = sorted(set((facts.phones or '').split()))
    return {
        'borrower_id': o.borrower_id,
        'origin': origin,
        'channel': o.channel,
        'topic_code': o.topic_code,
        'status': RequestStatus.NEW.value,
        'assignee_id': o.assignee_id,
        'subject': o.subject[:200],
        'text': o.text,
        'search_text': search_text(o.subject, o.text, full_name, facts.pin, phones),
        'opened_at': o.at,
        'updated_at': o.at,
        'due_on': answer_due(office_day(o.at), limits),
        'resolved_at': None,
    }


TOUCH = (
    update(_requests)
    .where(_requests.c.id == bindparam('b_id'))
    .values(
        updated_at=case(
            (_requests.c.updated_at < bindparam('b_at'), bindparam('b_at')), else_=_requests.c.updated_at
        ),
        # the borrower answered what they were waited for: back to the operator
        status=case(
            (_requests.c.status == RequestStatus.WAITING.value, RequestStatus.IN_PROGRESS.value),
            else_=_requests.c.status,
        ),
    )
)


@cache
def _facts(postgres: bool) -> Select[Any]:
    """Borrowers (bind ``ids``) with their open request of an origin (bind ``origin``), name, PIN, phones."""
    phone_list = (
        func.string_agg(BorrowerPhone.phone, ' ') if postgres else func.group_concat(BorrowerPhone.phone, ' ')
    )
    phones = select(phone_list).where(BorrowerPhone.borrower_id == Borrower.id).scalar_subquery()
    is_open = and_(
        _requests.c.borrower_id == Borrower.id, _requests.c.origin == bindparam('origin'), text(OPEN_SQL)
    )
    return (
        select(
            Borrower.id,
            Borrower.last_name,
            Borrower.first_name,
            Borrower.middle_name,
            Borrower.pin,
            phones.label('phones'),
            _requests.c.id.label('request_id'),
        )
        .outerjoin(_requests, is_open)
        .where(any_of(cast(Table, Borrower.__table__).c.id, postgres))
    )


@cache
def _open_of(postgres: bool) -> Select[Any]:
    return select(_requests.c.borrower_id, _requests.c.id).where(
        any_of(_requests.c.borrower_id, postgres), _requests.c.origin == bindparam('origin'), text(OPEN_SQL)
    )


@cache
def _insert_open(dialect: str) -> Insert:
    """INSERT … ON CONFLICT (borrower_id, origin) WHERE <open> DO NOTHING RETURNING borrower_id, id."""
    insert: Any = postgresql.insert if dialect == 'postgresql' else sqlite.insert
    return (
        insert(_requests)
        .on_conflict_do_nothing(index_elements=['borrower_id', 'origin'], index_where=text(OPEN_SQL))
        .returning(_requests.c.borrower_id, _requests.c.id)
    )
