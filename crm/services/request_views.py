"""«Обращения»: the list of requests — searched, filtered, sorted and paged in the database — and its CSV.

Built for a million rows. Each page is two statements: the ids of the page (filters, then an order an
index can give, then LIMIT) and the rows for those ids. Columns shown by a label the database does not
hold in order (topic, channel, status, assignee) are sorted as a union of one branch per value, in the
labels' order, each walking its ``(column, id)`` index: PostgreSQL merges them and stops at the page.
The total is counted up to ``COUNT_CAP`` + 1 rows (``total_capped``: «более 10 000»; a text search to
``TEXT_COUNT_CAP``), never over everything. An operator sees the requests assigned to them and the
unassigned queue, and that is a condition of the statement, not of the page.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    Table,
    and_,
    func,
    literal,
    literal_column,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy import column as sa_column
from sqlalchemy import values as sa_values
from sqlalchemy.orm import Session, sessionmaker

from crm.db.models import Borrower, BorrowerPhone, Request, RequestTopic, User
from crm.domain import Role
from crm.domain import formatting as fmt
from crm.domain.actor import Actor
from crm.domain.clock import Clock, system_clock
from crm.domain.contact_rules import CallLimits
from crm.domain.errors import NotFound
from crm.domain.formatting import OFFICE_TZ
from crm.domain.identifiers import digits
from crm.domain.requests import (
    ANSWER_WORKING_DAYS,
    OPEN_STATUSES,
    REQUEST_CHANNEL_LABELS,
    REQUEST_STATUS_LABELS,
    WARNING_FROM_WORKING_DAY,
    Deadline,
    add_working_days,
    working_days_between,
)
from crm.services import audit
from crm.services.listing import CappedTotal, CsvExport

COUNT_CAP = 10_000
# A text search is counted to a thousand: a common word's bitmap over a million rows costs more than the
# page itself, while a thousand matches are read from a table scan or the bitmap in a few milliseconds.
TEXT_COUNT_CAP = 1_000
PROBE = 20_000  # the newest rows a text search's count looks at first (PostgreSQL)
CSV_LIMIT = 100_000
CSV_CHUNK = 2_000
MAX_PER_PAGE = 200
MAX_QUERY = 100
SORTS = ('number', 'opened_at', 'borrower', 'topic', 'channel', 'status', 'assignee', 'due_on', 'updated_at')
DEADLINES = {'overdue': 'Просрочено', 'warning': 'Предупреждение', 'on_time': 'В срок'}
STATUS_ORDER = tuple(REQUEST_STATUS_LABELS)  # the workflow's order: Новое … Закрыто
WARNING_LEFT = ANSWER_WORKING_DAYS - WARNING_FROM_WORKING_DAY  # working days left from the 10th on
_IDENTIFIER = re.compile(r'^[\d\s()+\-.]+$')
_WORD = re.compile(r'[0-9a-zа-яё]+')

_requests = cast(Table, Request.__table__)
# PostgreSQL only: to_tsvector('russian', search_text), stored by the database (migration 0011)
SEARCH_VECTOR: ColumnElement[Any] = literal_column('requests.search_vector')
_borrowers = cast(Table, Borrower.__table__)
_phones = cast(Table, BorrowerPhone.__table__)
_topics = cast(Table, RequestTopic.__table__)
_users = cast(Table, User.__table__)
r, b = _requests.c, _borrowers.c

CSV_HEADER = (
    '№',
    'Открыто (МСК)',
    'PIN',
    'Заёмщик',
    'Тема',
    'Канал',
    'Статус',
    'Исполнитель',
    'Срок ответа',
    'Осталось раб. дней',
    'Обновлено (МСК)',
    'Предмет',
)


@dataclass(frozen=True)
class RequestFilters:
    """What the list is narrowed to; empty means everything the actor may see."""

    query: str = ''  # words of the text, the borrower's name, a PIN or a phone
    statuses: tuple[str, ...] = ()
    channel: str | None = None
    topic: str | None = None
    assignee_id: int | None = None
    unassigned: bool = False  # «не назначено» (the queue)
    deadline: str | None = None  # overdue | warning | on_time: open requests only
    opened_from: date | None = None  # by the office's calendar, inclusive
    opened_to: date | None = None


@dataclass(frozen=True)
class RequestRow:
    id: int
    opened_at: datetime
    updated_at: datetime
    borrower_id: int
    borrower_name: str
    borrower_pin: str
    topic_code: str | None
    topic_name: str | None
    channel: str
    status: str
    assignee_id: int | None
    assignee_name: str | None
    subject: str
    due_on: date
    deadline: Deadline | None  # None once resolved or closed

    @property
    def status_label(self) -> str:
        return REQUEST_STATUS_LABELS.get(self.status, self.status)

    @property
    def channel_label(self) -> str:
        return REQUEST_CHANNEL_LABELS.get(self.channel, self.channel)

    @property
    def open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(frozen=True)
class RequestPage(CappedTotal):
    rows: tuple[RequestRow, ...]
    total: int  # at most cap + 1
    cap: int  # how far it was counted
    page: int
    per_page: int


@dataclass(frozen=True)
class BorrowerChoice:
    id: int
    name: str


class RequestViews:
    def __init__(
        self, sessions: sessionmaker[Session], *, limits: CallLimits, clock: Clock = system_clock
    ) -> None:
        self._sessions = sessions
        self._limits = limits
        self._clock = clock

    def page(
        self,
        actor: Actor,
        filters: RequestFilters | None = None,
        sort: str = 'opened_at',
        descending: bool = True,
        page: int = 1,
        per_page: int = 50,
    ) -> RequestPage:
        filters = filters or RequestFilters()
        cap = TEXT_COUNT_CAP if filters.query.strip() else COUNT_CAP
        per_page = min(max(per_page, 1), MAX_PER_PAGE)
        page = min(max(page, 1), cap // per_page + 1)  # the pager never goes past the capped total
        offset = (page - 1) * per_page
        today = self._today()
        with self._sessions() as session:
            where = self._conditions(session, actor, filters, today)
            ids = list(session.scalars(_page_ids(session, where, sort, descending, offset, per_page)))
            if 0 < len(ids) < per_page:  # the last page: the total is known
                total = offset + len(ids)
            else:
                total = _count(session, where, cap, text=bool(filters.query.strip()))
            rows = _rows(session, ids, Deadlines(today, self._limits))
        return RequestPage(
            rows=tuple(rows),
            total=min(total, cap + 1),
            cap=cap,
            page=page,
            per_page=per_page,
        )

    def csv(
        self,
        actor: Actor,
        filters: RequestFilters | None = None,
        sort: str = 'opened_at',
        descending: bool = True,
    ) -> CsvExport:
        """The filtered list in the page's order, UTF-8 with a BOM and ``;`` (Excel opens it as it is),
        read CSV_CHUNK rows at a time; at most CSV_LIMIT rows, and a last line that says so if cut.
        Audited: it is personal data leaving the system."""
        filters = filters or RequestFilters()
        deadlines = Deadlines(self._today(), self._limits)
        out = io.StringIO()
        out.write('\ufeff')
        writer = csv.writer(out, delimiter=';', lineterminator='\r\n')
        writer.writerow(CSV_HEADER)
        with self._sessions.begin() as session:
            where = self._conditions(session, actor, filters, deadlines.today)
            ids = list(session.scalars(_page_ids(session, where, sort, descending, 0, CSV_LIMIT + 1)))
            export = CsvExport(
                data=b'', rows=min(len(ids), CSV_LIMIT), cut=len(ids) > CSV_LIMIT, limit=CSV_LIMIT
            )
            for start in range(0, export.rows, CSV_CHUNK):
                chunk = ids[start : min(start + CSV_CHUNK, export.rows)]
                writer.writerows(_csv_line(row) for row in _rows(session, chunk, deadlines))
            audit.record(session, 'requests.export', user_id=actor.id, rows=export.rows, cut=export.cut)
        if export.note:
            writer.writerow([export.note])
        return replace(export, data=out.getvalue().encode('utf-8'))

    def borrower_by_pin(self, actor: Actor, pin: str) -> BorrowerChoice:
        """The borrower a request written down by hand is for, by the PIN the operator typed."""
        del actor  # every role writes requests down
        with self._sessions() as session:
            found = session.execute(
                select(b.id, b.last_name, b.first_name, b.middle_name).where(b.pin == pin.strip()[:20])
            ).first()
        if found is None:
            raise NotFound('Заёмщик с таким PIN не найден')
        name = ' '.join(p for p in (found.last_name, found.first_name, found.middle_name) if p)
        return BorrowerChoice(found.id, name)

    def _today(self) -> date:
        return self._clock().astimezone(OFFICE_TZ).date()

    def _conditions(
        self, session: Session, actor: Actor, filters: RequestFilters, today: date
    ) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        where.extend(_visible(actor, filters))
        if filters.statuses:
            where.append(r.status.in_(list(filters.statuses)))
        if filters.channel:
            where.append(r.channel == filters.channel)
        if filters.topic:
            where.append(r.topic_code == filters.topic)
        if filters.opened_from:
            where.append(r.opened_at >= _office_midnight(filters.opened_from))
        if filters.opened_to:
            where.append(r.opened_at < _office_midnight(filters.opened_to + timedelta(days=1)))
        if filters.deadline in DEADLINES:
            where.extend(deadline_conditions(filters.deadline, today, self._limits))
        text = filters.query.strip()[:MAX_QUERY]
        if text:
            where.append(search_condition(session, text))
        return where


def _count(session: Session, where: list[ColumnElement[bool]], cap: int, *, text: bool) -> int:
    """How many match, up to ``cap`` + 1. A text search on PostgreSQL first reads the newest PROBE rows
    of the other conditions: a common word has its ``cap`` matches among them, found in a few milliseconds
    (its bitmap over the whole table would take tens of them, and the planner, misjudging how often
    the words occur together, picks the bitmap). A rarer one falls through to the planner's count."""
    if text and session.get_bind().dialect.name == 'postgresql':
        *others, matches = where
        walked = (
            select(matches.label('hit'))
            .select_from(_requests)
            .where(*others)
            .order_by(r.opened_at.desc(), r.id.desc())
            .limit(PROBE)
            .subquery()
        )
        hits = int(session.scalar(select(func.count()).select_from(walked).where(walked.c.hit)) or 0)
        if hits > cap:
            return cap + 1
    counted = select(func.count()).select_from(
        select(literal(1)).select_from(_requests).where(*where).limit(cap + 1).subquery()
    )
    return int(session.scalar(counted) or 0)


