"""«Добавить запись»: notes and contacts outside the CRM's telephony, their validation, promises, the
230-FZ ledger and the audit."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from crm.db.models import AuditEntry, Borrower, Communication, Promise
from crm.domain import Role
from crm.domain.contact_rules import LegalFlag
from crm.domain.errors import NotFound, ServiceError
from tests.conftest import TEST_NOW
from tests.factories import make_borrower

HOUR = timedelta(hours=1)


@pytest.fixture
def records(system):
    return system.services.contact_records


def debtor(sessions) -> int:
    return make_borrower(sessions, overdue=Decimal(10000), days_past_due=30).id


def communications(sessions, borrower_id: int) -> list[Communication]:
    with sessions() as session:
        return list(
            session.scalars(
                select(Communication)
                .where(Communication.borrower_id == borrower_id)
                .order_by(Communication.started_at, Communication.id)
            )
        )


def count(sessions, model, borrower_id: int) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model).where(model.borrower_id == borrower_id))


def test_each_channel_is_recorded_as_a_contact(records, system, sessions, operator, bus) -> None:
    borrower_id = debtor(sessions)
    note = records.record(
        operator, borrower_id, channel='note', result_code=None, comment=' Просил не звонить до 18 '
    )
    visit = records.record(
        operator,
        borrower_id,
        channel='visit',
        result_code='consultation',
        comment='Дома',
        at=TEST_NOW - 3 * HOUR,
    )
    letter = records.record(
        operator, borrower_id, channel='letter', result_code=None, comment='Заказное', at=TEST_NOW - 48 * HOUR
    )
    other = records.record(
        operator,
        borrower_id,
        channel='call_other',
        result_code='no_answer',
        comment='',
        at=TEST_NOW - 2 * HOUR,
    )
    incoming = records.record(
        operator, borrower_id, channel='call_in_other', result_code='refusal', comment=''
    )
    assert note.warning is None and other.warning is None and visit.warning is None
    rows = {c.id: c for c in communications(sessions, borrower_id)}
    expected = {
        note.id: ('note', 'out', None, None, 'Просил не звонить до 18', TEST_NOW),
        visit.id: ('visit', 'out', 'consultation', True, 'Дома', TEST_NOW - 3 * HOUR),
        letter.id: ('letter', 'out', None, None, 'Заказное', TEST_NOW - 48 * HOUR),
        other.id: ('call_other', 'out', 'no_answer', False, None, TEST_NOW - 2 * HOUR),
        incoming.id: ('call_in_other', 'in', 'refusal', True, None, TEST_NOW),
    }
    got = {
        i: (c.channel, c.direction, c.result_code, c.reached, c.comment, c.started_at)
        for i, c in rows.items()
    }
    assert got == expected
    assert all(rows[i].operator_id == operator.id and not rows[i].collection for i in rows)
    assert {'kind': 'history', 'borrower_id': borrower_id} in bus.ui  # the open card redraws live
    card = system.services.borrowers.card_again(operator, borrower_id)
    assert {item.channel for item in card.communications[:2]} == {'note', 'call_in_other'}  # both now
    assert card.last_contact_at == TEST_NOW  # the call taken on another number; the note does not count


@pytest.mark.parametrize(
    ('fields', 'refusal'),
    [
        ({'channel': 'fax', 'result_code': None, 'comment': 'x'}, 'Выберите вид записи'),
        ({'channel': 'note', 'result_code': None, 'comment': '  '}, 'Напишите текст заметки'),
        ({'channel': 'note', 'result_code': 'refusal', 'comment': 'x'}, 'без результата'),
        ({'channel': 'visit', 'result_code': None, 'comment': 'x'}, 'Выберите результат'),
        ({'channel': 'visit', 'result_code': 'no_such', 'comment': 'x'}, 'Выберите результат'),
        ({'channel': 'note', 'result_code': None, 'comment': 'x' * 4001}, 'длиннее 4000'),
        ({'channel': 'note', 'result_code': None, 'comment': 'a\x00b'}, 'недопустимые символы'),
        (
            {'channel': 'note', 'result_code': None, 'comment': 'x', 'at': TEST_NOW + timedelta(minutes=1)},
            'будущем',
        ),
        (
            {'channel': 'note', 'result_code': None, 'comment': 'x', 'at': TEST_NOW - timedelta(days=31)},
            'старше 30',
        ),
        ({'channel': 'visit', 'result_code': 'promise', 'comment': 'x'}, 'сумму'),
        (
            {'channel': 'visit', 'result_code': 'promise', 'comment': 'x', 'promise_amount': '500'},
            'дату',
        ),
        (
            {
                'channel': 'visit',
                'result_code': 'promise',
                'comment': 'x',
                'promise_amount': '500',
                'promise_date': date(2030, 1, 1),
            },
            'не позже',
        ),
        ({'channel': 'call_other', 'result_code': 'callback', 'comment': 'x'}, 'перезвонить'),
        (
            {
                'channel': 'call_other',
                'result_code': 'callback',
                'comment': 'x',
                'callback_at': TEST_NOW - HOUR,
            },
            'в будущем',
        ),
    ],
)
def test_refusals_write_nothing(records, sessions, operator, bus, fields, refusal) -> None:
    borrower_id = debtor(sessions)
    with pytest.raises(ServiceError, match=refusal):
        records.record(operator, borrower_id, **fields)
    assert count(sessions, Communication, borrower_id) == 0
    assert count(sessions, Promise, borrower_id) == 0
    assert count(sessions, AuditEntry, borrower_id) == 0
    assert bus.ui == []


def test_an_unknown_borrower_and_the_edges_of_the_period(records, sessions, operator) -> None:
    with pytest.raises(NotFound):
        records.record(operator, 10**9, channel='note', result_code=None, comment='x')
    borrower_id = debtor(sessions)
    oldest = records.record(
        operator, borrower_id, channel='note', result_code=None, comment='x', at=TEST_NOW - timedelta(days=30)
    )
    assert oldest.at == TEST_NOW - timedelta(days=30)


def test_a_promise_made_at_a_visit_is_a_promise_like_a_calls(records, system, sessions, operator) -> None:
    borrower_id = debtor(sessions)
    recorded = records.record(
        operator,
        borrower_id,
        channel='visit',
        result_code='promise',
        comment='Обещал в понедельник',
        at=TEST_NOW - 3 * HOUR,
        promise_amount='7 500,50',
        promise_date=date(2026, 11, 30),
    )
    with sessions() as session:
        promise = session.get(Promise, recorded.promise_id)
        assert promise is not None
        assert (promise.amount, promise.due_on, promise.status, promise.communication_id) == (
            Decimal('7500.50'),
            date(2026, 11, 30),
            'open',
            recorded.id,
        )
        assert promise.operator_id == operator.id
    (row,) = communications(sessions, borrower_id)
    assert (row.promise_amount, row.promise_date, row.result_name) == (
        Decimal('7500.50'),
        date(2026, 11, 30),
        'Обещание оплаты',
    )
    (view,) = system.services.promises.of_borrower(borrower_id)
    assert view.id == recorded.promise_id and view.amount == Decimal('7500.50')
    card = system.services.borrowers.card_again(operator, borrower_id)
    assert card.communications[0].promise_status == 'open'  # the history shows what became of it


def test_a_reached_call_on_another_phone_counts_in_the_calls_ledger(
    records, system, sessions, operator
) -> None:
    compliance = system.services.compliance
    borrower_id = debtor(sessions)
    unreached = records.record(
        operator,
        borrower_id,
        channel='call_other',
        result_code='no_answer',
        comment='',
        at=TEST_NOW - 2 * HOUR,
    )
    assert unreached.reached is False and compliance.outgoing_call(borrower_id).allowed
    records.record(operator, borrower_id, channel='note', result_code=None, comment='Заметка не считается')
    records.record(operator, borrower_id, channel='call_in_other', result_code='consultation', comment='')
    visit = records.record(operator, borrower_id, channel='visit', result_code='consultation', comment='')
    assert visit.warning is None and compliance.outgoing_call(borrower_id).allowed  # not a telephone call
    reached = records.record(
        operator, borrower_id, channel='call_other', result_code='refusal', comment='', at=TEST_NOW - HOUR
    )
    assert reached.reached is True and reached.warning is None
    verdict = compliance.outgoing_call(borrower_id)
    assert not verdict.allowed and verdict.rule == 'limit_day'
    assert 'уже был 26.11 в 11:00' in (verdict.reason or '')  # 08:00 UTC = 11:00 in Moscow


def test_a_call_over_the_limit_is_recorded_with_a_warning(records, sessions, operator) -> None:
    borrower_id = debtor(sessions)
    first = records.record(
        operator, borrower_id, channel='call_other', result_code='refusal', comment='', at=TEST_NOW - 2 * HOUR
    )
    second = records.record(operator, borrower_id, channel='call_other', result_code='refusal', comment='')
    assert first.warning is None
    assert second.warning is not None and second.warning.startswith('Звонок нарушил 230-ФЗ: Лимит 230-ФЗ')
    assert [c.id for c in communications(sessions, borrower_id)] == [first.id, second.id]  # recorded anyway
    night = records.record(
        operator,
        borrower_id,
        channel='call_other',
        result_code='no_answer',
        comment='',
        at=TEST_NOW - 12 * HOUR,
    )  # 00:00 in Moscow
    assert night.warning is not None and 'Тихие часы' in night.warning


def test_a_legal_status_refuses_a_visit_and_marks_a_call(records, system, sessions, operator) -> None:
    borrower_id = debtor(sessions)
    supervisor = replace(operator, role=Role.SUPERVISOR)
    system.services.borrowers.set_legal_flags(supervisor, borrower_id, [LegalFlag.BANKRUPT])
    with pytest.raises(ServiceError, match=r'Личная встреча запрещена.*Банкротство'):
        records.record(operator, borrower_id, channel='visit', result_code='consultation', comment='')
    assert count(sessions, Communication, borrower_id) == 0
    call = records.record(operator, borrower_id, channel='call_other', result_code='consultation', comment='')
    assert call.warning is not None and 'банкротом' in call.warning
    note = records.record(operator, borrower_id, channel='note', result_code=None, comment='Суд 12.12')
    assert note.warning is None


def test_a_second_visit_in_a_week_is_recorded_with_a_warning(records, sessions, operator) -> None:
    borrower_id = debtor(sessions)
    monday = TEST_NOW - timedelta(days=3)  # Monday 23.11, 12:00 in Moscow
    nobody = records.record(
        operator, borrower_id, channel='visit', result_code='no_answer', comment='', at=monday
    )
    first = records.record(
        operator, borrower_id, channel='visit', result_code='consultation', comment='', at=monday + HOUR
    )
    second = records.record(operator, borrower_id, channel='visit', result_code='refusal', comment='')
    assert nobody.warning is None and first.warning is None  # nobody at home is no interaction
    assert second.warning == (
        'Встреча нарушила 230-ФЗ: Лимит 230-ФЗ: не более 1 личной встречи в неделю '
        '(уже была 23.11 в 13:00 по местному времени)'
    )


def test_every_record_is_audited(records, sessions, operator) -> None:
    borrower_id = debtor(sessions)
    recorded = records.record(
        operator, borrower_id, channel='visit', result_code='consultation', comment='', at=TEST_NOW - HOUR
    )
    with sessions() as session:
        (entry,) = session.scalars(select(AuditEntry).where(AuditEntry.borrower_id == borrower_id)).all()
        assert (entry.action, entry.user_id, entry.at) == ('contact.record', operator.id, TEST_NOW)
        details = json.loads(entry.details or '{}')
        borrower = session.get(Borrower, borrower_id)
        assert borrower is not None and borrower.last_contact_at == TEST_NOW - HOUR
    assert details == {
        'channel': 'visit',
        'result': 'consultation',
        'at': (TEST_NOW - HOUR).isoformat(),
        'communication_id': recorded.id,
        'broke': None,
    }
