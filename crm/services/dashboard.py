"""«Мониторинг»: the supervisor's figures of the office day (Moscow), computed once per tick per process.

``DashboardService.figures`` reads the whole team set-wise — a fixed handful of statements grouped by
operator, whatever the number of operators or of open dashboards — and returns frozen rows; the page's
hub (``crm/pages/dashboard_hub.py``) calls it every tick while a dashboard is open and moves a row's state
in memory between ticks from ``OperatorStateChanged``. Calls waiting come from the PBX's
``telephony.queue.status`` (the latest per queue, kept in memory: ``QueueBoard``), never from a table.

Definitions: calls in / out are the operator's call communications of the day by direction (the CRM's
calls and hand-made «call_other» records); reached = right-party contacts; talk average over calls with
a duration; wrap-up average over the day's Постобработка episodes from the state history; service level =
inbound calls answered within ``service_level_s`` of ringing / inbound calls answered, abandoned or
ringing past it; abandoned % = inbound calls ended unanswered / inbound calls answered or ended; average
handle time = average talk of the day's answered calls + the team's average wrap-up; 230-FZ refusals =
messages the law refused (outbox «refused») created today plus dials it refused (``call.refused`` in the
audit log, written by ``CallService.dial``).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker

from crm.db.models import (
    AuditEntry,
    Borrower,
    Call,
    Communication,
    OperatorStateChange,
    OperatorStateRow,
    OutboxMessage,
    Payment,
    Promise,
    User,
    UserGroup,
)
from crm.domain import Role
from crm.domain.actor import Actor
from crm.domain.clock import Clock, system_clock
from crm.domain.dashboard import (
    DEFAULT_THRESHOLDS,
    Change,
    Thresholds,
    average,
    day_bounds,
    per_hour,
    states_by_hour,
    wrap_ups,
)
from crm.domain.dashboard_thresholds import effective
from crm.domain.formatting import OFFICE_TZ
from crm.domain.notifications import Notification, QueueStatusChanged
from crm.domain.operator_states import OperatorState
from crm.domain.promises import PromiseStatus
from crm.services.dashboard_thresholds import saved
from crm.services.event_schemas import Event, QueueStatus
from crm.services.inbound import Outcome
from crm.services.promises import OperatorFigures, PromiseService

SERVICE_LEVEL_S = 20  # CRM_SERVICE_LEVEL_S
CALL_CHANNELS = ('call_in', 'call_out', 'call_other')
ZERO = Decimal('0.00')


@dataclass(frozen=True)
class QueueSnapshot:
    """The PBX's latest word on one queue (``telephony.queue.status``)."""

    queue: str
    waiting: int
    longest_wait_s: int
    at: datetime


class QueueBoard:
    """The latest snapshot per queue, in this process's memory (thread-safe; an older one is ignored)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: dict[str, QueueSnapshot] = {}

    def put(self, snapshot: QueueSnapshot) -> bool:
        with self._lock:
            known = self._latest.get(snapshot.queue)
            if known is not None and known.at >= snapshot.at:
                return False
            self._latest[snapshot.queue] = snapshot
            return True

    def snapshots(self) -> tuple[QueueSnapshot, ...]:
        with self._lock:
            return tuple(sorted(self._latest.values(), key=lambda s: s.queue))


@dataclass(frozen=True)
class OperatorRow:
    """One operator's line on the dashboard."""

    user_id: int
    name: str
    group_id: int | None
    group_name: str | None
    state: OperatorState
    reason: str | None
    since: datetime | None
    call_id: str | None
    borrower_id: int | None  # on the line now
    borrower_name: str | None
    calls_in: int = 0
    calls_out: int = 0
    reached: int = 0  # right-party contacts
    talk_avg_s: int | None = None
    wrap_up_avg_s: int | None = None
    sms: int = 0
    emails: int = 0
    promises: int = 0
    promised: Decimal = ZERO
    collected: Decimal = ZERO
    kept_percent: Decimal | None = None