def _visible(actor: Actor, filters: RequestFilters) -> list[ColumnElement[bool]]:
    """Whose requests: an operator's own and the unassigned ones at most, as one plain condition where
    the filter already narrows it (the planner estimates ``assignee_id = 5`` well, not ``assignee_id = 5
    AND (assignee_id = 5 OR assignee_id IS NULL)``)."""
    if filters.unassigned:
        return [r.assignee_id.is_(None)]
    if filters.assignee_id is not None:
        if actor.sees_everyone or filters.assignee_id == actor.id:
            return [r.assignee_id == filters.assignee_id]
        actor.require(Role.OPERATOR)
        return [literal(False)]  # another operator's: not this operator's to see
    if actor.sees_everyone:
        return []
    actor.require(Role.OPERATOR)
    return [or_(r.assignee_id == actor.id, r.assignee_id.is_(None))]


def deadline_conditions(kind: str, today: date, limits: CallLimits) -> list[ColumnElement[bool]]:
    """Open requests past their day, in their last working days (from the 10th), or before those.

    A request's working days elapsed and left add up to 15, so «from the 10th working day» is «the due
    day is before the 6th working day from today»: a range of ``due_on``, which its index answers."""
    open_ = r.status.in_(list(OPEN_STATUSES))
    warning_from = add_working_days(today, WARNING_LEFT + 1, limits)
    if kind == 'overdue':
        return [open_, r.due_on < today]
    if kind == 'warning':
        return [open_, r.due_on >= today, r.due_on < warning_from]
    return [open_, r.due_on >= warning_from]


