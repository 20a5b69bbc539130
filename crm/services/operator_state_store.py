"""Operator states in the database: moves applied set-wise in the caller's transaction.

The call path calls ``move`` with its session (a ring, the answer, the end …), so the state commits with
the call; its cost on a ring does not grow with the run: one ``SELECT … FOR UPDATE`` of the operators'
rows (in user order: two runs lock alike), one UPDATE and one INSERT into the history, each for all rows
at once — and nothing more when nothing changed. The caller publishes the notifications after its commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from crm.db.engine import session_now
from crm.db.models import OperatorStateChange, OperatorStateRow
from crm.domain.notifications import OperatorStateChanged
from crm.domain.operator_states import OperatorEvent, OperatorState, Refusal, Status, apply

_states = cast(Table, OperatorStateRow.__table__)
_changes = cast(Table, OperatorStateChange.__table__)
# Built once: the ring path runs them, its rows bound at execution.
SELECT_FOR_UPDATE = (
    select(_states.c.user_id, _states.c.state, _states.c.since, _states.c.reason, _states.c.call_id)
    .where(_states.c.user_id.in_(bindparam('ids', expanding=True)))
    .order_by(_states.c.user_id)
    .with_for_update()
)
UPDATE_STATES = (
    update(_states)
    .where(_states.c.user_id == bindparam('uid'))
    .values(
        state=bindparam('state'),
        reason=bindparam('reason'),
        since=bindparam('since'),
        call_id=bindparam('call_id'),
        updated_at=bindparam('now'),
    )
)
INSERT_STATES = insert(_states)
INSERT_CHANGES = insert(_changes)
SEEN = (
    update(_states)
    .where(_states.c.user_id == bindparam('uid'))
    .values(last_seen_at=bindparam('now'))
    .returning(_states.c.state, _states.c.reason)
)


@dataclass(frozen=True)
class Move:
    """One event for one operator (``by_user_id``: the supervisor or admin who forced it)."""

    user_id: int
    event: OperatorEvent
    call_id: str | None = None
    reason: str | None = None
    by_user_id: int | None = None


@dataclass
class Moved:
    """What ``move`` made of its moves: each one's result, in order, and what to tell the screens."""

    results: list[Status | Refusal] = field(default_factory=list)
    notifications: list[OperatorStateChanged] = field(default_factory=list)


def move(
    session: Session, moves: Sequence[Move], *, forced_by: str | None = None, seen: bool = False
) -> Moved:
    """Apply ``moves`` (several may name one operator: each sees the one before); an operator without a
    row starts Не в сети. ``seen``: a new row's tab is open now (``last_seen_at``)."""
    moved = Moved()
    if not moves:
        return moved
    now = session_now(session)
    connection = session.connection()
    ids = sorted({m.user_id for m in moves})
    current = {
        row.user_id: Status(OperatorState(row.state), row.since, row.reason, row.call_id)
        for row in connection.execute(SELECT_FOR_UPDATE, {'ids': ids})
    }
    before = dict(current)
    history = []
    for m in moves:
        known = m.user_id in current
        status = current.get(m.user_id) or Status(OperatorState.OFFLINE, now)
        result = apply(status, m.event, now, reason=m.reason, call_id=m.call_id)
        moved.results.append(result)
        if isinstance(result, Refusal) or result == status:
            continue
        current[m.user_id] = result
        if (result.state, result.reason, result.since) != (status.state, status.reason, status.since):
            history.append(_change(m, status if known else None, result))
    changed = {uid: s for uid, s in current.items() if before.get(uid) != s}
    if not changed:
        return moved
    rows = [_row(uid, s, now) for uid, s in changed.items() if uid in before]
    if rows:
        connection.execute(UPDATE_STATES, rows)
    fresh = [
        {
            'user_id': uid,
            'state': s.state,
            'reason': s.reason,
            'since': s.since,
            'call_id': s.call_id,
            'updated_at': now,
            'last_seen_at': now if seen else None,
        }
        for uid, s in changed.items()
        if uid not in before
    ]
    if fresh:
        connection.execute(INSERT_STATES, fresh)
    if history:
        connection.execute(INSERT_CHANGES, history)
    moved.notifications = [notification(uid, s, forced_by) for uid, s in changed.items()]
    return moved


def touch(session: Session, user_id: int) -> tuple[OperatorState, str | None] | None:
    """Mark a tab of the operator's seen now: their state and its reason, None when they have no row."""
    row = session.connection().execute(SEEN, {'uid': user_id, 'now': session_now(session)}).first()
    return (OperatorState(row.state), row.reason) if row is not None else None


def notification(user_id: int, status: Status, forced_by: str | None = None) -> OperatorStateChanged:
    return OperatorStateChanged(
        user_id=user_id,
        state=status.state,
        reason=status.reason,
        since=status.since,
        call_id=status.call_id,
        forced_by=forced_by,
    )


def _row(user_id: int, status: Status, now: datetime) -> dict[str, object]:
    return {
        'uid': user_id,
        'state': status.state,
        'reason': status.reason,
        'since': status.since,
        'call_id': status.call_id,
        'now': now,
    }


def _change(m: Move, before: Status | None, after: Status) -> dict[str, object]:
    return {
        'user_id': m.user_id,
        'at': after.since,
        'from_state': before.state if before is not None else None,
        'to_state': after.state,
        'reason': after.reason,
        'call_id': after.call_id,
        'by_user_id': m.by_user_id,
    }


def on_calls(
    session: Session, calls: Sequence[tuple[int | None, OperatorEvent, str]]
) -> list[OperatorStateChanged]:
    """The call path's hook: (operator, event, call id) for each call that moved; the states move in the
    caller's transaction, what a state does not allow leaves it as it is (a second ring while talking)."""
    moves = [Move(user_id, event, call_id) for user_id, event, call_id in calls if user_id is not None]
    return move(session, moves).notifications
