"""«Пользователи»: create / edit with duplicates refused by name, block ends sessions, reset → must change
→ the middleware leads to /password, unlock lets a locked user in, admins only, every change audited
without the password; groups and their supervisors."""

from __future__ import annotations

import json

import pytest
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from fastapi.testclient import TestClient
from sqlalchemy import select

from crm.db.models import AuditEntry, User, WebSession
from crm.domain import Role
from crm.domain.errors import AccessDenied, LoginFailed, ServiceError
from crm.domain.password_policy import PasswordRejected
from crm.pages.session import COOKIE, AuthMiddleware
from crm.services.auth import to_actor
from crm.services.users import UserDraft
from tests.factories import make_user, unique

GOOD = 'Прочный-пароль-7'


@pytest.fixture
def services(system):
    return system.services


@pytest.fixture
def admin(sessions):
    return to_actor(make_user(sessions, role=Role.ADMIN))


def draft(**changes) -> UserDraft:
    n = unique()
    fields = {
        'login': f'new_user_{n}',
        'full_name': f'Новый Сотрудник {n}',
        'role': Role.OPERATOR,
        'email': f'new_user_{n}@lender.example',
        'extension': f'7{n:04d}',
    }
    fields.update(changes)
    return UserDraft(**fields)


def audit_of(sessions, action: str) -> list[dict]:
    with sessions() as session:
        rows = session.scalars(select(AuditEntry.details).where(AuditEntry.action == action)).all()
    return [json.loads(row) for row in rows if row]


def test_create_gives_a_password_to_change_and_is_audited_without_it(services, sessions, admin) -> None:
    created = services.users.create(admin, draft(full_name='  Петрова   Анна  '))
    assert created.generated and len(created.password) >= 12
    assert created.user.full_name == 'Петрова Анна' and created.user.must_change_password
    actor = services.auth.authenticate(created.user.login, created.password)
    assert actor.must_change_password
    (entry,) = [e for e in audit_of(sessions, 'user.create') if e['target']['id'] == created.user.id]
    assert entry['fields']['login'] == created.user.login and entry['fields']['role'] == 'operator'
    assert created.password not in json.dumps(entry, ensure_ascii=False)


def test_a_typed_initial_password_obeys_the_policy(services, admin) -> None:
    with pytest.raises(PasswordRejected, match='не короче 10'):
        services.users.create(admin, draft(), 'short1')
    login = f'ivanov{unique()}'
    with pytest.raises(PasswordRejected, match='не должен содержать логин'):
        services.users.create(admin, draft(login=login), f'{login.upper()}-2026!')
    created = services.users.create(admin, draft(), GOOD)
    assert not created.generated and created.password == GOOD


@pytest.mark.parametrize(
    ('field', 'message'),
    [
        ('login', 'Логин «{}» уже занят'),
        ('email', 'E-mail «{}» уже указан'),
        ('extension', 'Внутренний номер {}'),
    ],
)
def test_duplicates_are_refused_naming_the_field(services, admin, field, message) -> None:
    first = services.users.create(admin, draft()).user
    taken = getattr(first, field)
    with pytest.raises(ServiceError, match='(?i)' + message.format(taken)):
        services.users.create(admin, draft(**{field: taken.upper() if field != 'extension' else taken}))
    other = services.users.create(admin, draft()).user
    edited = UserDraft(other.login, other.full_name, other.role, other.email, other.extension)
    with pytest.raises(ServiceError, match='(?i)' + message.format(taken)):
        services.users.edit(admin, other.id, edited.__class__(**{**edited.__dict__, field: taken}))


def test_edit_records_what_changed(services, sessions, admin) -> None:
    group = services.user_groups.create_group(admin, f'Группа {unique()}')
    user = services.users.create(admin, draft()).user
    changed = services.users.edit(
        admin,
        user.id,
        UserDraft(user.login, user.full_name, Role.SUPERVISOR, None, '5' + user.extension, group.id),
    )
    assert (changed.role, changed.email, changed.group_name) == (Role.SUPERVISOR, None, group.name)
    (entry,) = [e for e in audit_of(sessions, 'user.edit') if e['target']['id'] == user.id]
    assert entry['changes'] == {
        'role': ['operator', 'supervisor'],
        'email': [user.email, None],
        'extension': [user.extension, '5' + user.extension],
        'group_id': [None, group.id],
    }