def search_condition(session: Session, text: str) -> ColumnElement[bool]:
    """A PIN or phone: the borrower's indexed keys, or the number in the text; words: every word, as the
    start of a word (PostgreSQL's Russian full text) or anywhere (SQLite)."""
    postgres = session.get_bind().dialect.name == 'postgresql'
    number = digits(text) if _IDENTIFIER.match(text) else ''
    if len(number) >= 2:
        keys = [number]
        if len(number) == 10:
            keys.append('7' + number)
        elif len(number) == 11 and number[0] in '78':
            keys.append('7' + number[1:])
        owners = (
            select(b.id)
            .where(b.pin.in_(keys))
            .union(select(_phones.c.borrower_id).where(_phones.c.phone.in_(keys)))
        )
        ids = list(session.scalars(owners.limit(100)))  # a list: PostgreSQL ORs two index scans
        in_text = _matches(postgres, keys[-1:])
        return or_(r.borrower_id.in_(ids), in_text) if ids else in_text
    words = _WORD.findall(text.lower().replace('ё', 'е'))[:6]
    if not words:
        return literal(False)
    return _matches(postgres, words)


def _matches(postgres: bool, words: Sequence[str]) -> ColumnElement[bool]:
    if postgres:
        query = ' & '.join(f'{w}:*' for w in words)
        return SEARCH_VECTOR.op('@@')(func.to_tsquery(literal_column("'russian'::regconfig"), query))
    # SQLite's LIKE folds only ASCII: the word as typed in lower case, capitalised and upper case
    return and_(
        *(or_(*(r.search_text.like(f'%{v}%') for v in {w, w.capitalize(), w.upper()})) for w in words)
    )


