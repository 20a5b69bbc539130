"""Operator states: the operator's Готов / Перерыв, a supervisor's forced break or logout, presence, and
the worker that applies the time-outs.

The rules are ``crm.domain.operator_states``; the rows and the set-wise moves ``operator_state_store``.
The call path moves the states itself, in its own transaction (``call_events``, ``calls``). Every change
is published after its commit as ``OperatorStateChanged`` on the UI fanout, so every process — every tab
and, later, every dashboard — knows every operator's state without asking the database.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from crm.db.models import OperatorStateRow, User, UserGroup
from crm.domain import Role
from crm.domain.actor import Actor
from crm.domain.clock import Clock, system_clock
from crm.domain.errors import AccessDenied, NotFound, ServiceError
from crm.domain.operator_states import (
    FORCED,
    STATE_COLORS,
    OperatorEvent,
    OperatorState,
    Refusal,
    Status,
    gone,
    reason_label,
    wrap_up_over,
)
from crm.services import audit
from crm.services.notifier import Notifier
from crm.services.operator_state_store import Move, move, touch
from crm.services.periodic import PeriodicWorker

log = logging.getLogger(__name__)

WRAP_UP_TIMEOUT_S = 120.0  # CRM_WRAP_UP_TIMEOUT_S
OFFLINE_AFTER_S = 60.0  # CRM_OFFLINE_AFTER_S
PRESENCE_S = 20.0  # how often an open tab says it is there: well inside OFFLINE_AFTER_S
# A presence beat waits at most this long for the operator's row: a call's transaction holding it (the
# events of a busy floor are applied in batches) would otherwise keep a worker thread of the page
# waiting up to the statement time-out, and a few such beats left no thread for the pages. A beat given
# up costs nothing: the next one comes in PRESENCE_S, and the row is gone only after OFFLINE_AFTER_S.
PRESENCE_LOCK_WAIT_MS = 300
LOCK_NOT_AVAILABLE = '55P03'
WORKER_INTERVAL_S = 5.0
BATCH = 200


@dataclass(frozen=True)
class OperatorStatus:
    """An operator's state as the header's chip (and the dashboard) shows it."""

    user_id: int
    state: OperatorState
    reason: str | None
    since: datetime
    call_id: str | None

    @property
    def label(self) -> str:
        return reason_label(self.state, self.reason)

    @property
    def color(self) -> str:
        return STATE_COLORS[self.state]


class OperatorStateService:
    def __init__(
        self, sessions: sessionmaker[Session], notifier: Notifier, clock: Clock = system_clock
    ) -> None:
        self._sessions = sessions
        self._notifier = notifier
        self._clock = clock

    def current(self, actor: Actor) -> OperatorStatus:
        """The actor's state now (Не в сети when they never had one)."""
        with self._sessions() as session:
            row = session.get(OperatorStateRow, actor.id)
            if row is None:
                return OperatorStatus(actor.id, OperatorState.OFFLINE, None, self._clock(), None)
            return _status(row)

    def everyone(self) -> list[OperatorStatus]:
        """Every operator's state (a dashboard's first draw; then it follows the notifications)."""
        with self._sessions() as session:
            rows = session.scalars(select(OperatorStateRow).order_by(OperatorStateRow.user_id))
            return [_status(row) for row in rows]

    def set_ready(self, actor: Actor) -> OperatorStatus:
        return self._own(actor, OperatorEvent.SET_READY)

    def set_break(self, actor: Actor, reason: str) -> OperatorStatus:
        return self._own(actor, OperatorEvent.SET_BREAK, reason)

    def force_break(self, actor: Actor, user_id: int, reason: str) -> OperatorStatus:
        """A supervisor or an admin puts an operator on a break (audited; the operator is told by whom)."""
        return self._forced(actor, user_id, OperatorEvent.FORCE_BREAK, reason)

    def force_logout(self, actor: Actor, user_id: int) -> OperatorStatus:
        """A supervisor or an admin makes an operator Не в сети (audited); connecting again does not make
        them Готов: the operator presses «Готов» themselves."""
        return self._forced(actor, user_id, OperatorEvent.FORCE_LOGOUT, None)

    def seen(self, actor: Actor) -> None:
        """A tab of the actor's is open (the workspace's presence timer): one UPDATE; an operator who was
        Не в сети (not by a supervisor) becomes Готов."""
        if actor.role != Role.OPERATOR:
            return
        try:
            with self._sessions.begin() as session:
                if session.get_bind().dialect.name == 'postgresql':
                    session.execute(text(f"SET LOCAL lock_timeout = '{PRESENCE_LOCK_WAIT_MS}ms'"))
                found = touch(session, actor.id)
                if found is not None and (found[0] != OperatorState.OFFLINE or found[1] == FORCED):
                    return
                moved = move(session, [Move(actor.id, OperatorEvent.CONNECT)], seen=True)
        except OperationalError as error:
            if getattr(error.orig, 'sqlstate', None) != LOCK_NOT_AVAILABLE:
                raise
            log.info('presence of user %s: the row is busy, the next beat records it', actor.id)
            return
        self._notifier.publish(moved.notifications)

    def _own(self, actor: Actor, event: OperatorEvent, reason: str | None = None) -> OperatorStatus:
        with self._sessions.begin() as session:
            moved = move(session, [Move(actor.id, event, reason=reason)], seen=True)
            status = _accepted(moved.results[0])
        self._notifier.publish(moved.notifications)
        return OperatorStatus(actor.id, status.state, status.reason, status.since, status.call_id)

    def _forced(self, actor: Actor, user_id: int, event: OperatorEvent, reason: str | None) -> OperatorStatus:
        actor.require(Role.SUPERVISOR, Role.ADMIN)
        with self._sessions.begin() as session:
            operator = session.get(User, user_id)
            if operator is None:
                raise NotFound('Сотрудник не найден')
            if actor.role == Role.SUPERVISOR and not leads_group(session, actor.id, operator.group_id):
                raise AccessDenied('Руководитель группы управляет только операторами своей группы')
            moved = move(
                session, [Move(user_id, event, reason=reason, by_user_id=actor.id)], forced_by=actor.full_name
            )
            status = _accepted(moved.results[0])
            audit.record(
                session, f'operator.{event.value}', user_id=actor.id, operator_id=user_id, reason=reason
            )
        self._notifier.publish(moved.notifications)
        return OperatorStatus(user_id, status.state, status.reason, status.since, status.call_id)


