"""«Видимость полей» on the real database: the card, search, the list, the mailing report's CSV and the
HTTP API each honour hidden / masked / visible for a role; a reveal is audited; a masked phone still
dials; a save reaches another process without a restart; saving is for admins and audited."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import timedelta
from uuid import uuid4

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from crm.api import routes
from crm.db.models import AuditEntry, Mailing, MessageTemplate, OutboxMessage
from crm.domain import Role
from crm.domain.errors import AccessDenied
from crm.domain.field_visibility import API, ROLES, Field, Mode, Policy
from crm.services.auth import to_actor
from crm.services.field_visibility import CHECK_EVERY, FieldVisibilityService
from crm.services.views import ListQuery
from tests.conftest import TEST_API_TOKEN, TEST_NOW
from tests.factories import make_borrower, make_user, unique_phone

DEFAULTS = {(role, field.value): Policy().mode(role, field) for role in ROLES for field in Field}


@pytest.fixture
def admin(sessions):
    return to_actor(make_user(sessions, role=Role.ADMIN))


@pytest.fixture
def supervisor(sessions):
    return to_actor(make_user(sessions, role=Role.SUPERVISOR))


@pytest.fixture
def matrix(system, admin) -> Iterator[FieldVisibilityService]:
    """The system's matrix service; the defaults are put back after the test (one database for all)."""
    yield system.services.field_visibility
    system.services.field_visibility.save(admin, DEFAULTS)


def set_modes(matrix: FieldVisibilityService, admin, role: str, mode: Mode, *fields: Field) -> None:
    matrix.save(admin, {(role, f.value): mode for f in fields})


@pytest.fixture
def person(sessions, operator):
    """A borrower of the operator's with two phones and an e-mail."""
    borrower = make_borrower(sessions, phones=(unique_phone(), unique_phone()), operator_id=operator.id)
    with sessions.begin() as session:
        session.get(type(borrower), borrower.id).email = f'ivanov{borrower.id}@mail.ru'
    return borrower


def test_the_card_honours_each_mode(system, matrix, admin, operator, person) -> None:
    borrowers = system.services.borrowers
    card = borrowers.card(operator, person.id)  # the defaults: the documents masked
    assert card.passport == f'{person.passport[:2]} ** ***{person.passport[-3:]}'
    assert (
        card.inn == '*' * 9 + person.inn[-3:]
        and card.snils == f'***-***-**{person.snils[-3]} {person.snils[-2:]}'
    )
    assert card.masked == {'passport', 'inn', 'snils'} and card.hidden == frozenset()
    assert card.phones[0].number == person.phones[0].phone and card.email == f'ivanov{person.id}@mail.ru'

    set_modes(matrix, admin, 'operator', Mode.HIDDEN, Field.PASSPORT, Field.EMAIL, Field.BIRTH_DATE)
    set_modes(matrix, admin, 'operator', Mode.MASKED, Field.PHONES, Field.ADDRESS)
    card = borrowers.card(operator, person.id)
    assert (card.passport, card.email, card.birth_date, card.birth_year) == (None, None, None, None)
    assert card.address == 'Москва, ***'
    assert [p.number for p in card.phones] == [f'+7 999 ***-**-{p.phone[-2:]}' for p in person.phones]
    assert {'passport', 'email', 'birth_date'} <= card.hidden and {'phones', 'address'} <= card.masked
    again = borrowers.card_again(operator, person.id)  # a card redrawn in place is masked alike
    assert again.passport is None and again.phones == card.phones
    pop, _ = borrowers.card_with_verdict(operator, person.id)
    assert pop.passport is None and pop.phones == card.phones
    with system.services.borrowers._sessions.begin() as session:  # a screen pop: the user's own role
        popped, _ = borrowers.card_with_verdict_in(session, operator.id, person.id)
    assert popped.phones == card.phones

    set_modes(matrix, admin, 'operator', Mode.VISIBLE, *Field)
    card = borrowers.card(operator, person.id)
    assert card.passport == person.passport and card.snils == person.snils and card.masked == frozenset()
    assert borrowers.card(admin, person.id).passport == person.passport  # another role's row untouched


