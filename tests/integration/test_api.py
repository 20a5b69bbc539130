"""The HTTP API: tokens (401/403), field-named 422, 202 once committed, the lookup contract."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from crm import bootstrap
from crm.api import routes
from crm.config import Settings
from crm.db.models import Call, User
from crm.domain import Role
from crm.integrations.bus import InProcessBus
from crm.services.auth import to_actor
from tests.factories import make_borrower, make_user, unique, unique_phone

BOOTSTRAP = 'bootstrap-token-for-tests'


@pytest.fixture
def services(engine, database_url, clock):
    return bootstrap.build(
        Settings(database_url=database_url, api_token=BOOTSTRAP),
        engine=engine,
        bus=InProcessBus(),
        clock=clock,
    ).services


@pytest.fixture
def client(services):
    app = FastAPI()
    routes.install(app, services)
    return TestClient(app)


def auth(token: str = BOOTSTRAP) -> dict[str, str]:
    return {'Authorization': f'Bearer {token}'}


def event(**fields) -> dict:
    return {
        'type': 'telephony.call.incoming',
        'call_id': f'api-{unique()}',
        'from': unique_phone(),
        'to_extension': '101',
        'at': '2026-11-26T10:00:00+03:00',
    } | fields


def test_no_or_wrong_token_is_401(client) -> None:
    assert client.post('/api/v1/events', json=event()).status_code == 401
    response = client.post('/api/v1/events', json=event(), headers=auth('nope'))
    assert response.status_code == 401 and response.headers['www-authenticate'] == 'Bearer'
    assert client.get('/api/v1/borrowers', params={'q': 'Анон'}).status_code == 401


def test_event_is_202_once_committed_and_a_repeat_has_no_second_effect(client, sessions) -> None:
    body = event()
    first = client.post('/api/v1/events', json=body, headers=auth())
    assert first.status_code == 202 and first.json() == {
        'status': 'accepted',
        'type': 'telephony.call.incoming',
    }
    with sessions() as session:
        assert session.scalar(select(Call.state).where(Call.call_id == body['call_id'])) == 'ringing'
    again = client.post('/api/v1/events', json=body, headers=auth())
    assert again.status_code == 202 and again.json()['status'] == 'duplicate'
    with sessions() as session:
        assert len(session.scalars(select(Call).where(Call.call_id == body['call_id'])).all()) == 1


@pytest.mark.parametrize(
    ('body', 'field'),
    [
        ({'call_id': 'x'}, 'type'),
        (event(type='telephony.call.exploded'), 'type'),
        ({k: v for k, v in event().items() if k != 'from'}, 'from'),
        (event(at='yesterday'), 'at'),
        (event(call_id=''), 'call_id'),
        (
            {'type': 'telephony.call.ended', 'call_id': 'c', 'at': '2026-11-26T10:00:00Z', 'duration_s': -5},
            'duration_s',
        ),
        ({'type': 'sms.status', 'message_id': 'm', 'status': 'lost', 'at': '2026-11-26T10:00:00Z'}, 'status'),
    ],
)
def test_malformed_event_is_422_naming_the_field_and_writes_nothing(client, sessions, body, field) -> None:
    response = client.post('/api/v1/events', json=body, headers=auth())
    assert response.status_code == 422
    assert response.json()['detail'][0]['loc'] == ['body', field]
    if body.get('call_id'):
        with sessions() as session:
            assert session.scalar(select(Call.id).where(Call.call_id == body['call_id'])) is None


def test_a_body_that_is_not_a_json_object_is_422(client) -> None:
    assert (
        client.post(
            '/api/v1/events', content=b'{broken', headers=auth() | {'content-type': 'application/json'}
        ).status_code
        == 422
    )
    assert client.post('/api/v1/events', json=[1, 2], headers=auth()).status_code == 422


def test_tokens_made_by_the_admin_work_until_revoked(client, services, sessions) -> None:
    with sessions() as session:
        admin = to_actor(session.scalar(select(User).where(User.login == 'admin')))
    plain, info = services.api_tokens.create(admin, 'АТС', 'events')
    assert client.post('/api/v1/events', json=event(), headers=auth(plain)).status_code == 202
    listed = services.api_tokens.list(admin)
    assert plain not in str(listed) and any(t.id == info.id and t.last_used_at for t in listed)
    services.api_tokens.revoke(admin, info.id)
    assert client.post('/api/v1/events', json=event(), headers=auth(plain)).status_code == 401


def test_lookup_only_token_gets_403_on_events(client, services, sessions) -> None:
    with sessions() as session:
        admin = to_actor(session.scalar(select(User).where(User.login == 'admin')))
    plain, _ = services.api_tokens.create(admin, 'Чат', 'lookup')
    assert client.post('/api/v1/events', json=event(), headers=auth(plain)).status_code == 403
    assert client.get('/api/v1/borrowers', params={'q': '79'}, headers=auth(plain)).status_code == 200


def test_only_an_admin_manages_tokens(services, sessions) -> None:
    from crm.domain.errors import AccessDenied

    operator = to_actor(make_user(sessions, role=Role.OPERATOR))
    with pytest.raises(AccessDenied):
        services.api_tokens.create(operator, 'x', 'events')


def test_borrower_lookup_contract(client, sessions) -> None:
    phone = unique_phone()
    borrower = make_borrower(sessions, last='Апишный', first='Степан', phones=(phone,))
    response = client.get(
        '/api/v1/borrowers',
        params={'q': f'+7 {phone[1:4]} {phone[4:7]}-{phone[7:9]}-{phone[9:]}'},
        headers=auth(),
    )
    assert response.status_code == 200
    (item,) = response.json()['items']
    assert item == {
        'pin': borrower.pin,
        'full_name': 'Апишный Степан Тестович',
        'birth_date': '1989-09-09',
        'city': 'Москва',
        'phones': [phone],
        'passport': borrower.passport,
        'loans': [
            {
                'number': borrower.loans[0].number,
                'product': 'ILS ГлавПотреб',
                'status': 'Заявление передано на андеррайтинг (1200)',
                'overdue_amount': 0.0,
                'days_past_due': 0,
            }
        ],
    }
    short = client.get('/api/v1/borrowers', params={'q': 'я'}, headers=auth())
    assert short.status_code == 422 and short.json()['detail'][0]['loc'] == ['query', 'q']
    assert client.get('/api/v1/borrowers', headers=auth()).status_code == 422


def test_openapi_documents_both_endpoints(client) -> None:
    paths = client.get('/openapi.json').json()['paths']
    assert {'/api/v1/events', '/api/v1/borrowers'} <= set(paths)
