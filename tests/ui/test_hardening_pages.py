"""Hostile input as the pages see it (the outside probe of 01.12.2026): sessions and edge data render."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from nicegui import ui
from nicegui.testing import User
from starlette.requests import Request
from starlette.responses import Response

from crm.db.models import Borrower, Communication
from crm.domain import Role
from crm.pages.session import COOKIE, set_session_cookie
from tests.factories import make_borrower, make_user, unique_phone
from tests.ui.conftest import WAIT, log_in


async def test_a_cookie_planted_before_login_is_not_the_one_logged_in(user: User) -> None:
    user.http_client.cookies.set(COOKIE, 'planted-by-someone-else', domain='test.local')
    await log_in(user, 'operator1', 'operator')
    await user.should_see('Мои заёмщики', retries=WAIT)
    assert user.http_client.cookies.get(COOKIE) not in (None, 'planted-by-someone-else')


async def test_after_logout_the_old_cookie_opens_nothing(user: User) -> None:
    await log_in(user, 'operator1', 'operator')
    await user.should_see('Мои заёмщики', retries=WAIT)
    token = user.http_client.cookies.get(COOKIE)
    await user.open('/logout')
    await user.should_see('Вход в систему', retries=WAIT)
    user.http_client.cookies.set(COOKIE, token, domain='test.local')
    await user.open('/')
    await user.should_see('Вход в систему', retries=WAIT)


def test_the_session_cookie_is_secure_over_tls_and_never_readable_by_scripts() -> None:
    for scheme, forwarded, secure in (('http', None, False), ('https', None, True), ('http', 'https', True)):
        headers = [(b'x-forwarded-proto', forwarded.encode())] if forwarded else []
        request = Request(
            {'type': 'http', 'scheme': scheme, 'path': '/', 'headers': headers, 'server': ('x', 1)}
        )
        response = Response()
        set_session_cookie(response, request, 'token', 60)
        cookie = response.headers['set-cookie'].lower()
        assert 'httponly' in cookie and 'samesite=lax' in cookie
        assert ('secure' in cookie.split('; ')) is secure


async def test_moments_at_the_edge_of_the_calendar_render_on_the_list_and_the_card(
    user: User, sessions
) -> None:
    """Events accepted before the schema bounded ``at`` must not break the pages that show them."""
    operator = make_user(sessions, role=Role.OPERATOR)
    borrower = make_borrower(sessions, last='Краевой', phones=(unique_phone(),), operator_id=operator.id)
    with sessions.begin() as session:
        session.get(Borrower, borrower.id).last_contact_at = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
        for moment in (datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)):
            session.add(
                Communication(
                    borrower_id=borrower.id,
                    channel='chat',
                    direction='in',
                    started_at=moment,
                    body='Сообщение с часами не в порядке',
                    recording_url='javascript:alert(1)',
                )
            )
    await log_in(user, operator.login, 'secret')
    await user.should_see('Всего: 1', retries=WAIT)
    (table,) = user.find(ui.table).elements
    assert [(row['full_name'], row['last_contact_at']) for row in table.rows] == [
        ('Краевой Тест Тестович', '31.12.9999 23:59 UTC')
    ]
    await user.open(f'/borrower/{borrower.id}')
    await user.should_see('Сообщение с часами не в порядке', retries=WAIT)
    await user.should_not_see('Запись разговора')  # a javascript: URL is never a link


async def test_the_api_description_is_for_administrators_only(user: User) -> None:
    for path in ('/docs', '/openapi.json'):
        anonymous = await user.http_client.get(path)
        assert anonymous.status_code in (302, 307) and '/login' in anonymous.headers['location'], path
    await log_in(user, 'operator1', 'operator')
    await user.should_see('Мои заёмщики', retries=WAIT)
    refused = await user.http_client.get('/openapi.json')
    assert refused.status_code == 403 and 'только администратору' in refused.text
    await user.open('/logout')
    await log_in(user, 'admin', 'admin', path='/admin/tokens')
    await user.should_see('API-токены', retries=WAIT)
    described = await user.http_client.get('/openapi.json')
    assert described.status_code == 200 and '/api/v1/events' in described.json()['paths']


async def test_error_pages_are_russian_inside_the_frame_without_exception_text(user: User) -> None:
    await log_in(user, 'operator1', 'operator')
    await user.should_see('Мои заёмщики', retries=WAIT)
    for path in ('/no/such/page', '/borrower/abc', '/borrower/99999999999999999999999', '/borrower/-1'):
        response = await user.http_client.get(path)
        assert response.status_code == 404, path
        assert shows(response, 'Страница не найдена') and shows(response, 'На главную'), path
        assert shows(response, 'Заёмщики'), path  # the normal frame, with its header
        for leak in ('Traceback', 'OverflowError', 'Not Found', "doesn't exist", 'validation'):
            assert leak not in response.text, (path, leak)
    api = await user.http_client.get('/api/v1/no-such-endpoint')
    assert api.status_code == 404 and api.json() == {'detail': 'Not Found'}  # the API keeps its JSON


async def test_an_error_page_before_login_is_russian_too(user: User) -> None:
    response = await user.http_client.get('/login/no-such-page')
    assert response.status_code == 404
    assert shows(response, 'Страница не найдена') and shows(response, 'На главную')


def shows(response, text: str) -> bool:
    """The text is in the page: as HTML or in the elements' JSON (which may escape it)."""
    return text in response.text or json.dumps(text)[1:-1] in response.text