@dataclass(frozen=True)
class CallTotals:
    """The whole call centre's calls of the day (not filtered by group: the queue is shared)."""

    inbound: int
    answered_in_time: int
    abandoned: int
    service_level: Decimal | None  # percent
    abandoned_percent: Decimal | None
    handle_avg_s: int | None
    refusals: int  # 230-FZ: messages and dials the law refused today
    payments: Decimal  # every payment received today


@dataclass(frozen=True)
class Hours:
    """The charts' series, one value per office hour (0–23)."""

    calls_today: tuple[int, ...]
    calls_yesterday: tuple[int, ...]
    promises: tuple[int, ...]
    promised: tuple[Decimal, ...]
    collected: tuple[Decimal, ...]
    states: dict[OperatorState, tuple[int, ...]]


@dataclass(frozen=True)
class DashboardFigures:
    at: datetime
    day: date
    operators: tuple[OperatorRow, ...]
    calls: CallTotals
    hours: Hours
    queues: tuple[QueueSnapshot, ...] = ()
    # the rows' colours, read with the figures: administrators' «Пороги» over CRM_DASHBOARD_THRESHOLDS
    thresholds: Thresholds = field(default_factory=lambda: DEFAULT_THRESHOLDS)

    @property
    def waiting(self) -> int:
        return sum(q.waiting for q in self.queues)

    @property
    def longest_wait_s(self) -> int:
        return max((q.longest_wait_s for q in self.queues), default=0)


@dataclass(frozen=True)
class TeamTotals:
    """The operators a dashboard shows (its groups), summed: drawn per viewer from the shared rows."""

    by_state: tuple[tuple[OperatorState, int], ...]
    calls_in: int
    calls_out: int
    reached: int  # right-party contacts
    promises: int
    promised: Decimal
    collected: Decimal


def team(rows: Sequence[OperatorRow]) -> TeamTotals:
    counts = {state: 0 for state in OperatorState}
    for row in rows:
        counts[row.state] += 1
    return TeamTotals(
        by_state=tuple(counts.items()),
        calls_in=sum(r.calls_in for r in rows),
        calls_out=sum(r.calls_out for r in rows),
        reached=sum(r.reached for r in rows),
        promises=sum(r.promises for r in rows),
        promised=sum((r.promised for r in rows), ZERO),
        collected=sum((r.collected for r in rows), ZERO),
    )


@dataclass(frozen=True)
class GroupChoice:
    id: int
    name: str