def test_block_ends_every_session_at_once_and_unblock_lets_in(services, sessions, admin) -> None:
    created = services.users.create(admin, draft(), GOOD)
    actor = services.auth.authenticate(created.user.login, GOOD)
    tokens = [services.sessions.exchange(services.sessions.begin(actor))[0] for _ in range(2)]
    assert all(services.sessions.resolve(token) for token in tokens)
    blocked = services.users.block(admin, created.user.id)
    assert blocked.status == 'blocked' and blocked.status_label == 'Заблокирован'
    with sessions() as session:
        live = session.scalars(
            select(WebSession).where(WebSession.user_id == created.user.id, WebSession.ended_at.is_(None))
        ).all()
    assert live == []
    assert [services.sessions.resolve(token) for token in tokens] == [None, None]
    with pytest.raises(LoginFailed):
        services.auth.authenticate(created.user.login, GOOD)
    assert services.users.unblock(admin, created.user.id).status == 'active'
    assert services.auth.authenticate(created.user.login, GOOD).id == created.user.id
    assert [
        e['sessions_ended'] for e in audit_of(sessions, 'user.block') if e['target']['id'] == created.user.id
    ] == [2]
    with pytest.raises(ServiceError, match='самого себя'):
        services.users.block(admin, admin.id)


def test_unlock_lets_a_locked_user_in(services, sessions, admin, clock) -> None:
    user = services.users.create(admin, draft(), GOOD).user
    for _ in range(5):
        with pytest.raises(LoginFailed):
            services.auth.authenticate(user.login, 'wrong password')
    with pytest.raises(LoginFailed):
        services.auth.authenticate(user.login, GOOD)
    listed = services.users.users(admin, status='locked')
    assert user.id in [row.id for row in listed]
    assert services.users.unlock(admin, user.id).status == 'active'
    assert services.auth.authenticate(user.login, GOOD).id == user.id
    (entry,) = [e for e in audit_of(sessions, 'user.unlock') if e['target']['id'] == user.id]
    assert entry['locked_until'] is not None


def test_reset_ends_sessions_and_the_middleware_leads_to_password_until_changed(
    services, sessions, admin
) -> None:
    user = services.users.create(admin, draft(), GOOD).user
    services.users.change_own_password(services.auth.authenticate(user.login, GOOD), GOOD, GOOD + 'x')
    actor = services.auth.authenticate(user.login, GOOD + 'x')
    assert not actor.must_change_password
    old_token, _ = services.sessions.exchange(services.sessions.begin(actor))
    typed = 'Временный-пароль-1'
    reset = services.users.reset_password(admin, user.id, typed)
    assert reset.password == typed and reset.user.must_change_password
    assert services.sessions.resolve(old_token) is None
    actor = services.auth.authenticate(user.login, typed)
    token, _ = services.sessions.exchange(services.sessions.begin(actor))

    app = FastAPI()
    app.add_middleware(AuthMiddleware, sessions=services.sessions)

    @app.get('/{path:path}')
    def anything(path: str) -> PlainTextResponse:
        return PlainTextResponse(f'page {path}')

    client = TestClient(app, cookies={COOKIE: token})
    for path in ('/', '/borrower/1', '/admin/users', '/docs'):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 307 and response.headers['location'].startswith('/password')
    assert client.get('/password', follow_redirects=False).text == 'page password'
    with pytest.raises(ServiceError, match='Текущий пароль'):
        services.users.change_own_password(actor, 'not it', 'Совсем-новый-пароль-2')
    with pytest.raises(PasswordRejected):
        services.users.change_own_password(actor, typed, 'коротко')
    with pytest.raises(ServiceError, match='отличаться'):
        services.users.change_own_password(actor, typed, typed)
    assert not services.users.change_own_password(actor, typed, 'Совсем-новый-пароль-2').must_change_password
    assert client.get('/borrower/1', follow_redirects=False).text == 'page borrower/1'
    details = json.dumps(audit_of(sessions, 'user.password.reset'), ensure_ascii=False)
    details += json.dumps(audit_of(sessions, 'user.password.change'), ensure_ascii=False)
    assert typed not in details and 'Совсем-новый-пароль-2' not in details
    with sessions() as session:
        row = session.get(User, user.id)
        assert not row.must_change_password and row.password_changed_at is not None