def _office_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, OFFICE_TZ).astimezone(UTC)


# --- the order --------------------------------------------------------------------------------------
_COLUMNS = {'number': r.id, 'opened_at': r.opened_at, 'due_on': r.due_on, 'updated_at': r.updated_at}
_SKIPPED = object()  # a value the LATERAL part already reads
_GROUPED = {'topic': r.topic_code, 'channel': r.channel, 'status': r.status, 'assignee': r.assignee_id}


def _page_ids(
    session: Session,
    where: list[ColumnElement[bool]],
    sort: str,
    descending: bool,
    offset: int,
    limit: int,
) -> Select[Any]:
    """The ids of one page, in order."""

    def direction(column: Any) -> Any:
        return column.desc() if descending else column.asc()

    if sort in _GROUPED:
        return _grouped_ids(session, where, sort, descending, offset, limit)
    if sort == 'borrower':
        order = [direction(b.search_name), direction(b.id), direction(r.id)]
        base = select(r.id).join_from(_requests, _borrowers, b.id == r.borrower_id)
    else:
        column = _COLUMNS.get(sort, r.opened_at)
        order = [direction(column)] if column is r.id else [direction(column), direction(r.id)]
        base = select(r.id)
    return base.where(*where).order_by(*order).offset(offset).limit(limit)


def _grouped_ids(
    session: Session,
    where: list[ColumnElement[bool]],
    sort: str,
    descending: bool,
    offset: int,
    limit: int,
) -> Select[Any]:
    """Per value in the labels' order, the first ``offset + limit`` of that value, merged in order. On
    PostgreSQL one LATERAL subquery over a VALUES list (a statement planned once, however many users or
    topics there are); elsewhere one UNION ALL branch per value."""
    column = _GROUPED[sort]
    values: list[object] = list(_ranked_values(session, sort))
    if descending:
        values.reverse()
    order_id = r.id.desc() if descending else r.id.asc()
    firsts = offset + limit
    branches = []
    if session.get_bind().dialect.name == 'postgresql':
        known = [(rank, value) for rank, value in enumerate(values) if value is not None]
        kind = Integer if sort == 'assignee' else String
        ranked = sa_values(sa_column('rank', Integer), sa_column('value', kind), name='ranked').data(known)
        each = select(r.id).where(column == ranked.c.value, *where).order_by(order_id).limit(firsts).lateral()
        branches.append(select(ranked.c.rank, each.c.id).select_from(ranked.join(each, true())))
        values = [None if value is None else _SKIPPED for value in values]
    for rank, value in enumerate(values):
        if value is _SKIPPED:
            continue
        match = column.is_(None) if value is None else column == value
        branch = select(literal(rank).label('rank'), r.id).where(match, *where).order_by(order_id)
        branches.append(select(branch.limit(firsts).subquery()))
    merged = union_all(*branches).subquery()
    order = [merged.c.rank, merged.c.id.desc() if descending else merged.c.id.asc()]
    return select(merged.c.id).order_by(*order).offset(offset).limit(limit)


