"""«Портфель»: which operator works which borrowers (``borrowers.assigned_operator_id``); administrators.

An operation picks borrowers (by ids, or a segment of «Рассылки» narrowed by their current operator),
decides each one's new operator in Python (evenly: round robin by count; by load: the operator with the
fewest assigned overdue borrowers first, counting what this operation gave), and writes set-wise: one
``UPDATE … WHERE id IN (…)`` per target operator and batch, one multi-row insert of ``portfolio_moves``
(the per-borrower trail) and ONE audit entry with the counts and parameters, all in one transaction. The
selection is locked (``FOR UPDATE`` on PostgreSQL), so two operations at once do not interleave.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast
from uuid import uuid4

from sqlalchemy import ColumnElement, Table, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from crm.db.models import Borrower, PortfolioMove, User
from crm.domain import Role
from crm.domain.actor import Actor
from crm.domain.clock import Clock
from crm.domain.errors import ServiceError
from crm.services import audit
from crm.services.segments import Segment, segment_conditions

_borrowers = cast(Table, Borrower.__table__)
BATCH = 5000  # ids in one UPDATE's IN list
MAX_IDS = 10_000  # borrowers chosen by hand in one operation
UNASSIGNED = 0  # ``owner``: borrowers nobody works


class Mode(StrEnum):
    EVEN = 'even'  # round robin by count
    LOAD = 'load'  # fewest assigned overdue borrowers first


MODE_LABELS = {Mode.EVEN: 'Поровну', Mode.LOAD: 'По нагрузке'}


@dataclass(frozen=True)
class OperatorLoad:
    id: int
    full_name: str
    active: bool
    assigned: int  # borrowers assigned (not archived)
    overdue: int  # of them with days past due


@dataclass(frozen=True)
class PortfolioResult:
    operation_id: str
    selected: int  # borrowers the operation chose
    moved: int  # of them that changed operator
    per_operator: tuple[tuple[int, int], ...]  # (operator id, borrowers given), by id


class PortfolioService:
    def __init__(self, sessions: sessionmaker[Session], *, clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock

    def operators(self, actor: Actor) -> list[OperatorLoad]:
        """Every operator with their portfolio's size: what the page offers as targets."""
        actor.require(Role.ADMIN)
        with self._sessions() as session:
            return [
                OperatorLoad(id_, name, active, assigned, overdue)
                for id_, name, active, assigned, overdue in session.execute(_LOADS)
            ]

    def cities(self, actor: Actor) -> list[str]:
        """The cities borrowers live in: what the segment form offers."""
        actor.require(Role.ADMIN)
        with self._sessions() as session:
            return list(session.scalars(select(_borrowers.c.city).distinct().order_by(_borrowers.c.city)))

    def count(self, actor: Actor, segment: Segment, owner: int | None = None) -> int:
        """How many borrowers the segment holds (``owner``: of one operator's, or UNASSIGNED)."""
        actor.require(Role.ADMIN)
        where = _where(segment.checked(), owner, self._clock)
        with self._sessions() as session:
            return session.execute(select(func.count()).select_from(_borrowers).where(*where)).scalar_one()

    def assign(
        self,
        actor: Actor,
        operator_id: int,
        *,
        borrower_ids: Sequence[int] | None = None,
        segment: Segment | None = None,
        owner: int | None = None,
    ) -> PortfolioResult:
        """Give the chosen borrowers (by ids, or a segment) to one operator."""
        actor.require(Role.ADMIN)
        if (borrower_ids is None) == (segment is None):
            raise ServiceError('Выберите заёмщиков: списком или сегментом')
        if borrower_ids is not None and not 0 < len(set(borrower_ids)) <= MAX_IDS:
            raise ServiceError(f'Выберите от 1 до {MAX_IDS} заёмщиков')
        with self._sessions.begin() as session:
            _check_operators(session, [operator_id])
            if borrower_ids is not None:
                rows = _selected(session, [_borrowers.c.id.in_(sorted(set(borrower_ids)))])
                params: dict[str, Any] = {'borrowers': len(set(borrower_ids))}
            else:
                assert segment is not None
                rows = _selected(session, _where(segment.checked(), owner, self._clock))
                params = _segment_params(segment, owner)
            plan = {row.id: operator_id for row in rows}
            return self._apply(session, actor, 'portfolio.assign', rows, plan, to=[operator_id], **params)

    def distribute(
        self,
        actor: Actor,
        segment: Segment,
        operator_ids: Sequence[int],
        mode: Mode,
        *,
        owner: int | None = None,
    ) -> PortfolioResult:
        """Spread a segment over several operators, evenly or by load."""
        actor.require(Role.ADMIN)
        targets = _targets(operator_ids)
        with self._sessions.begin() as session:
            _check_operators(session, targets)
            rows = _selected(session, _where(segment.checked(), owner, self._clock))
            plan = _plan(session, rows, targets, Mode(mode))
            return self._apply(
                session,
                actor,
                'portfolio.distribute',
                rows,
                plan,
                to=targets,
                mode=Mode(mode).value,
                **_segment_params(segment, owner),
            )

    def hand_over(self, actor: Actor, leaving_id: int, operator_ids: Sequence[int]) -> PortfolioResult:
        """Move every borrower of a leaving operator to others, evenly (archived ones too)."""
        actor.require(Role.ADMIN)
        targets = _targets(operator_ids)
        if leaving_id in targets:
            raise ServiceError('Передать портфель можно только другим операторам')
        with self._sessions.begin() as session:
            if session.get(User, leaving_id) is None:
                raise ServiceError('Сотрудник не найден')
            _check_operators(session, targets)
            rows = _selected(session, [_borrowers.c.assigned_operator_id == leaving_id])
            plan = _plan(session, rows, targets, Mode.EVEN)
            return self._apply(
                session, actor, 'portfolio.hand_over', rows, plan, to=targets, leaving_id=leaving_id
            )

    def _apply(
        self,
        session: Session,
        actor: Actor,
        action: str,
        rows: Sequence[Any],
        plan: dict[int, int],
        *,
        to: Sequence[int],
        **params: Any,
    ) -> PortfolioResult:
        operation = uuid4().hex
        moves = [(row.id, row.assigned_operator_id, plan[row.id]) for row in rows]
        moves = [move for move in moves if move[1] != move[2]]
        by_target: dict[int, list[int]] = {}
        for borrower_id, _from, target in moves:
            by_target.setdefault(target, []).append(borrower_id)
        connection = session.connection()
        for target, ids in by_target.items():
            for start in range(0, len(ids), BATCH):
                chunk = ids[start : start + BATCH]
                connection.execute(
                    update(_borrowers).where(_borrowers.c.id.in_(chunk)).values(assigned_operator_id=target)
                )
        now = self._clock()
        if moves:
            connection.execute(
                insert(cast(Table, PortfolioMove.__table__)),
                [
                    {
                        'operation_id': operation,
                        'borrower_id': borrower_id,
                        'from_operator_id': before,
                        'to_operator_id': target,
                        'at': now,
                        'by_user_id': actor.id,
                    }
                    for borrower_id, before, target in moves
                ],
            )
        given = Counter(plan.values())
        per_operator = tuple(sorted((target, given.get(target, 0)) for target in to))
        audit.record(
            session,
            action,
            user_id=actor.id,
            operation_id=operation,
            selected=len(rows),
            moved=len(moves),
            operators={str(target): n for target, n in per_operator},
            **params,
        )
        return PortfolioResult(operation, len(rows), len(moves), per_operator)


