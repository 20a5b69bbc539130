"""The administrator's list of call results, and what operators are offered from it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm.db.models import User
from crm.domain import Role
from crm.domain.errors import AccessDenied, NotFound, ServiceError
from crm.integrations.bus import InProcessBus
from crm.services.auth import to_actor
from crm.services.calls import CallService
from crm.services.compliance import ComplianceService
from crm.services.result_codes import ResultCodeRow, ResultCodeService
from tests.factories import make_user, unique


@pytest.fixture
def admin(sessions):
    with sessions() as session:
        return to_actor(session.scalar(select(User).where(User.login == 'admin')))


def test_defaults_are_the_issue_list(sessions, admin) -> None:
    names = [row.name for row in ResultCodeService(sessions).all(admin)]
    assert names[:8] == [
        'Обещание оплаты',
        'Отказ от оплаты',
        'Неверный номер',
        'Не дозвонились',
        'Перезвонить',
        'Третье лицо',
        'Консультация',
        'Оплачено',
    ]


def test_admin_adds_and_retires_a_result_operators_see_only_active(sessions, admin, clock) -> None:
    service = ResultCodeService(sessions)
    calls = CallService(sessions, InProcessBus(), ComplianceService(sessions, clock=clock), clock=clock)
    code = f'court_{unique()}'
    service.create(admin, ResultCodeRow(code, 'Направлено в суд', True, False, False, True))
    assert code in [o.code for o in calls.result_options()]
    service.save(admin, ResultCodeRow(code, 'Направлено в суд', True, False, False, False))
    assert code not in [o.code for o in calls.result_options()]
    assert code in [r.code for r in service.all(admin)]  # kept for the history that refers to it


@pytest.mark.parametrize(
    ('row', 'message'),
    [
        (ResultCodeRow('Bad Code', 'x', True, False, False, True), 'латинские'),
        (ResultCodeRow('ok_code', '  ', True, False, False, True), 'название'),
        (ResultCodeRow('ok_code', 'x', True, True, True, True), 'и обещание, и обратный'),
    ],
)
def test_bad_result_definitions_are_refused(sessions, admin, row, message) -> None:
    with pytest.raises(ServiceError, match=message):
        ResultCodeService(sessions).create(admin, row)


def test_a_new_result_with_a_code_that_exists_is_refused_and_nothing_changes(sessions, admin) -> None:
    service = ResultCodeService(sessions)
    before = {r.code: r for r in service.all(admin)}['promise']
    with pytest.raises(ServiceError, match='уже есть'):
        service.create(admin, ResultCodeRow('promise', 'Другое название', True, False, False, True))
    assert {r.code: r for r in service.all(admin)}['promise'] == before
    with pytest.raises(NotFound):
        service.save(admin, ResultCodeRow('no_such_code', 'Новый', True, False, False, True))


def test_only_admins_edit_results(sessions) -> None:
    supervisor = to_actor(make_user(sessions, role=Role.SUPERVISOR))
    with pytest.raises(AccessDenied):
        ResultCodeService(sessions).all(supervisor)