def _ranked_values(session: Session, sort: str) -> Iterable[str | int | None]:
    if sort == 'status':
        return STATUS_ORDER
    if sort == 'channel':
        return sorted(REQUEST_CHANNEL_LABELS, key=lambda c: REQUEST_CHANNEL_LABELS[c])
    if sort == 'topic':
        names = session.execute(select(_topics.c.code).order_by(_topics.c.name, _topics.c.code))
        return [*names.scalars(), None]
    users = session.execute(select(_users.c.id).order_by(_users.c.full_name, _users.c.id))
    return [*users.scalars(), None]


# --- the rows ---------------------------------------------------------------------------------------
def _row_query() -> Select[Any]:
    t, u = _topics.c, _users.c
    return (
        select(
            r.id,
            r.opened_at,
            r.updated_at,
            r.borrower_id,
            b.last_name,
            b.first_name,
            b.middle_name,
            b.pin,
            r.topic_code,
            t.name.label('topic_name'),
            r.channel,
            r.status,
            r.assignee_id,
            u.full_name.label('assignee_name'),
            r.subject,
            r.due_on,
        )
        .join_from(_requests, _borrowers, b.id == r.borrower_id)
        .outerjoin(_topics, t.code == r.topic_code)
        .outerjoin(_users, u.id == r.assignee_id)
    )


def _rows(session: Session, ids: Sequence[int], deadlines: Deadlines) -> list[RequestRow]:
    if not ids:
        return []
    found = {row.id: _row(row, deadlines) for row in session.execute(_row_query().where(r.id.in_(ids)))}
    return [found[i] for i in ids if i in found]


def _row(row: Any, deadlines: Deadlines) -> RequestRow:
    return RequestRow(
        id=row.id,
        opened_at=row.opened_at,
        updated_at=row.updated_at,
        borrower_id=row.borrower_id,
        borrower_name=' '.join(p for p in (row.last_name, row.first_name, row.middle_name) if p),
        borrower_pin=row.pin,
        topic_code=row.topic_code,
        topic_name=row.topic_name,
        channel=row.channel,
        status=row.status,
        assignee_id=row.assignee_id,
        assignee_name=row.assignee_name,
        subject=row.subject,
        due_on=row.due_on,
        deadline=deadlines(row.due_on) if row.status in OPEN_STATUSES else None,
    )


class Deadlines:
    """Where open requests stand today, against the due day each holds (computed once per due day: an
    export has many rows and few days). Working days elapsed and left add up to 15, so the warning from
    the 10th working day is «5 or fewer left»."""

    def __init__(self, today: date, limits: CallLimits) -> None:
        self.today, self.limits = today, limits
        self._known: dict[date, Deadline] = {}

    def __call__(self, due_on: date) -> Deadline:
        known = self._known.get(due_on)
        if known is None:
            left = working_days_between(self.today, due_on, self.limits)
            known = Deadline(
                due_on=due_on, working_days_left=left, warning=left <= WARNING_LEFT, overdue=left < 0
            )
            self._known[due_on] = known
        return known


def _csv_line(row: RequestRow) -> list[str]:
    return [
        str(row.id),
        fmt.moment(row.opened_at),
        row.borrower_pin,
        row.borrower_name,
        row.topic_name or '',
        row.channel_label,
        row.status_label,
        row.assignee_name or '',
        fmt.day(row.due_on),
        str(row.deadline.working_days_left) if row.deadline else '',
        fmt.moment(row.updated_at),
        row.subject,
    ]