def test_a_generated_reset_password_passes_the_policy_and_works(services, admin) -> None:
    user = services.users.create(admin, draft(), GOOD).user
    reset = services.users.reset_password(admin, user.id)
    assert reset.generated and reset.password != GOOD
    assert services.auth.authenticate(user.login, reset.password).must_change_password


def test_only_admins_manage_users(services, sessions, operator) -> None:
    supervisor = to_actor(make_user(sessions, role=Role.SUPERVISOR))
    for actor in (operator, supervisor):
        with pytest.raises(AccessDenied):
            services.users.users(actor)
        with pytest.raises(AccessDenied):
            services.users.create(actor, draft())
        with pytest.raises(AccessDenied):
            services.users.block(actor, operator.id)
        with pytest.raises(AccessDenied):
            services.users.reset_password(actor, operator.id)
        with pytest.raises(AccessDenied):
            services.users.unlock(actor, operator.id)
        with pytest.raises(AccessDenied):
            services.user_groups.create_group(actor, 'Чужая группа')


def test_groups_are_led_by_supervisors(services, sessions, admin, operator) -> None:
    name = f'Взыскание {unique()}'
    group = services.user_groups.create_group(admin, name)
    with pytest.raises(ServiceError, match='уже есть'):
        services.user_groups.create_group(admin, name.upper())
    with pytest.raises(ServiceError, match='руководитель группы'):
        services.user_groups.set_supervisor(admin, group.id, operator.id)
    lead = services.users.create(admin, draft(role=Role.SUPERVISOR)).user
    services.user_groups.set_supervisor(admin, group.id, lead.id)
    services.user_groups.rename_group(admin, group.id, name + ' (Юг)')
    (row,) = [g for g in services.user_groups.groups(admin) if g.id == group.id]
    assert (row.name, row.supervisor_name) == (name + ' (Юг)', lead.full_name)
    with pytest.raises(ServiceError, match='руководит группой'):
        services.users.edit(admin, lead.id, UserDraft(lead.login, lead.full_name, Role.OPERATOR, lead.email))
    actions = {
        a
        for a in ('group.create', 'group.rename', 'group.supervisor')
        if any(e.get('group_id') == group.id for e in audit_of(sessions, a))
    }
    assert actions == {'group.create', 'group.rename', 'group.supervisor'}


def test_the_list_filters_by_role_group_and_status(services, admin) -> None:
    group = services.user_groups.create_group(admin, f'Фильтр {unique()}')
    a = services.users.create(admin, draft(group_id=group.id)).user
    b = services.users.create(admin, draft(group_id=group.id, role=Role.SUPERVISOR)).user
    services.users.block(admin, b.id)
    assert [r.id for r in services.users.users(admin, group_id=group.id)] == sorted(
        [a.id, b.id], key=lambda i: {a.id: a.full_name, b.id: b.full_name}[i]
    )
    assert [r.id for r in services.users.users(admin, group_id=group.id, role=Role.SUPERVISOR)] == [b.id]
    assert [r.id for r in services.users.users(admin, group_id=group.id, status='blocked')] == [b.id]
    assert [r.id for r in services.users.users(admin, group_id=group.id, status='active')] == [a.id]


def test_lockout_expires_in_the_list_by_the_clock(services, admin, clock) -> None:
    user = services.users.create(admin, draft(), GOOD).user
    for _ in range(5):
        with pytest.raises(LoginFailed):
            services.auth.authenticate(user.login, 'wrong password')
    assert [r.status for r in services.users.users(admin) if r.id == user.id] == ['locked']
    clock.advance(minutes=16)
    assert [r.status for r in services.users.users(admin) if r.id == user.id] == ['active']
