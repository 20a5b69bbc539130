"""«Журнал действий» (administrators): the audit log filtered, paged in the database, and its CSV.

Built for ten million entries. A page is two statements: the ids (the filters, newest first, LIMIT) and
the rows for them. Each filter has an index that starts with its column and continues ``(at, id)``
(migration 0013), so the ids are an index walk that stops at the page. A group of actions («Входы (все)»)
is one such walk per action, each stopping at the page, merged. The total is counted to ``COUNT_CAP`` + 1
(«более 10 000»), never over everything; the pager does not go past it.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, Table, func, literal, select, union_all
from sqlalchemy.orm import Session, sessionmaker

from crm.db.models import AuditEntry, Borrower, User
from crm.domain import Role
from crm.domain import formatting as fmt
from crm.domain.actor import Actor
from crm.domain.audit_actions import action_label, actions_of, details_text
from crm.domain.errors import NotFound
from crm.domain.formatting import OFFICE_TZ
from crm.services import audit
from crm.services.listing import CappedTotal, CsvExport

COUNT_CAP = 10_000
CSV_LIMIT = 100_000
CSV_CHUNK = 2_000
MAX_PER_PAGE = 200

_audit = cast(Table, AuditEntry.__table__)
_users = cast(Table, User.__table__)
_borrowers = cast(Table, Borrower.__table__)
a, u, b = _audit.c, _users.c, _borrowers.c

CSV_HEADER = ('Когда (МСК)', 'Пользователь', 'Действие', 'Код', 'Заёмщик', 'PIN', 'Подробности', 'Адрес')


@dataclass(frozen=True)
class AuditFilters:
    """What the log is narrowed to; empty means everything."""

    user_id: int | None = None
    borrower: str = ''  # a PIN, or the borrower's number in the CRM
    action: str | None = None  # an action, or a group prefix ('login': every kind of login)
    date_from: date | None = None  # by the office's calendar, inclusive
    date_to: date | None = None


@dataclass(frozen=True)
class AuditLine:
    id: int
    at: datetime
    user_id: int | None
    user_name: str | None  # the user's full name
    action: str
    borrower_id: int | None
    borrower_name: str | None
    borrower_pin: str | None
    details: str  # readable: «логин: ivanov; минут: 15»
    address: str | None

    @property
    def action_label(self) -> str:
        return action_label(self.action)


@dataclass(frozen=True)
class AuditPage(CappedTotal):
    rows: tuple[AuditLine, ...]
    total: int  # at most cap + 1
    cap: int
    page: int
    per_page: int


@dataclass(frozen=True)
class UserChoice:
    id: int
    name: str


class AuditViews:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def page(
        self, actor: Actor, filters: AuditFilters | None = None, page: int = 1, per_page: int = 50
    ) -> AuditPage:
        actor.require(Role.ADMIN)
        filters = filters or AuditFilters()
        per_page = min(max(per_page, 1), MAX_PER_PAGE)
        page = min(max(page, 1), COUNT_CAP // per_page + 1)
        offset = (page - 1) * per_page
        with self._sessions() as session:
            where, actions = _conditions(session, filters)
            ids = list(session.scalars(_page_ids(where, actions, offset, per_page)))
            last_page = 0 < len(ids) < per_page  # then the total is known without counting
            total = offset + len(ids) if last_page else _count(session, where, actions)
            rows = _rows(session, ids)
        return AuditPage(
            rows=tuple(rows), total=min(total, COUNT_CAP + 1), cap=COUNT_CAP, page=page, per_page=per_page
        )

    def csv(self, actor: Actor, filters: AuditFilters | None = None) -> CsvExport:
        """The filtered log newest first, UTF-8 with a BOM and ``;``, read CSV_CHUNK rows at a time; at
        most CSV_LIMIT rows and a last line that says so if cut. The export is itself audited."""
        actor.require(Role.ADMIN)
        filters = filters or AuditFilters()
        out = io.StringIO()
        out.write('\ufeff')
        writer = csv.writer(out, delimiter=';', lineterminator='\r\n')
        writer.writerow(CSV_HEADER)
        with self._sessions.begin() as session:
            where, actions = _conditions(session, filters)
            ids = list(session.scalars(_page_ids(where, actions, 0, CSV_LIMIT + 1)))
            rows, cut = min(len(ids), CSV_LIMIT), len(ids) > CSV_LIMIT
            for start in range(0, rows, CSV_CHUNK):
                writer.writerows(
                    _csv_line(line) for line in _rows(session, ids[start : min(start + CSV_CHUNK, rows)])
                )
            audit.record(
                session, 'audit.export', user_id=actor.id, rows=rows, cut=cut, filters=_described(filters)
            )
        if cut:
            writer.writerow([f'Выгружены первые {CSV_LIMIT:,} строк: уточните фильтры'.replace(',', ' ')])
        return CsvExport(data=out.getvalue().encode('utf-8'), rows=rows, cut=cut, limit=CSV_LIMIT)

    def users(self, actor: Actor) -> tuple[UserChoice, ...]:
        """Everyone who may appear in the log, by full name (the filter's choices)."""
        actor.require(Role.ADMIN)
        with self._sessions() as session:
            found = session.execute(select(u.id, u.full_name, u.login).order_by(u.full_name, u.id))
            return tuple(UserChoice(row.id, row.full_name or row.login) for row in found)


def _conditions(session: Session, filters: AuditFilters) -> tuple[list[ColumnElement[bool]], tuple[str, ...]]:
    """The plain conditions, and the actions (one per index walk) when the action is filtered."""
    where: list[ColumnElement[bool]] = []
    if filters.user_id is not None:
        where.append(a.user_id == filters.user_id)
    if filters.borrower.strip():
        where.append(a.borrower_id == _borrower_id(session, filters.borrower.strip()))
    if filters.date_from:
        where.append(a.at >= _office_midnight(filters.date_from))
    if filters.date_to:
        where.append(a.at < _office_midnight(filters.date_to + timedelta(days=1)))
    actions = actions_of(filters.action.strip()) if filters.action and filters.action.strip() else ()
    return where, actions


def _borrower_id(session: Session, text: str) -> int:
    """A PIN first; digits that are no PIN may be the borrower's number in the CRM (the card's URL)."""
    found = session.scalar(select(b.id).where(b.pin == text[:20]))
    if found is None and text.isdigit() and len(text) <= 18:
        found = session.scalar(select(b.id).where(b.id == int(text)))
    if found is None:
        raise NotFound('Заёмщик с таким PIN или номером не найден')
    return int(found)


def _office_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, OFFICE_TZ).astimezone(UTC)