_active_borrower = _borrowers.c.archived.is_(False)
_LOADS = (
    select(
        User.id,
        User.full_name,
        User.active,
        func.count(_borrowers.c.id),
        func.count(_borrowers.c.id).filter(_borrowers.c.days_past_due > 0),
    )
    .outerjoin(_borrowers, (_borrowers.c.assigned_operator_id == User.id) & _active_borrower)
    .where(User.role == Role.OPERATOR)
    .group_by(User.id, User.full_name, User.active)
    .order_by(User.full_name, User.id)
)


def _where(segment: Segment, owner: int | None, clock: Clock) -> list[ColumnElement[bool]]:
    conditions = segment_conditions(segment, clock())
    if owner == UNASSIGNED:
        conditions.append(_borrowers.c.assigned_operator_id.is_(None))
    elif owner is not None:
        conditions.append(_borrowers.c.assigned_operator_id == owner)
    return conditions


def _segment_params(segment: Segment, owner: int | None) -> dict[str, Any]:
    return {'segment': segment.describe(), 'owner': owner}


def _selected(session: Session, where: Iterable[ColumnElement[bool]]) -> Sequence[Any]:
    """The chosen borrowers (id, current operator, days past due), locked, by id."""
    b = _borrowers.c
    query = select(b.id, b.assigned_operator_id, b.days_past_due).where(*where).order_by(b.id)
    return session.execute(query.with_for_update(of=_borrowers)).all()


def _targets(operator_ids: Sequence[int]) -> list[int]:
    targets = sorted(set(operator_ids))
    if not targets:
        raise ServiceError('Выберите хотя бы одного оператора')
    return targets


def _check_operators(session: Session, ids: Sequence[int]) -> None:
    found = session.scalars(
        select(User.id).where(User.id.in_(ids), User.role == Role.OPERATOR, User.active.is_(True))
    ).all()
    if len(found) != len(set(ids)):
        raise ServiceError('Портфель можно передать только действующим операторам')


def _plan(session: Session, rows: Sequence[Any], targets: list[int], mode: Mode) -> dict[int, int]:
    """Each chosen borrower's new operator."""
    if mode is Mode.EVEN:
        return {row.id: targets[i % len(targets)] for i, row in enumerate(rows)}
    # by load: the chosen borrowers no longer count for whoever has them now; the most overdue go first
    b = _borrowers.c
    counted = select(b.assigned_operator_id, func.count()).where(
        b.assigned_operator_id.in_(targets), b.days_past_due > 0, _active_borrower
    )
    load = Counter({target: 0 for target in targets})
    load.update({op: n for op, n in session.execute(counted.group_by(b.assigned_operator_id))})
    for row in rows:
        if row.assigned_operator_id in load and row.days_past_due > 0:
            load[row.assigned_operator_id] -= 1
    heap = [(n, target) for target, n in load.items()]
    heapq.heapify(heap)
    plan = {}
    for row in sorted(rows, key=lambda r: (-r.days_past_due, r.id)):
        n, target = heapq.heappop(heap)
        plan[row.id] = target
        heapq.heappush(heap, (n + 1, target))
    return plan
