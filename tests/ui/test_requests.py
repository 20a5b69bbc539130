"""«Обращения»: an operator takes a request from the queue and answers it, a colleague who took it first is
named, a supervisor reassigns one, and the header's count of new requests follows a request opened in
another tab."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from nicegui import ElementFilter, ui
from nicegui.testing import User
from sqlalchemy import select, update

from crm.db.models import Borrower, Request
from crm.db.models import User as UserRow
from crm.domain.contact_rules import CallLimits
from crm.domain.requests import answer_due
from tests.conftest import TEST_NOW
from tests.factories import make_borrower, unique
from tests.ui.conftest import WAIT, log_in, until


def user_id(sessions, login: str) -> int:
    with sessions() as session:
        found = session.scalar(select(UserRow.id).where(UserRow.login == login))
    assert found is not None
    return found


def add_request(sessions, borrower: Borrower, subject: str, *, assignee: int | None = None) -> int:
    opened = TEST_NOW - timedelta(hours=2)
    with sessions.begin() as session:
        request = Request(
            borrower_id=borrower.id,
            origin='contact',
            channel='chat',
            topic_code='requisites',
            status='new' if assignee is None else 'in_progress',
            assignee_id=assignee,
            subject=subject,
            text='Пришлите реквизиты для оплаты',
            search_text=f'{subject} Пришлите реквизиты для оплаты {borrower.last_name} {borrower.pin}',
            opened_at=opened,
            updated_at=opened,
            due_on=answer_due(opened.date(), CallLimits()),
        )
        session.add(request)
        session.flush()
        return request.id


def request_row(sessions, request_id: int) -> tuple[str, int | None]:
    with sessions() as session:
        status, assignee = session.execute(
            select(Request.status, Request.assignee_id).where(Request.id == request_id)
        ).one()
    return status, assignee


def table(user: User) -> Any:
    (found,) = user.find(marker='request-table').elements
    return found


async def search(user: User, text: str, request_id: int) -> dict:
    """Type into the search line, press Enter; the request's row once the table shows it."""
    user.find(marker='request-search').clear().type(text).trigger('keydown.enter')
    await until(lambda: any(r['id'] == request_id for r in table(user).rows))
    return next(r for r in table(user).rows if r['id'] == request_id)


def new_count(user: User) -> int | None:
    """The header's count of new requests (0 when hidden), None before the tab loaded it."""
    with user:
        found = list(ElementFilter(kind=ui.badge, marker='requests-new'))
    if not found:
        return None
    (count,) = found
    return int(count.text) if count.visible and count.text else 0


async def test_an_operator_takes_a_request_from_the_queue_and_answers_it(user: User, sessions) -> None:
    subject = f'Реквизиты {unique()}'
    request_id = add_request(sessions, make_borrower(sessions, last='Очередной'), subject)
    await log_in(user, 'operator1', 'operator', path='/requests')
    await user.should_see('Очередь (не назначены)', retries=WAIT)
    with user:
        (scope,) = ElementFilter(kind=ui.toggle, marker='request-scope')
        scope.set_value('queue')
    row = await search(user, subject, request_id)
    assert row['assignee'] == 'не назначено' and row['can_take'] and row['status'] == 'Новое'
    user.find(marker='request-table').trigger('take', row)
    await user.should_see(f'Обращение № {request_id} взято в работу', retries=WAIT)
    assert request_row(sessions, request_id) == ('in_progress', user_id(sessions, 'operator1'))
    await until(lambda: all(r['id'] != request_id for r in table(user).rows))  # left the queue
    with user:
        scope.set_value('mine')
    row = await search(user, subject, request_id)
    assert row['status'] == 'В работе' and not row['can_take']
    user.find(marker='request-table').trigger('rowClick', [None, row, 0])
    await user.should_see(marker='request-dialog', retries=WAIT)
    await user.should_see('Пришлите реквизиты для оплаты')
    user.find(marker='request-text').type('Реквизиты отправлены в личный кабинет')
    user.find(marker='request-answer').click()
    await user.should_see('Ответ записан', retries=WAIT)
    assert request_row(sessions, request_id)[0] == 'resolved'
    await until(lambda: next(r for r in table(user).rows if r['id'] == request_id)['status'] == 'Решено')
    await user.should_see('Реквизиты отправлены в личный кабинет')  # in the dialog's history


async def test_a_request_taken_first_by_another_operator_is_refused_by_name(user: User, sessions) -> None:
    subject = f'Пролонгация {unique()}'
    request_id = add_request(sessions, make_borrower(sessions), subject)
    await log_in(user, 'operator1', 'operator', path='/requests')
    await user.should_see('Очередь (не назначены)', retries=WAIT)
    with user:
        (scope,) = ElementFilter(kind=ui.toggle, marker='request-scope')
        scope.set_value('queue')
    row = await search(user, subject, request_id)
    with sessions.begin() as session:  # operator2 was quicker
        session.execute(
            update(Request)
            .where(Request.id == request_id)
            .values(status='in_progress', assignee_id=user_id(sessions, 'operator2'))
        )
    user.find(marker='request-table').trigger('take', row)
    await user.should_see('Обращение уже взял в работу Морозов Дмитрий Олегович', retries=WAIT)
    assert request_row(sessions, request_id) == ('in_progress', user_id(sessions, 'operator2'))


async def test_a_supervisor_reassigns_a_request(user: User, sessions) -> None:
    subject = f'Жалоба {unique()}'
    borrower = make_borrower(sessions)
    request_id = add_request(sessions, borrower, subject, assignee=user_id(sessions, 'operator2'))
    await log_in(user, 'supervisor', 'supervisor', path='/requests')
    await user.should_see('Экспорт CSV', retries=WAIT)
    row = await search(user, subject, request_id)
    assert row['assignee'] == 'Морозов Дмитрий Олегович' and row['can_assign'] and not row['can_take']
    user.find(marker='request-table').trigger('assign', row)
    await user.should_see(marker='request-assignee', retries=WAIT)
    with user:
        (choice,) = ElementFilter(kind=ui.select, marker='request-assignee')
        choice.set_value(user_id(sessions, 'operator3'))
    user.find(marker='request-assign-save').click()
    await user.should_see('Обращение назначено', retries=WAIT)
    assert request_row(sessions, request_id) == ('in_progress', user_id(sessions, 'operator3'))
    await until(lambda: table(user).rows[0]['assignee'] == 'Егорова Мария Андреевна')


async def test_the_header_count_follows_a_request_opened_in_another_tab(
    user: User, create_user: Callable[[], User], sessions
) -> None:
    borrower = make_borrower(sessions, last='Заявителев')
    await log_in(user, 'operator1', 'operator', path='/')
    await until(lambda: new_count(user) is not None)
    before = new_count(user)
    assert before is not None
    supervisor = create_user()
    await log_in(supervisor, 'supervisor', 'supervisor', path='/requests')
    await supervisor.should_see('Новое обращение', retries=WAIT)
    supervisor.find('Новое обращение').click()
    await supervisor.should_see(marker='new-pin', retries=WAIT)
    supervisor.find(marker='new-pin').type(borrower.pin)
    with supervisor:
        (topic,) = ElementFilter(kind=ui.select, marker='new-topic')
        topic.set_value('complaint')
    supervisor.find(marker='new-subject').type('Жалоба на звонки по ночам')
    supervisor.find(marker='new-save').click()
    await supervisor.should_see('Заявителев', retries=WAIT)  # «Обращение № …: Заявителев …»
    await until(lambda: new_count(user) == before + 1)  # the operator's tab, on another page, live
    assert new_count(supervisor) == before + 1