def _page_ids(
    where: list[ColumnElement[bool]], actions: tuple[str, ...], offset: int, limit: int
) -> Select[Any]:
    """Newest first. Several actions: the first ``offset + limit`` of each from its own index, merged."""
    order = (a.at.desc(), a.id.desc())
    if len(actions) <= 1:
        match = [a.action == actions[0]] if actions else []
        return select(a.id).where(*match, *where).order_by(*order).offset(offset).limit(limit)
    branches = [
        select(
            select(a.id, a.at)
            .where(a.action == action, *where)
            .order_by(*order)
            .limit(offset + limit)
            .subquery()
        )
        for action in actions
    ]
    merged = union_all(*branches).subquery()
    return select(merged.c.id).order_by(merged.c.at.desc(), merged.c.id.desc()).offset(offset).limit(limit)


def _count(session: Session, where: list[ColumnElement[bool]], actions: tuple[str, ...]) -> int:
    match = [a.action.in_(list(actions))] if actions else []
    matching = select(literal(1)).select_from(_audit).where(*match, *where).limit(COUNT_CAP + 1)
    return int(session.scalar(select(func.count()).select_from(matching.subquery())) or 0)


def _rows(session: Session, ids: Sequence[int]) -> list[AuditLine]:
    if not ids:
        return []
    query = (
        select(
            a.id,
            a.at,
            a.user_id,
            u.full_name,
            u.login,
            a.action,
            a.borrower_id,
            b.last_name,
            b.first_name,
            b.middle_name,
            b.pin,
            a.details,
            a.address,
        )
        .select_from(_audit)
        .outerjoin(_users, u.id == a.user_id)
        .outerjoin(_borrowers, b.id == a.borrower_id)
        .where(a.id.in_(list(ids)))
    )
    found = {row.id: _line(row) for row in session.execute(query)}
    return [found[i] for i in ids if i in found]


def _line(row: Any) -> AuditLine:
    names = [p for p in (row.last_name, row.first_name, row.middle_name) if p]
    return AuditLine(
        id=row.id,
        at=row.at,
        user_id=row.user_id,
        user_name=row.full_name or row.login,
        action=row.action,
        borrower_id=row.borrower_id,
        borrower_name=' '.join(names) or None,
        borrower_pin=row.pin,
        details=_readable(row.details),
        address=row.address,
    )


def _readable(details: str | None) -> str:
    if not details:
        return ''
    try:
        parsed = json.loads(details)
    except ValueError:
        return details
    return details_text(parsed) if isinstance(parsed, dict) else str(parsed)


def _described(filters: AuditFilters) -> str:
    parts = [
        f'пользователь {filters.user_id}' if filters.user_id is not None else '',
        f'заёмщик {filters.borrower.strip()}' if filters.borrower.strip() else '',
        f'действие {filters.action}' if filters.action else '',
        f'с {fmt.day(filters.date_from)}' if filters.date_from else '',
        f'по {fmt.day(filters.date_to)}' if filters.date_to else '',
    ]
    return ', '.join(p for p in parts if p) or 'все'


def _csv_line(line: AuditLine) -> list[str]:
    return [
        fmt.moment(line.at),
        line.user_name or '',
        line.action_label,
        line.action,
        line.borrower_name or '',
        line.borrower_pin or '',
        line.details,
        line.address or '',
    ]