def test_search_results_honour_each_mode(system, matrix, admin, operator, person) -> None:
    search = system.services.borrowers.search
    (row,) = search(operator, person.pin).items
    assert row.passport == f'{person.passport[:2]} ** ***{person.passport[-3:]}'  # the default: masked
    assert row.phones == tuple(p.phone for p in person.phones) and row.birth_date == person.birth_date
    set_modes(matrix, admin, 'operator', Mode.HIDDEN, Field.PASSPORT, Field.PHONES)
    set_modes(matrix, admin, 'operator', Mode.MASKED, Field.BIRTH_DATE)
    (row,) = search(operator, person.pin).items
    assert (row.passport, row.phones, row.birth_date, row.birth_year) == (
        None,
        (),
        None,
        person.birth_date.year,
    )
    (clear,) = search(admin, person.pin).items
    assert clear.passport == person.passport


def test_the_list_honours_each_mode(system, matrix, admin, supervisor, operator, person) -> None:
    listed = system.services.borrowers.list_borrowers

    def mine(actor):
        page = listed(actor, ListQuery(operator_id=operator.id, per_page=200))
        return next(row for row in page.items if row.id == person.id)

    assert mine(operator).passport.startswith(person.passport[:2] + ' ** ***')
    assert mine(supervisor).passport == person.passport
    set_modes(matrix, admin, 'supervisor', Mode.MASKED, Field.PHONES)
    set_modes(matrix, admin, 'supervisor', Mode.HIDDEN, Field.PASSPORT, Field.BIRTH_DATE)
    row = mine(supervisor)
    assert row.phones == tuple(f'+7 999 ***-**-{p.phone[-2:]}' for p in person.phones)
    assert (row.passport, row.birth_date, row.birth_year) == (None, None, None)


def test_the_mailing_reports_csv_honours_each_mode(
    system, sessions, matrix, admin, supervisor, person
) -> None:
    with sessions.begin() as session:
        template_id = session.scalar(
            select(MessageTemplate.id).where(MessageTemplate.channel == 'sms').limit(1)
        )
        mailing = Mailing(
            name='Видимость',
            channel='sms',
            template_id=template_id,
            segment='{}',
            status='done',
            start_at=TEST_NOW,
        )
        session.add(mailing)
        session.flush()
        session.add(
            OutboxMessage(
                key=uuid4().hex,
                channel='sms',
                purpose='collection',
                status='sent',
                borrower_id=person.id,
                mailing_id=mailing.id,
                to_address=person.phones[0].phone,
                body='Текст',
                not_before=TEST_NOW,
                expires_at=TEST_NOW + timedelta(days=1),
                created_at=TEST_NOW,
            )
        )
        mailing_id = mailing.id

    def address() -> str:
        data = system.services.mailings.report_csv(supervisor, mailing_id).decode('utf-8-sig')
        (line,) = list(csv.reader(io.StringIO(data), delimiter=';'))[1:]
        return line[2]

    number = person.phones[0].phone
    assert address() == f'+7 999 ***-**-{number[-2:]}'  # visible: the report is masked all the same
    set_modes(matrix, admin, 'supervisor', Mode.HIDDEN, Field.PHONES)
    assert address() == ''
    set_modes(matrix, admin, 'supervisor', Mode.MASKED, Field.PHONES)
    assert address() == f'+7 999 ***-**-{number[-2:]}' and number not in address()


def test_the_api_honours_its_own_row(system, matrix, admin, person) -> None:
    app = FastAPI()
    routes.install(app, system.services)
    client = TestClient(app)

    def found() -> dict:
        response = client.get(
            '/api/v1/borrowers',
            params={'q': person.pin},
            headers={'Authorization': f'Bearer {TEST_API_TOKEN}'},
        )
        assert response.status_code == 200, response.text
        (item,) = response.json()['items']
        return item

    item = found()  # the API's row: visible by default, whatever the operators see
    assert item['passport'] == person.passport and item['birth_date'] == person.birth_date.isoformat()
    assert item['phones'] == [p.phone for p in person.phones]
    set_modes(matrix, admin, API, Mode.MASKED, Field.PASSPORT, Field.PHONES, Field.BIRTH_DATE)
    item = found()
    assert item['passport'] == f'{person.passport[:2]} ** ***{person.passport[-3:]}'
    assert item['phones'] == [f'+7 999 ***-**-{p.phone[-2:]}' for p in person.phones]
    assert item['birth_date'] == f'**.**.{person.birth_date.year}'
    set_modes(matrix, admin, API, Mode.HIDDEN, Field.PASSPORT, Field.PHONES, Field.BIRTH_DATE)
    item = found()
    assert (item['passport'], item['phones'], item['birth_date']) == (None, [], None)


