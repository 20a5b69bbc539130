"""«Пороги» of «Мониторинг»: administrators save and reset a state's thresholds (audited, checked whole
before anything is written), supervisors may only look, and every process's next tick colours by them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import delete, select

from crm import bootstrap
from crm.config import Settings
from crm.db.models import AuditEntry, DashboardThreshold
from crm.domain import Role
from crm.domain.dashboard import DEFAULT_THRESHOLDS
from crm.domain.dashboard_thresholds import COLOURED_STATES, BadThreshold
from crm.domain.errors import AccessDenied
from crm.domain.operator_states import OperatorState
from crm.integrations.bus import RecordingBus
from crm.pages.dashboard_hub import DashboardHub
from crm.pages.live import LiveHub
from crm.services.auth import to_actor
from crm.services.dashboard_thresholds import DashboardThresholdsService
from tests.factories import make_user

S = OperatorState


@pytest.fixture(autouse=True)
def no_saved_thresholds(sessions) -> Iterator[None]:
    """The test database is shared: every test starts and ends with the defaults."""
    with sessions.begin() as session:
        session.execute(delete(DashboardThreshold))
    yield
    with sessions.begin() as session:
        session.execute(delete(DashboardThreshold))


@pytest.fixture
def admin(sessions):
    return to_actor(make_user(sessions, role=Role.ADMIN))


def audited(sessions, actor_id: int) -> list[tuple[str, str | None]]:
    with sessions() as session:
        query = select(AuditEntry.action, AuditEntry.details).where(
            AuditEntry.user_id == actor_id, AuditEntry.action.like('dashboard.%')
        )
        return [(action, details) for action, details in session.execute(query.order_by(AuditEntry.id))]


def test_every_coloured_state_starts_at_the_setting(sessions, clock) -> None:
    service = DashboardThresholdsService(sessions, {**DEFAULT_THRESHOLDS, S.TALKING: (1, 2, 3)}, clock=clock)
    supervisor = to_actor(make_user(sessions, role=Role.SUPERVISOR))
    lines = service.lines(supervisor)
    assert [line.state for line in lines] == list(COLOURED_STATES)
    talking = next(line for line in lines if line.state == S.TALKING)
    assert (talking.limits, talking.default, talking.changed, talking.label) == (
        (1, 2, 3),
        (1, 2, 3),
        False,
        'Разговор',
    )


def test_an_admin_saves_and_resets_a_state_audited(system, sessions, admin, clock) -> None:
    service = system.services.dashboard_thresholds
    line = service.save(admin, 'talking', 20, 40.0, '90')
    assert (line.state, line.limits, line.default, line.changed) == (
        S.TALKING,
        (20, 40, 90),
        (10, 60, 300),
        True,
    )
    assert (line.updated_by, line.updated_at) == (admin.full_name, clock())
    assert service.save(admin, 'talking', 20, 40, 90) == line  # the same again: nothing to record
    changed = service.save(admin, 'talking', 20, 50, 90)
    assert changed.limits == (20, 50, 90)
    with sessions() as session:
        row = session.get(DashboardThreshold, 'talking')
        assert row is not None and (row.warn_after, row.alert_after, row.critical_after) == (20, 50, 90)
        assert row.updated_by == admin.id

    back = service.reset(admin, 'talking')
    assert (back.limits, back.changed, back.updated_by) == ((10, 60, 300), False, None)
    assert service.reset(admin, 'talking') == back  # already the default: nothing to record
    with sessions() as session:
        assert session.get(DashboardThreshold, 'talking') is None
    assert audited(sessions, admin.id) == [
        ('dashboard.thresholds.save', '{"state": "talking", "before": "10/60/300", "after": "20/40/90"}'),
        ('dashboard.thresholds.save', '{"state": "talking", "before": "20/40/90", "after": "20/50/90"}'),
        ('dashboard.thresholds.reset', '{"state": "talking", "before": "20/50/90", "after": "10/60/300"}'),
    ]


def test_a_wrong_line_is_refused_whole_naming_the_field(system, sessions, admin) -> None:
    service = system.services.dashboard_thresholds
    service.save(admin, 'wrap_up', 1, 2, 3)
    for values, field in (((5, 4, 9), 'alert'), ((5, 6, 86_401), 'critical'), ((None, 6, 7), 'warn')):
        with pytest.raises(BadThreshold) as refused:
            service.save(admin, 'wrap_up', *values)
        assert refused.value.field == field
    with pytest.raises(BadThreshold, match='Не в сети'):
        service.save(admin, 'offline', 1, 2, 3)
    with sessions() as session:
        row = session.get(DashboardThreshold, 'wrap_up')
        assert row is not None and (row.warn_after, row.alert_after, row.critical_after) == (1, 2, 3)
        assert session.get(DashboardThreshold, 'offline') is None
    assert len(audited(sessions, admin.id)) == 1


@pytest.mark.parametrize('role', [Role.SUPERVISOR, Role.OPERATOR])
def test_only_admins_change_thresholds(system, sessions, role) -> None:
    service = system.services.dashboard_thresholds
    someone = to_actor(make_user(sessions, role=role))
    with pytest.raises(AccessDenied):
        service.save(someone, 'talking', 1, 2, 3)
    with pytest.raises(AccessDenied):
        service.reset(someone, 'talking')
    if role == Role.OPERATOR:
        with pytest.raises(AccessDenied):
            service.lines(someone)
    else:
        assert len(service.lines(someone)) == len(COLOURED_STATES)
    with sessions() as session:
        assert session.get(DashboardThreshold, 'talking') is None


async def test_the_next_tick_of_every_process_colours_by_a_save(system, engine, database_url, admin, clock):
    """Two systems on one database stand for two app processes: a save in one shows in the other's next
    tick, over the other's own default (its setting), without a restart."""
    other = bootstrap.build(
        Settings(database_url=database_url, dashboard_thresholds='ready:100/200/400'),
        engine=engine,
        bus=RecordingBus(),
        clock=clock,
    )
    hub = DashboardHub(other.services, LiveHub(), tick_s=3600)
    await hub.tick()
    assert hub.figures is not None
    assert hub.figures.thresholds[S.READY] == (100, 200, 400)
    assert hub.figures.thresholds[S.TALKING] == DEFAULT_THRESHOLDS[S.TALKING]

    system.services.dashboard_thresholds.save(admin, 'ready', 1, 2, 3)
    await hub.tick()
    assert hub.figures.thresholds[S.READY] == (1, 2, 3)
    ready = next(line for line in other.services.dashboard_thresholds.lines(admin) if line.state == S.READY)
    assert (ready.limits, ready.default) == ((1, 2, 3), (100, 200, 400))

    system.services.dashboard_thresholds.reset(admin, 'ready')
    await hub.tick()
    assert hub.figures.thresholds[S.READY] == (100, 200, 400)