def leads_group(session: Session, supervisor_id: int, group_id: int | None) -> bool:
    """Whether the supervisor leads the group (an operator without a group is nobody's to order)."""
    if group_id is None:
        return False
    led = session.scalar(select(UserGroup.supervisor_id).where(UserGroup.id == group_id))
    return led == supervisor_id


class OperatorStateWorker(PeriodicWorker):
    """In every process: ends a wrap-up past its time-out (→ Готов) and makes an operator whose tabs have
    not been seen for ``offline_after_s`` Не в сети. Rows another process is on are skipped (SKIP LOCKED)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        notifier: Notifier,
        *,
        clock: Clock = system_clock,
        wrap_up_timeout_s: float = WRAP_UP_TIMEOUT_S,
        offline_after_s: float = OFFLINE_AFTER_S,
        interval: float = WORKER_INTERVAL_S,
    ) -> None:
        super().__init__(name='operator-states', interval=interval)
        self._sessions = sessions
        self._notifier = notifier
        self._clock = clock
        self._wrap_up_s = wrap_up_timeout_s
        self._offline_s = offline_after_s

    def run_once(self) -> int:
        now = self._clock()
        with self._sessions.begin() as session:
            moves = [m for row in self._due(session, now) if (m := self._timeout(row, now)) is not None]
            moved = move(session, moves)
        self._notifier.publish(moved.notifications)
        return len(moved.notifications)

    def _due(self, session: Session, now: datetime) -> list[OperatorStateRow]:
        row = OperatorStateRow
        away = (OperatorState.READY, OperatorState.BREAK, OperatorState.WRAP_UP)
        unseen = now - timedelta(seconds=self._offline_s)
        query = (
            select(row)
            .where(
                or_(
                    and_(
                        row.state == OperatorState.WRAP_UP,
                        row.since <= now - timedelta(seconds=self._wrap_up_s),
                    ),
                    and_(
                        row.state.in_(away),
                        or_(
                            row.last_seen_at <= unseen, and_(row.last_seen_at.is_(None), row.since <= unseen)
                        ),
                    ),
                )
            )
            .order_by(row.user_id)
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        )
        return list(session.scalars(query))

    def _timeout(self, row: OperatorStateRow, now: datetime) -> Move | None:
        status = Status(OperatorState(row.state), row.since, row.reason, row.call_id)
        seen = row.last_seen_at or row.since
        if gone(status, seen, now, self._offline_s):
            return Move(row.user_id, OperatorEvent.DISCONNECT_TIMEOUT)
        if wrap_up_over(status, now, self._wrap_up_s):
            return Move(row.user_id, OperatorEvent.WRAP_UP_TIMEOUT)
        return None


def _accepted(result: Status | Refusal) -> Status:
    if isinstance(result, Refusal):
        raise ServiceError(result.message)
    return result


def _status(row: OperatorStateRow) -> OperatorStatus:
    return OperatorStatus(row.user_id, OperatorState(row.state), row.reason, row.since, row.call_id)