class DashboardService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        promises: PromiseService,
        *,
        clock: Clock = system_clock,
        service_level_s: int = SERVICE_LEVEL_S,
        thresholds: Thresholds = DEFAULT_THRESHOLDS,
        tick_s: float = 2.0,
    ) -> None:
        self.tick_s = tick_s  # how often a process re-reads the figures while a dashboard is open
        self.thresholds = thresholds  # the defaults (CRM_DASHBOARD_THRESHOLDS); figures carry the effective
        self._sessions = sessions
        self._promises = promises
        self._clock = clock
        self._service_level_s = service_level_s
        self._yesterday: tuple[date, tuple[int, ...]] | None = None  # a finished day does not change

    def groups(self, actor: Actor) -> list[GroupChoice]:
        """The groups ``actor`` may watch: an admin every group, a supervisor the groups they lead."""
        actor.require(Role.SUPERVISOR, Role.ADMIN)
        query = select(UserGroup.id, UserGroup.name).order_by(UserGroup.name)
        if actor.role != Role.ADMIN:
            query = query.where(UserGroup.supervisor_id == actor.id)
        with self._sessions() as session:
            return [GroupChoice(i, name) for i, name in session.execute(query)]

    def figures(self, queues: Sequence[QueueSnapshot] = ()) -> DashboardFigures:
        """The office day so far, every operator and the team, and the colour thresholds (about ten
        statements, whatever the size)."""
        now = self._clock()
        day = now.astimezone(OFFICE_TZ).date()
        start, end = day_bounds(day)
        with self._sessions() as session:
            conn = session.connection()
            people = list(conn.execute(_operators()))
            activity = {r[0]: r for r in conn.execute(_activity(start, end))}
            changes = [Change(*r) for r in conn.execute(_changes(start, end))]
            calls = list(conn.execute(_calls(start, end)))
            yesterday = self._calls_yesterday(conn, day, start)
            made = list(conn.execute(_promises_made(start, end)))
            paid = list(conn.execute(_payments(start, end)))
            refusals = conn.execute(_refusals(start, end)).scalar_one()
            thresholds = effective(self.thresholds, saved(conn))  # «Пороги»: a save shows at the next tick
        promised = {f.operator_id: f for f in self._promises.figures(day)}
        wraps = wrap_ups(changes)
        rows = tuple(_row(p, activity.get(p[0]), promised.get(p[0]), wraps.get(p[0], [])) for p in people)
        states = states_by_hour(changes, {r.user_id: r.state for r in rows}, day, now)
        all_wraps = [s for seconds in wraps.values() for s in seconds]
        totals = self._call_totals(calls, now, average(all_wraps), refusals, paid)
        hours = Hours(
            calls_today=per_hour(r.started_at for r in calls),
            calls_yesterday=yesterday,
            promises=per_hour(r.at for r in made),
            promised=_sum_per_hour(made),
            collected=_sum_per_hour(paid),
            states=states,
        )
        return DashboardFigures(now, day, rows, totals, hours, tuple(queues), thresholds)

    def _calls_yesterday(self, conn: Connection, day: date, start: datetime) -> tuple[int, ...]:
        cached = self._yesterday
        if cached is not None and cached[0] == day:
            return cached[1]
        moments = conn.execute(
            select(Call.started_at).where(
                Call.started_at >= start - timedelta(days=1), Call.started_at < start
            )
        ).scalars()
        counts = per_hour(moments)
        self._yesterday = (day, counts)
        return counts

    def _call_totals(
        self, calls: list[Any], now: datetime, wrap_avg: int | None, refusals: int, paid: list[Any]
    ) -> CallTotals:
        limit = timedelta(seconds=self._service_level_s)
        inbound = [c for c in calls if c.direction == 'in']
        in_time = sum(
            1 for c in inbound if c.answered_at is not None and c.answered_at - c.started_at <= limit
        )
        abandoned = sum(1 for c in inbound if c.answered_at is None and c.ended_at is not None)
        counted = sum(
            1
            for c in inbound
            if c.answered_at is not None or c.ended_at is not None or now - c.started_at > limit
        )
        finished = sum(1 for c in inbound if c.answered_at is not None or c.ended_at is not None)
        talk = average(c.duration_s for c in calls if c.answered_at is not None and c.duration_s is not None)
        handle = None if talk is None else talk + (wrap_avg or 0)
        return CallTotals(
            inbound=len(inbound),
            answered_in_time=in_time,
            abandoned=abandoned,
            service_level=_percent(in_time, counted),
            abandoned_percent=_percent(abandoned, finished),
            handle_avg_s=handle,
            refusals=int(refusals),
            payments=sum((r.amount for r in paid), ZERO),
        )


def queue_status(session: Session, events: Sequence[Event]) -> Outcome:
    """``telephony.queue.status``: nothing is stored; every process's dashboards hear it on the fanout."""
    notices: list[Notification] = [
        QueueStatusChanged(e.queue, e.waiting, e.longest_wait_s, e.at)
        for e in events
        if isinstance(e, QueueStatus)
    ]
    return Outcome(notifications=notices)


def snapshot(notice: QueueStatusChanged) -> QueueSnapshot:
    return QueueSnapshot(notice.queue, notice.waiting, notice.longest_wait_s, notice.at)


# --- the statements ---------------------------------------------------------------------------------
def _operators() -> Any:
    return (
        select(
            User.id,
            User.full_name,
            User.group_id,
            UserGroup.name,
            OperatorStateRow.state,
            OperatorStateRow.reason,
            OperatorStateRow.since,
            OperatorStateRow.call_id,
            Borrower.id,
            Borrower.last_name,
            Borrower.first_name,
            Borrower.middle_name,
        )
        .select_from(User)
        .outerjoin(UserGroup, UserGroup.id == User.group_id)
        .outerjoin(OperatorStateRow, OperatorStateRow.user_id == User.id)
        .outerjoin(Call, Call.call_id == OperatorStateRow.call_id)
        .outerjoin(Borrower, Borrower.id == Call.borrower_id)
        .where(User.role == str(Role.OPERATOR), User.active.is_(True))
        .order_by(User.full_name, User.id)
    )


