"""«Пороги» of «Мониторинг»: the colour thresholds an administrator changes per operator state.

A saved state is a row of ``dashboard_thresholds``; a state with no row keeps its default (the setting
``CRM_DASHBOARD_THRESHOLDS``). Nothing is cached: ``DashboardService.figures`` reads the rows with the
tick's other statements (``saved``, one statement) and carries the effective thresholds in its figures, so
a save colours every process's dashboards at their next tick, without a restart. Administrators save and
reset (audited as 'dashboard.thresholds.save' and 'dashboard.thresholds.reset'); supervisors may look.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker

from crm.db.models import DashboardThreshold, User
from crm.db.upsert import insert_ignoring_conflicts
from crm.domain import Role
from crm.domain.actor import Actor
from crm.domain.clock import Clock, system_clock
from crm.domain.dashboard import DEFAULT_THRESHOLDS, Thresholds
from crm.domain.dashboard_thresholds import COLOURED_STATES, Limits, check, coloured_state, text
from crm.domain.operator_states import OperatorState
from crm.services import audit

T = DashboardThreshold
_SAVED = select(T.state, T.warn_after, T.alert_after, T.critical_after)  # built once: every tick runs it


@dataclass(frozen=True)
class ThresholdLine:
    """One state's line of the dialog."""

    state: OperatorState
    limits: Limits  # what colours the rows now
    default: Limits  # what «По умолчанию» gives (the setting)
    changed: bool  # an administrator's row rather than the default
    updated_by: str | None = None  # the administrator's name
    updated_at: datetime | None = None

    @property
    def label(self) -> str:
        return self.state.label


def saved(connection: Connection) -> dict[str, Limits]:
    """The administrators' rows by state (one statement; the tick's and the dialog's read)."""
    return {state: (a, b, c) for state, a, b, c in connection.execute(_SAVED)}


class DashboardThresholdsService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        defaults: Thresholds = DEFAULT_THRESHOLDS,
        *,
        clock: Clock = system_clock,
    ) -> None:
        self.defaults = defaults  # CRM_DASHBOARD_THRESHOLDS over DEFAULT_THRESHOLDS
        self._sessions = sessions
        self._clock = clock

    def lines(self, actor: Actor) -> list[ThresholdLine]:
        """Every coloured state, as it is now (supervisors and admins)."""
        actor.require(Role.SUPERVISOR, Role.ADMIN)
        query = select(T, User.full_name).outerjoin(User, User.id == T.updated_by)
        with self._sessions() as session:
            rows = {row.state: (row, name) for row, name in session.execute(query)}
            result = []
            for state in COLOURED_STATES:
                found = rows.get(state)
                if found is None:
                    result.append(ThresholdLine(state, self._default(state), self._default(state), False))
                else:
                    result.append(self._line(*found))
            return result

    def save(self, actor: Actor, state: str, warn: object, alert: object, critical: object) -> ThresholdLine:
        """One state's three thresholds (admins), checked whole before anything is written; the same values
        as now change nothing and write no audit entry."""
        actor.require(Role.ADMIN)
        found, limits = check(state, warn, alert, critical)
        values = {
            'state': found.value,
            'warn_after': limits[0],
            'alert_after': limits[1],
            'critical_after': limits[2],
            'updated_by': actor.id,
            'updated_at': self._clock(),
        }
        with self._sessions.begin() as session:
            row = _locked(session, found)
            before = _limits(row) if row is not None else self._default(found)
            if before == limits:
                return self._read(session, found)
            if row is None and not insert_ignoring_conflicts(session, T, [values], T.state):
                row = _locked(session, found)  # another save of this state came first: this one follows
                before = _limits(row) if row is not None else before
            if row is not None:
                for key, value in values.items():
                    setattr(row, key, value)
            audit.record(
                session,
                'dashboard.thresholds.save',
                user_id=actor.id,
                state=found.value,
                before=text(before),
                after=text(limits),
            )
            session.flush()
            return self._read(session, found)

    def reset(self, actor: Actor, state: str) -> ThresholdLine:
        """Back to the default (admins); a state already at its default writes no audit entry."""
        actor.require(Role.ADMIN)
        found = coloured_state(state)
        with self._sessions.begin() as session:
            row = _locked(session, found)
            if row is not None:
                audit.record(
                    session,
                    'dashboard.thresholds.reset',
                    user_id=actor.id,
                    state=found.value,
                    before=text(_limits(row)),
                    after=text(self._default(found)),
                )
                session.delete(row)
                session.flush()
            return self._read(session, found)

    def _default(self, state: OperatorState) -> Limits:
        return self.defaults.get(state) or DEFAULT_THRESHOLDS[state]

    def _read(self, session: Session, state: OperatorState) -> ThresholdLine:
        found = session.execute(
            select(T, User.full_name).outerjoin(User, User.id == T.updated_by).where(T.state == state.value)
        ).first()
        if found is None:
            return ThresholdLine(state, self._default(state), self._default(state), False)
        return self._line(*found)

    def _line(self, row: DashboardThreshold, name: str | None) -> ThresholdLine:
        state = OperatorState(row.state)
        return ThresholdLine(state, _limits(row), self._default(state), True, name, row.updated_at)


def _locked(session: Session, state: OperatorState) -> DashboardThreshold | None:
    return session.scalars(select(T).where(T.state == state.value).with_for_update()).one_or_none()


def _limits(row: DashboardThreshold) -> Limits:
    return (row.warn_after, row.alert_after, row.critical_after)
