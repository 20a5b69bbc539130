"""Hiding a communication from operators, and erasing a borrower's personal data on request (§5)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from crm.db.models import (
    AuditEntry,
    Borrower,
    BorrowerPhone,
    Chat,
    Communication,
    ErasureAct,
    Loan,
    Payment,
    Request,
)
from crm.domain import Role
from crm.domain.errors import AccessDenied, ServiceError
from crm.services.auth import to_actor
from tests.conftest import TEST_NOW
from tests.factories import make_borrower, make_user, unique, unique_phone


@pytest.fixture
def services(system):
    return system.services


@pytest.fixture
def admin(sessions):
    return to_actor(make_user(sessions, role=Role.ADMIN))


@pytest.fixture
def supervisor(sessions):
    return to_actor(make_user(sessions, role=Role.SUPERVISOR))


def add_communication(sessions, borrower_id: int, **fields) -> int:
    values = {'channel': 'note', 'direction': 'out', 'started_at': TEST_NOW, 'comment': 'Заметка'}
    values.update(fields)
    with sessions.begin() as session:
        row = Communication(borrower_id=borrower_id, **values)
        session.add(row)
        session.flush()
        return row.id


def audited(sessions, action: str, borrower_id: int) -> list[dict]:
    with sessions() as session:
        rows = session.scalars(
            select(AuditEntry.details).where(
                AuditEntry.action == action, AuditEntry.borrower_id == borrower_id
            )
        ).all()
    return [json.loads(row) for row in rows]


# --- hiding ---------------------------------------------------------------------------------------
def test_a_hidden_record_is_left_out_for_operators_and_shown_marked_to_admins(
    services, sessions, admin, supervisor, operator, bus
) -> None:
    borrower = make_borrower(sessions)
    kept = add_communication(sessions, borrower.id, comment='Обычная заметка')
    hidden = add_communication(sessions, borrower.id, comment='Лишнее о родственниках')

    services.hiding.hide(admin, hidden, '  Сведения о третьих   лицах ')

    for actor in (operator, supervisor):
        card = services.borrowers.card(actor, borrower.id)
        assert [c.id for c in card.communications] == [kept] and card.communications_total == 1
        assert [c.id for c in services.borrowers.history(actor, borrower.id)[0]] == [kept]
    shown = {c.id: c for c in services.borrowers.card(admin, borrower.id).communications}
    assert set(shown) == {kept, hidden}
    assert shown[hidden].hidden_at == TEST_NOW and shown[hidden].hidden_reason == 'Сведения о третьих лицах'
    assert shown[kept].hidden_at is None
    assert audited(sessions, 'communication.hide', borrower.id) == [
        {'communication_id': hidden, 'channel': 'note', 'reason': 'Сведения о третьих лицах'}
    ]
    assert {'kind': 'history', 'borrower_id': borrower.id} in bus.ui

    services.hiding.show(admin, hidden)
    assert {c.id for c in services.borrowers.card(operator, borrower.id).communications} == {kept, hidden}
    assert len(audited(sessions, 'communication.show', borrower.id)) == 1


def test_a_hidden_chat_message_is_left_out_of_the_chat_for_operators(
    services, sessions, admin, operator
) -> None:
    borrower = make_borrower(sessions)
    chat_id = f'hidden-chat-{unique()}'
    with sessions.begin() as session:
        session.add(
            Chat(
                chat_id=chat_id,
                borrower_id=borrower.id,
                sender=borrower.pin,
                started_at=TEST_NOW,
                last_message_at=TEST_NOW,
            )
        )
    kept = add_communication(
        sessions, borrower.id, channel='chat', direction='in', body='Когда платить?', chat_id=chat_id
    )
    hidden = add_communication(
        sessions, borrower.id, channel='chat', direction='in', body='Личное о соседях', chat_id=chat_id
    )
    services.hiding.hide(admin, hidden, 'Сведения о третьих лицах')
    for read in (services.chats.conversation, lambda actor, _: services.chats.chat(actor, chat_id)):
        assert [line.id for line in read(operator, borrower.id).lines] == [kept]
        assert {line.id for line in read(admin, borrower.id).lines} == {kept, hidden}


def test_hiding_needs_an_admin_and_a_reason(services, sessions, admin, supervisor) -> None:
    borrower = make_borrower(sessions)
    note = add_communication(sessions, borrower.id)
    with pytest.raises(AccessDenied):
        services.hiding.hide(supervisor, note, 'Причина')
    with pytest.raises(ServiceError, match='Причина'):
        services.hiding.hide(admin, note, '   ')
    with pytest.raises(ServiceError, match='не скрыта'):
        services.hiding.show(admin, note)
    with sessions() as session:
        assert session.get(Communication, note).hidden_at is None
    assert audited(sessions, 'communication.hide', borrower.id) == []


# --- erasure --------------------------------------------------------------------------------------
def closed_borrower(sessions, phone: str) -> Borrower:
    borrower = make_borrower(sessions, last='Стиран', first='Эраст', middle='Петрович', phones=(phone,))
    with sessions.begin() as session:
        session.execute(update(Loan).where(Loan.borrower_id == borrower.id).values(state='closed'))
        session.get(Borrower, borrower.id).email = f'erase{unique()}@mail.example'
    return borrower


def test_erase_wipes_the_personal_data_keeps_the_rest_and_writes_the_act(
    services, sessions, admin, operator
) -> None:
    phone = unique_phone()
    borrower = closed_borrower(sessions, phone)
    passport = borrower.passport
    call = add_communication(
        sessions, borrower.id, channel='call_out', phone=phone, comment='Обещал', promise_amount=Decimal(500)
    )
    sms = add_communication(sessions, borrower.id, channel='sms', body='Эраст, оплатите', phone=phone)
    with sessions.begin() as session:
        loan_id = session.scalar(select(Loan.id).where(Loan.borrower_id == borrower.id))
        payment = Payment(borrower_id=borrower.id, loan_id=loan_id, amount=Decimal(700), at=TEST_NOW)
        payment.received_at, payment.payment_id = TEST_NOW, f'erase-{unique()}'
        session.add(payment)
    assert services.borrowers.search(operator, 'Стиран Эраст').items
    assert services.borrowers.search(operator, phone).items

    act = services.erasure.erase(admin, borrower.id, 'Отзыв согласия', 'Вх. № 17 от 25.11.2026')

    with sessions() as session:
        b = session.get(Borrower, borrower.id)
        assert (b.last_name, b.first_name, b.middle_name, b.search_name) == ('Удалено', 'Удалено', None, '')
        assert b.birth_date == date(1900, 1, 1)
        assert (b.passport, b.inn, b.snils, b.address, b.email, b.employer) == (None,) * 6
        assert b.pin == borrower.pin and b.total_debt == borrower.total_debt  # kept
        assert session.scalar(select(func.count()).where(BorrowerPhone.borrower_id == borrower.id)) == 0
        contacts = {
            c.id: c for c in session.scalars(select(Communication).where(Communication.borrower_id == b.id))
        }
        assert (contacts[call].comment, contacts[call].phone, contacts[sms].body) == (None, None, None)
        assert contacts[call].promise_amount == Decimal(500) and contacts[call].started_at == TEST_NOW
        assert session.scalar(select(func.count()).where(Loan.borrower_id == b.id)) == 1
        assert session.scalar(select(func.sum(Payment.amount)).where(Payment.borrower_id == b.id)) == 700
        stored = session.scalars(select(ErasureAct).where(ErasureAct.borrower_id == b.id)).one()
    assert (
        stored.reference == 'Вх. № 17 от 25.11.2026'
        and stored.by_user_id == admin.id
        and stored.at == TEST_NOW
    )
    assert act.erased['phones'] == 1 and act.erased['communications'] == 2
    assert {'last_name', 'passport', 'inn', 'snils', 'email', 'birth_date'} <= set(act.erased['borrower'])
    assert services.erasure.act(admin, borrower.id) == act
    (entry,) = audited(sessions, 'borrower.erase', borrower.id)
    assert entry['act_id'] == act.id and entry['reason'] == 'Отзыв согласия' and entry['legal_basis'] is None
    for query in ('Стиран Эраст', 'Стиран', phone, phone[-7:], passport):
        assert borrower.id not in {row.id for row in services.borrowers.search(operator, query).items}


def test_an_active_loan_refuses_unless_a_legal_basis_is_stated(services, sessions, admin) -> None:
    phone = unique_phone()
    borrower = make_borrower(sessions, last='Активнов', phones=(phone,))
    note = add_communication(sessions, borrower.id, comment='Текст')
    with pytest.raises(ServiceError, match='действующий заём'):
        services.erasure.erase(admin, borrower.id, 'Отзыв согласия', 'Вх. № 18')
    with pytest.raises(AccessDenied):
        services.erasure.erase(to_actor(make_user(sessions, role=Role.SUPERVISOR)), borrower.id, 'x', 'y')
    with sessions() as session:  # nothing half-written
        b = session.get(Borrower, borrower.id)
        assert b.last_name == 'Активнов' and b.passport == borrower.passport
        assert session.scalar(select(func.count()).where(BorrowerPhone.borrower_id == borrower.id)) == 1
        assert session.get(Communication, note).comment == 'Текст'
        assert session.scalar(select(func.count()).where(ErasureAct.borrower_id == borrower.id)) == 0
    assert audited(sessions, 'borrower.erase', borrower.id) == []

    act = services.erasure.erase(
        admin, borrower.id, 'Требование', 'Вх. № 19', legal_basis='Решение суда от 20.11.2026 № 2-100/2026'
    )
    assert act.legal_basis == 'Решение суда от 20.11.2026 № 2-100/2026'
    assert audited(sessions, 'borrower.erase', borrower.id)[0]['active_loans'] == 1
    with pytest.raises(ServiceError, match='уже удалены'):
        services.erasure.erase(admin, borrower.id, 'Ещё раз', 'Вх. № 20', legal_basis='Суд')


def test_erase_clears_the_requests_search_text(services, sessions, admin) -> None:
    borrower = closed_borrower(sessions, unique_phone())
    services.requests.open(
        admin, borrower.id, channel='manual', topic_code='payment', subject='Стиран просит', text='Паспорт 1'
    )
    services.erasure.erase(admin, borrower.id, 'Отзыв согласия', 'Вх. № 21')
    with sessions() as session:
        row = session.scalars(select(Request).where(Request.borrower_id == borrower.id)).one()
    assert (row.subject, row.text, row.search_text) == ('Удалено', '', '')