def _activity(start: datetime, end: datetime) -> Any:
    c = Communication
    call = c.channel.in_(CALL_CHANNELS)
    return (
        select(
            c.operator_id,
            func.count().filter(call, c.direction == 'in'),
            func.count().filter(call, c.direction == 'out'),
            func.count().filter(call, c.reached.is_(True)),
            func.avg(c.duration_s).filter(call, c.duration_s > 0),
            func.count().filter(c.channel == 'sms', c.direction == 'out'),
            func.count().filter(c.channel == 'email', c.direction == 'out'),
        )
        .where(c.started_at >= start, c.started_at < end, c.operator_id.is_not(None))
        .group_by(c.operator_id)
    )


def _changes(start: datetime, end: datetime) -> Any:
    h = OperatorStateChange
    return (
        select(h.user_id, h.at, h.from_state, h.to_state)
        .where(h.at >= start, h.at < end)
        .order_by(h.user_id, h.at, h.id)
    )


def _calls(start: datetime, end: datetime) -> Any:
    return select(Call.direction, Call.started_at, Call.answered_at, Call.ended_at, Call.duration_s).where(
        Call.started_at >= start, Call.started_at < end
    )


def _promises_made(start: datetime, end: datetime) -> Any:
    return select(Promise.created_at.label('at'), Promise.amount).where(
        Promise.status != str(PromiseStatus.CANCELLED), Promise.created_at >= start, Promise.created_at < end
    )


def _payments(start: datetime, end: datetime) -> Any:
    return select(Payment.at, Payment.amount).where(Payment.at >= start, Payment.at < end)


def _refusals(start: datetime, end: datetime) -> Any:
    """Messages the law refused plus dials it refused (``call.refused`` in the audit log, its index)."""
    o, a = OutboxMessage, AuditEntry
    messages = select(func.count()).where(o.status == 'refused', o.created_at >= start, o.created_at < end)
    dials = select(func.count()).where(a.action == 'call.refused', a.at >= start, a.at < end)
    return select(messages.scalar_subquery() + dials.scalar_subquery())


# --- rows -------------------------------------------------------------------------------------------
def _row(person: Any, activity: Any, promised: OperatorFigures | None, wraps: list[float]) -> OperatorRow:
    (user_id, name, group_id, group_name, state, reason, since, call_id, b_id, last, first, middle) = person
    borrower = ' '.join(p for p in (last, first, middle) if p) if b_id is not None else None
    row = OperatorRow(
        user_id=user_id,
        name=name,
        group_id=group_id,
        group_name=group_name,
        state=OperatorState(state) if state else OperatorState.OFFLINE,
        reason=reason,
        since=since,
        call_id=call_id,
        borrower_id=b_id,
        borrower_name=borrower,
        wrap_up_avg_s=average(wraps),
    )
    if activity is not None:
        _, calls_in, calls_out, reached, talk, sms, emails = activity
        talk_s = None if talk is None else round(float(talk))
        row = replace(row, calls_in=calls_in, calls_out=calls_out, reached=reached, talk_avg_s=talk_s)
        row = replace(row, sms=sms, emails=emails)
    if promised is not None:
        row = replace(
            row,
            promises=promised.promises,
            promised=promised.promised,
            collected=promised.collected,
            kept_percent=promised.kept_percent,
        )
    return row


def _sum_per_hour(rows: list[Any]) -> tuple[Decimal, ...]:
    sums = [ZERO] * 24
    for r in rows:
        sums[r.at.astimezone(OFFICE_TZ).hour] += r.amount
    return tuple(sums)


def _percent(part: int, whole: int) -> Decimal | None:
    return (Decimal(100) * part / whole).quantize(Decimal('0.1')) if whole else None