@pytest.fixture
def system(engine, database_url, bus, clock):
    """The suite's system, but with the API token the test client sends."""
    from crm import bootstrap
    from crm.config import Settings

    settings = Settings(database_url=database_url, api_token=TEST_API_TOKEN)
    return bootstrap.build(settings, engine=engine, bus=bus, clock=clock)


def reveals(sessions, user_id: int) -> list[dict]:
    with sessions() as session:
        rows = session.scalars(
            select(AuditEntry.details).where(
                AuditEntry.user_id == user_id, AuditEntry.action == 'field.reveal'
            )
        )
        return [json.loads(d) for d in rows]


def test_a_reveal_is_audited_and_a_hidden_field_is_refused(
    system, sessions, matrix, admin, operator, person
) -> None:
    reveal = matrix.reveal
    assert (
        reveal(operator, person.id, 'passport')
        == f'{person.passport[:2]} {person.passport[2:4]} {person.passport[4:]}'
    )
    assert reveal(operator, person.id, 'snils').replace('-', '').replace(' ', '') == person.snils
    phone = person.phones[1]
    assert (
        reveal(operator, person.id, 'phones', phone_id=phone.id).replace(' ', '').replace('-', '')
        == '+' + phone.phone
    )
    assert reveals(sessions, operator.id) == [
        {'field': 'passport'},
        {'field': 'snils'},
        {'field': 'phones', 'phone_id': phone.id},
    ]
    with sessions() as session:  # never the value itself
        assert person.passport not in (
            session.scalar(
                select(AuditEntry.details)
                .where(AuditEntry.action == 'field.reveal')
                .order_by(AuditEntry.id.desc())
                .limit(1)
            )
            or ''
        )
    set_modes(matrix, admin, 'operator', Mode.HIDDEN, Field.PASSPORT)
    with pytest.raises(AccessDenied):
        reveal(operator, person.id, 'passport')
    assert len(reveals(sessions, operator.id)) == 3


def test_a_masked_phone_still_dials_by_its_row(system, matrix, admin, operator, person) -> None:
    set_modes(matrix, admin, 'operator', Mode.MASKED, Field.PHONES)
    card = system.services.borrowers.card(operator, person.id)
    phone = card.phones[1]
    assert '*' in phone.number
    number = matrix.dial_number(operator, person.id, phone.id)
    assert number == person.phones[1].phone
    view = system.services.calls.dial(operator, number, borrower_id=person.id)
    assert view.number == number or view.number.endswith(number[-4:])
    set_modes(matrix, admin, 'operator', Mode.HIDDEN, Field.PHONES)
    with pytest.raises(AccessDenied):
        matrix.dial_number(operator, person.id, phone.id)


def test_a_save_reaches_another_process_without_a_restart(sessions, clock, matrix, admin, operator) -> None:
    other = FieldVisibilityService(sessions, clock=clock)  # another process's cache, on the same database
    assert other.view_for('operator').modes[Field.EMAIL] is Mode.VISIBLE
    set_modes(matrix, admin, 'operator', Mode.HIDDEN, Field.EMAIL)
    assert matrix.view_for('operator').modes[Field.EMAIL] is Mode.HIDDEN  # the saving process: at once
    assert other.view_for('operator').modes[Field.EMAIL] is Mode.VISIBLE  # the other: within CHECK_EVERY
    clock.advance(seconds=CHECK_EVERY.total_seconds())
    assert other.view_for('operator').modes[Field.EMAIL] is Mode.HIDDEN


def test_saving_is_for_admins_and_audited(sessions, matrix, admin, supervisor) -> None:
    with pytest.raises(AccessDenied):
        matrix.save(supervisor, {('operator', 'inn'): Mode.VISIBLE})
    with pytest.raises(AccessDenied):
        matrix.matrix(supervisor)
    matrix.save(admin, {('operator', 'inn'): Mode.VISIBLE})
    with sessions() as session:
        details = session.scalar(
            select(AuditEntry.details)
            .where(AuditEntry.user_id == admin.id, AuditEntry.action == 'field.visibility')
            .order_by(AuditEntry.id.desc())
            .limit(1)
        )
    assert json.loads(details) == {'changes': {'operator.inn': 'masked→visible'}}
    assert matrix.matrix(admin).mode('operator', Field.INN) is Mode.VISIBLE
