"""The calls service on the real database: events, idempotency, order, the state machine, results, 230-FZ."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from crm.db.models import AuditEntry, Borrower, Call, Communication, InboundEvent
from crm.domain.errors import AccessDenied, ServiceError
from crm.integrations.bus import Delivery
from crm.services import call_events
from crm.services.auth import to_actor
from crm.services.call_views import CallResult
from crm.services.calls import CallService
from crm.services.inbound import InboundRouter
from tests.conftest import TEST_NOW
from tests.factories import make_borrower, make_user, unique, unique_phone

# Wednesday 26.11.2026, 12:00 in Moscow: inside the weekday window everywhere west of Yakutsk
NOON_MSK = TEST_NOW


@pytest.fixture
def calls(system) -> CallService:
    return system.services.calls


def deliver(inbound: InboundRouter, event_type: str, body: dict[str, Any] | bytes) -> list[str | None]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return inbound.handle_deliveries([Delivery(event_type, raw)])


def incoming(
    call_id: str, number: str, extension: str, at: str = '2026-11-26T12:00:00+03:00'
) -> dict[str, Any]:
    return {'call_id': call_id, 'from': number, 'to_extension': extension, 'at': at}


def rows(sessions, model, **where) -> list:
    with sessions() as session:
        return list(session.scalars(select(model).filter_by(**where)))


def test_incoming_call_records_call_and_communication_and_pops(
    inbound, calls, bus, sessions, operator
) -> None:
    phone = unique_phone()
    borrower = make_borrower(sessions, last='Звонков', phones=(phone,))
    call_id = f'pbx-{unique()}'
    assert deliver(
        inbound, 'telephony.call.incoming', incoming(call_id, '8' + phone[1:], operator.extension)
    ) == [None]
    (call,) = rows(sessions, Call, call_id=call_id)
    assert (call.state, call.borrower_id, call.operator_id, call.number) == (
        'ringing',
        borrower.id,
        operator.id,
        phone,
    )
    (communication,) = rows(sessions, Communication, call_id=call_id)
    assert (communication.channel, communication.direction, communication.borrower_id) == (
        'call_in',
        'in',
        borrower.id,
    )
    assert bus.ui[0] == {  # the name first; then the caller's request (opened or joined: test_requests)
        'kind': 'screen_pop',
        'extension': operator.extension,
        'call_id': call_id,
        'borrower_id': borrower.id,
        'borrower_name': 'Звонков Тест Тестович',
        'number': phone,
        'at': '2026-11-26T09:00:00+00:00',
    }
    assert [item['kind'] for item in bus.ui] == ['screen_pop', 'requests', 'operator_state']
    with sessions() as session:
        assert session.get(Borrower, borrower.id).last_contact_at == datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def test_the_same_event_twice_has_one_effect(inbound, calls, bus, sessions, operator) -> None:
    call_id = f'pbx-{unique()}'
    event = incoming(call_id, unique_phone(), operator.extension)
    assert (
        inbound.handle_deliveries([Delivery('telephony.call.incoming', json.dumps(event).encode())] * 2)
        == [None] * 2
    )
    deliver(inbound, 'telephony.call.incoming', event)
    assert len(rows(sessions, Call, call_id=call_id)) == 1
    assert len(rows(sessions, Communication, call_id=call_id)) == 1
    assert [n['kind'] for n in bus.ui] == ['screen_pop', 'operator_state']  # once each


def test_several_borrowers_on_one_number_most_recent_loan_first(inbound, calls, sessions, operator) -> None:
    phone = unique_phone()
    older = make_borrower(sessions, last='Старый', phones=(phone,))
    newer = make_borrower(sessions, last='Новый', phones=(phone,))
    with sessions.begin() as session:
        session.get(Borrower, newer.id).loans[0].issued_on = date(2026, 11, 1)
    call_id = f'pbx-{unique()}'
    deliver(inbound, 'telephony.call.incoming', incoming(call_id, phone, operator.extension))
    view = calls.view(operator, call_id)
    assert view.borrower_id == newer.id
    assert [o.id for o in view.others] == [older.id]


def test_unknown_number_and_odd_format_still_pop(inbound, calls, bus, sessions, operator) -> None:
    call_id = f'pbx-{unique()}'
    deliver(inbound, 'telephony.call.incoming', incoming(call_id, 'anonymous', operator.extension))
    (call,) = rows(sessions, Call, call_id=call_id)
    assert call.borrower_id is None and call.number == 'anonymous'
    assert bus.ui[0]['borrower_id'] is None


def test_unknown_extension_is_recorded_with_a_warning(inbound, calls, bus, sessions, caplog) -> None:
    call_id = f'pbx-{unique()}'
    assert deliver(inbound, 'telephony.call.incoming', incoming(call_id, unique_phone(), '0000')) == [None]
    assert rows(sessions, Call, call_id=call_id)[0].operator_id is None
    assert 'unknown extension 0000' in caplog.text


@pytest.mark.parametrize(
    'body',
    [
        b'{not json',
        b'\xff\xfe',
        b'[1, 2]',
        json.dumps({'call_id': 'x', 'to_extension': '101', 'at': 'now'}).encode(),
    ],
    ids=['not-json', 'not-utf8', 'not-object', 'missing-from-bad-at'],
)
def test_malformed_events_are_refused_with_a_reason(inbound, calls, body: bytes) -> None:
    (reason,) = inbound.handle_deliveries([Delivery('telephony.call.incoming', body)])
    assert reason


def test_a_bad_event_in_a_batch_does_not_hold_up_the_good_ones(inbound, calls, sessions, operator) -> None:
    good = f'pbx-{unique()}'
    outcome = inbound.handle_deliveries(
        [
            Delivery('telephony.call.incoming', b'{oops'),
            Delivery(
                'telephony.call.incoming',
                json.dumps(incoming(good, unique_phone(), operator.extension)).encode(),
            ),
            Delivery('telephony.unknown', b'{}'),
        ]
    )
    assert outcome[0] and outcome[1] is None and outcome[2]
    assert len(rows(sessions, Call, call_id=good)) == 1


def test_answered_and_ended_before_incoming_wait_and_apply(inbound, calls, sessions, operator) -> None:
    call_id = f'pbx-{unique()}'
    deliver(inbound, 'telephony.call.answered', {'call_id': call_id, 'at': '2026-11-26T12:00:05+03:00'})
    deliver(
        inbound,
        'telephony.call.ended',
        {
            'call_id': call_id,
            'at': '2026-11-26T12:03:05+03:00',
            'duration_s': 180,
            'recording_url': 'http://r/1',
        },
    )
    assert [e.status for e in rows(sessions, InboundEvent, call_id=call_id)] == ['parked', 'parked']
    deliver(inbound, 'telephony.call.incoming', incoming(call_id, unique_phone(), operator.extension))
    (call,) = rows(sessions, Call, call_id=call_id)
    assert (call.state, call.duration_s, call.recording_url) == ('ended', 180, 'http://r/1')
    assert call.answered_at == datetime(2026, 11, 26, 9, 0, 5, tzinfo=UTC)
    assert {e.status for e in rows(sessions, InboundEvent, call_id=call_id)} == {'applied'}


def test_ended_without_answer_is_a_missed_call_and_late_answer_changes_nothing(
    inbound, calls, sessions, operator
) -> None:
    call_id = f'pbx-{unique()}'
    deliver(inbound, 'telephony.call.incoming', incoming(call_id, unique_phone(), operator.extension))
    deliver(inbound, 'telephony.call.ended', {'call_id': call_id, 'at': '2026-11-26T12:00:20+03:00'})
    deliver(inbound, 'telephony.call.answered', {'call_id': call_id, 'at': '2026-11-26T12:00:10+03:00'})
    (call,) = rows(sessions, Call, call_id=call_id)
    assert (call.state, call.answered_at, call.duration_s) == ('ended', None, 0)
    assert rows(sessions, Communication, call_id=call_id)[0].reached is False


def ring_and_answer(inbound, calls, sessions, operator, borrower=None) -> str:
    borrower = borrower or make_borrower(sessions, phones=(unique_phone(),))
    phone = borrower.phones[0].phone if borrower.phones else unique_phone()
    call_id = f'pbx-{unique()}'
    deliver(inbound, 'telephony.call.incoming', incoming(call_id, phone, operator.extension))
    deliver(inbound, 'telephony.call.answered', {'call_id': call_id, 'at': '2026-11-26T12:00:05+03:00'})
    return call_id


def test_hold_resume_transfer_publish_commands_and_follow_the_state_machine(
    inbound, calls, bus, sessions, operator
) -> None:
    other = make_user(sessions)
    call_id = ring_and_answer(inbound, calls, sessions, operator)
    assert calls.hold(operator, call_id).state == 'on_hold'
    with pytest.raises(ServiceError, match='На удержании'):
        calls.hold(operator, call_id)
    assert calls.resume(operator, call_id).state == 'active'
    with pytest.raises(ServiceError, match='не найден'):
        calls.transfer(operator, call_id, '0000')
    view = calls.transfer(operator, call_id, other.extension)
    assert (view.state, view.transferred_to) == ('transferred', other.extension)
    assert bus.commands == [
        ('telephony.hold', {'call_id': call_id}),
        ('telephony.resume', {'call_id': call_id}),
        ('telephony.transfer', {'call_id': call_id, 'to_extension': other.extension}),
    ]
    with pytest.raises(ServiceError):
        calls.hangup(operator, call_id)  # a transferred call is no longer ours to end


def test_hangup_asks_the_pbx_and_the_state_follows_its_ended(inbound, calls, bus, sessions, operator) -> None:
    call_id = ring_and_answer(inbound, calls, sessions, operator)
    assert calls.hangup(operator, call_id).state == 'active'
    assert bus.commands[-1] == ('telephony.hangup', {'call_id': call_id})
    deliver(inbound, 'telephony.call.ended', {'call_id': call_id, 'at': '2026-11-26T12:01:05+03:00'})
    view = calls.view(operator, call_id)
    assert (view.state, view.duration_s, view.needs_result) == ('ended', 60, True)


def test_another_operators_call_is_off_limits(inbound, calls, sessions, operator) -> None:
    call_id = ring_and_answer(inbound, calls, sessions, operator)
    stranger = to_actor(make_user(sessions))
    with pytest.raises(AccessDenied):
        calls.hold(stranger, call_id)


def ended_call(inbound, calls, sessions, operator) -> str:
    call_id = ring_and_answer(inbound, calls, sessions, operator)
    deliver(
        inbound,
        'telephony.call.ended',
        {'call_id': call_id, 'at': '2026-11-26T12:02:05+03:00', 'duration_s': 120},
    )
    return call_id


def test_promise_needs_amount_and_date_and_lands_in_history(inbound, calls, bus, sessions, operator) -> None:
    call_id = ended_call(inbound, calls, sessions, operator)
    with pytest.raises(ServiceError, match='сумму'):
        calls.save_result(operator, call_id, CallResult('promise', promise_date=date(2026, 12, 1)))
    with pytest.raises(ServiceError, match='больше нуля'):
        calls.save_result(
            operator, call_id, CallResult('promise', promise_amount='0', promise_date=date(2026, 12, 1))
        )
    with pytest.raises(ServiceError, match='дату'):
        calls.save_result(operator, call_id, CallResult('promise', promise_amount='5000'))
    with pytest.raises(ServiceError, match='прошлом'):
        calls.save_result(
            operator, call_id, CallResult('promise', promise_amount='5000', promise_date=date(2026, 11, 1))
        )
    view = calls.save_result(
        operator, call_id, CallResult('promise', ' Обещал в пятницу ', '12 500,50', date(2026, 11, 28))
    )
    assert view.result_code == 'promise' and not view.needs_result
    (communication,) = rows(sessions, Communication, call_id=call_id)
    assert (communication.result_name, communication.promise_amount, communication.promise_date) == (
        'Обещание оплаты',
        Decimal('12500.50'),
        date(2026, 11, 28),
    )
    assert communication.comment == 'Обещал в пятницу' and communication.duration_s == 120
    assert {'kind': 'history', 'borrower_id': view.borrower_id} in bus.ui


def test_callback_needs_a_future_moment(inbound, calls, sessions, operator, clock) -> None:
    call_id = ended_call(inbound, calls, sessions, operator)
    with pytest.raises(ServiceError, match='перезвонить'):
        calls.save_result(operator, call_id, CallResult('callback'))
    with pytest.raises(ServiceError, match='будущем'):
        calls.save_result(
            operator, call_id, CallResult('callback', callback_at=clock.now - timedelta(hours=1))
        )
    calls.save_result(operator, call_id, CallResult('callback', callback_at=clock.now + timedelta(days=1)))
    assert rows(sessions, Communication, call_id=call_id)[0].callback_at == clock.now + timedelta(days=1)


def test_unknown_result_code_and_result_during_the_call_are_refused(
    inbound, calls, sessions, operator
) -> None:
    call_id = ring_and_answer(inbound, calls, sessions, operator)
    with pytest.raises(ServiceError, match='после завершения'):
        calls.save_result(operator, call_id, CallResult('consultation'))
    deliver(inbound, 'telephony.call.ended', {'call_id': call_id, 'at': '2026-11-26T12:02:05+03:00'})
    with pytest.raises(ServiceError, match='из списка'):
        calls.save_result(operator, call_id, CallResult('nonsense'))


def test_no_new_call_before_the_last_result_is_saved(inbound, calls, bus, sessions, operator) -> None:
    borrower = make_borrower(sessions, phones=(unique_phone(),))
    call_id = ended_call(inbound, calls, sessions, operator)
    with pytest.raises(ServiceError, match='результат предыдущего'):
        calls.dial(operator, borrower.phones[0].phone, borrower_id=borrower.id)
    calls.save_result(operator, call_id, CallResult('consultation'))
    view = calls.dial(operator, borrower.phones[0].phone, borrower_id=borrower.id)
    assert view.state == 'dialing' and view.direction == 'out'
    assert bus.commands[-1] == (
        'telephony.dial',
        {'call_id': view.call_id, 'extension': operator.extension, 'number': borrower.phones[0].phone},
    )
    with pytest.raises(ServiceError, match='завершите текущий'):
        calls.dial(operator, borrower.phones[0].phone, borrower_id=borrower.id)


def test_dial_refuses_a_bad_number(calls, operator) -> None:
    with pytest.raises(ServiceError, match='Неверный номер'):
        calls.dial(operator, '12345')


def answered_outgoing(inbound, calls, sessions, operator, borrower) -> str:
    view = calls.dial(operator, borrower.phones[0].phone, borrower_id=borrower.id)
    deliver(inbound, 'telephony.call.answered', {'call_id': view.call_id, 'at': calls._clock().isoformat()})
    deliver(inbound, 'telephony.call.ended', {'call_id': view.call_id, 'at': calls._clock().isoformat()})
    calls.save_result(operator, view.call_id, CallResult('refusal'))
    return view.call_id


def test_230_fz_one_reached_call_a_day_about_overdue_debt(inbound, calls, sessions, operator, clock) -> None:
    borrower = make_borrower(sessions, phones=(unique_phone(),), overdue=Decimal('5000'), days_past_due=10)
    answered_outgoing(inbound, calls, sessions, operator, borrower)
    clock.now += timedelta(hours=2)
    with pytest.raises(ServiceError, match='не более 1 звонка в сутки'):
        calls.dial(operator, borrower.phones[0].phone, borrower_id=borrower.id)
    clock.now += timedelta(days=1)
    answered_outgoing(inbound, calls, sessions, operator, borrower)  # Thursday: allowed again
    clock.now += timedelta(days=1)
    with pytest.raises(ServiceError, match='в неделю'):  # Friday: the week's two are used
        calls.dial(operator, borrower.phones[0].phone, borrower_id=borrower.id)


def test_230_fz_unanswered_attempts_do_not_count(inbound, calls, sessions, operator, clock) -> None:
    borrower = make_borrower(sessions, phones=(unique_phone(),), overdue=Decimal('5000'), days_past_due=10)
    for _ in range(3):
        view = calls.dial(operator, borrower.phones[0].phone, borrower_id=borrower.id)
        deliver(inbound, 'telephony.call.ended', {'call_id': view.call_id, 'at': clock.now.isoformat()})
        calls.save_result(operator, view.call_id, CallResult('no_answer'))
        clock.now += timedelta(minutes=30)
    assert len(rows(sessions, Call, borrower_id=borrower.id)) == 3


def test_230_fz_quiet_hours_in_the_borrowers_time_zone(calls, sessions, operator, clock) -> None:
    borrower = make_borrower(sessions, phones=(unique_phone(),), overdue=Decimal('5000'), days_past_due=10)
    with sessions.begin() as session:
        session.get(Borrower, borrower.id).timezone = 'Asia/Vladivostok'
    clock.now = datetime(2026, 11, 26, 12, 30, tzinfo=UTC)  # 15:30 in Moscow, 22:30 in Vladivostok
    with pytest.raises(ServiceError, match='22:30'):
        calls.dial(operator, borrower.phones[0].phone, borrower_id=borrower.id)
    assert rows(sessions, Call, borrower_id=borrower.id) == []  # nothing placed, the refusal on record:
    (refused,) = rows(sessions, AuditEntry, borrower_id=borrower.id, action='call.refused')
    assert refused.user_id == operator.id
    assert json.loads(refused.details or '{}')['rule'] == 'quiet_hours'


def test_230_fz_no_overdue_debt_no_limits_but_the_quiet_hours(
    inbound, calls, sessions, operator, clock
) -> None:
    borrower = make_borrower(sessions, phones=(unique_phone(),))
    clock.now = datetime(2026, 11, 26, 18, 30, tzinfo=UTC)  # 21:30 in Moscow
    answered_outgoing(inbound, calls, sessions, operator, borrower)
    answered_outgoing(inbound, calls, sessions, operator, borrower)  # no daily limit without overdue debt
    clock.now = datetime(2026, 11, 26, 23, 6, tzinfo=UTC)  # 02:06 in Moscow
    with pytest.raises(ServiceError, match='Тихие часы'):
        calls.dial(operator, borrower.phones[0].phone, borrower_id=borrower.id)


@pytest.mark.parametrize('flag', ['contact_refused', 'representative_only', 'bankrupt', 'incapacitated'])
def test_legal_status_blocks_outgoing_calls(calls, sessions, operator, flag: str) -> None:
    borrower = make_borrower(sessions, phones=(unique_phone(),))
    with sessions.begin() as session:
        setattr(session.get(Borrower, borrower.id), flag, True)
    with pytest.raises(ServiceError, match='Звонки запрещены'):
        calls.dial(operator, borrower.phones[0].phone, borrower_id=borrower.id)
    with sessions() as session:
        made = session.scalar(select(func.count()).select_from(Call).where(Call.borrower_id == borrower.id))
    assert made == 0  # nothing half-written


def test_inbound_calls_are_never_limited(inbound, calls, sessions, operator) -> None:
    borrower = make_borrower(sessions, phones=(unique_phone(),), overdue=Decimal('5000'), days_past_due=10)
    with sessions.begin() as session:
        session.get(Borrower, borrower.id).contact_refused = True
    for _ in range(3):
        call_id = ring_and_answer(inbound, calls, sessions, operator, borrower)
        assert calls.view(operator, call_id).state == 'active'
        deliver(inbound, 'telephony.call.ended', {'call_id': call_id, 'at': '2026-11-26T12:02:05+03:00'})
        calls.save_result(operator, call_id, CallResult('consultation'))


def test_linking_the_call_to_the_right_borrower(inbound, calls, sessions, operator) -> None:
    call_id = f'pbx-{unique()}'
    deliver(inbound, 'telephony.call.incoming', incoming(call_id, unique_phone(), operator.extension))
    borrower = make_borrower(sessions, last='Найденный')
    view = calls.link_borrower(operator, call_id, borrower.id)
    assert view.borrower_id == borrower.id
    assert rows(sessions, Communication, call_id=call_id)[0].borrower_id == borrower.id


def test_chat_message_is_recorded_for_the_borrower(inbound, calls, bus, sessions) -> None:
    phone = unique_phone()
    borrower = make_borrower(sessions, phones=(phone,))
    chat = {
        'chat_id': f'chat-{unique()}',
        'from': phone,
        'text': 'Когда платёж?',
        'at': '2026-11-26T12:00:00Z',
    }
    deliver(inbound, 'chat.message.received', chat)
    deliver(inbound, 'chat.message.received', chat)
    (message,) = rows(sessions, Communication, borrower_id=borrower.id, channel='chat')
    assert message.body == 'Когда платёж?'
    assert bus.ui[-1] == {'kind': 'history', 'borrower_id': borrower.id}


def test_the_same_event_from_several_senders_at_once_has_one_effect(
    inbound, calls, sessions, operator
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    event = incoming(f'pbx-{unique()}', unique_phone(), operator.extension)
    with ThreadPoolExecutor(8) as pool:
        fresh = list(pool.map(lambda _: inbound.accept('telephony.call.incoming', event), range(8)))
    assert fresh.count(True) == 1
    assert len(rows(sessions, Call, call_id=event['call_id'])) == 1


def test_a_batch_of_events_is_one_ui_message(inbound, calls, bus, sessions, operator) -> None:
    events = [incoming(f'pbx-{unique()}', unique_phone(), operator.extension) for _ in range(5)]
    inbound.handle_deliveries([Delivery('telephony.call.incoming', json.dumps(e).encode()) for e in events])
    pops = [n['call_id'] for n in bus.ui if n['kind'] == 'screen_pop']
    assert bus.messages == 1 and pops == [e['call_id'] for e in events]


def test_an_event_that_breaks_the_code_is_dead_lettered_not_retried_for_ever(
    inbound, calls, sessions, operator, monkeypatch
) -> None:
    good = incoming(f'pbx-{unique()}', unique_phone(), operator.extension)
    bad = {'call_id': f'pbx-{unique()}', 'at': '2026-11-26T12:00:00Z'}
    original = call_events.apply_to_call

    def broken(call, communication, event):
        raise RuntimeError('a bug')

    monkeypatch.setattr(call_events, 'apply_to_call', broken)
    deliver(inbound, 'telephony.call.incoming', incoming(bad['call_id'], unique_phone(), operator.extension))
    outcome = inbound.handle_deliveries(
        [
            Delivery('telephony.call.answered', json.dumps(bad).encode()),
            Delivery('telephony.call.incoming', json.dumps(good).encode()),
        ]
    )
    monkeypatch.setattr(call_events, 'apply_to_call', original)
    assert outcome == ['processing failed: RuntimeError: a bug', None]
    assert len(rows(sessions, Call, call_id=good['call_id'])) == 1


def as_deliveries(*events: tuple[str, dict[str, Any]]) -> list[Delivery]:
    return [Delivery(event_type, json.dumps(body).encode()) for event_type, body in events]


def test_a_batch_of_incoming_calls_has_the_effect_of_each_one_alone(
    inbound, calls, bus, sessions, operator
) -> None:
    """A burst is recorded set-wise; every case the one-by-one path knows must come out the same."""
    shared, own, twice = unique_phone(), unique_phone(), unique_phone()
    older = make_borrower(sessions, last='Старший', phones=(shared,))
    newer = make_borrower(sessions, last='Младший', phones=(shared,))
    alone = make_borrower(sessions, last='Одинокий', phones=(own,))
    regular = make_borrower(sessions, last='Частый', phones=(twice,))
    with sessions.begin() as session:
        session.get(Borrower, newer.id).loans[0].issued_on = date(2026, 11, 1)
    seen_before = incoming(f'pbx-{unique()}', unique_phone(), operator.extension)
    deliver(inbound, 'telephony.call.incoming', seen_before)
    bus.ui.clear()
    ids = [f'pbx-{unique()}' for _ in range(6)]
    early_answer = {'call_id': ids[5], 'at': '2026-11-26T12:00:30+03:00'}
    outcome = inbound.handle_deliveries(
        as_deliveries(
            ('telephony.call.answered', early_answer),
            ('telephony.call.incoming', incoming(ids[0], shared, operator.extension)),
            ('telephony.call.incoming', incoming(ids[1], '8' + own[1:], operator.extension)),
            ('telephony.call.incoming', incoming(ids[2], 'anonymous', operator.extension)),
            ('telephony.call.incoming', incoming(ids[3], twice, '0000')),
            ('telephony.call.incoming', seen_before),
            (
                'telephony.call.incoming',
                incoming(ids[4], twice, operator.extension, '2026-11-26T12:05:00+03:00'),
            ),
            (
                'telephony.call.incoming',
                incoming(ids[4], twice, operator.extension, '2026-11-26T12:05:00+03:00'),
            ),
            ('telephony.call.incoming', incoming(ids[5], own, operator.extension)),
        )
    )
    assert outcome == [None] * 9
    by_id = {c.call_id: c for c in rows(sessions, Call) if c.call_id in ids}
    assert [by_id[i].borrower_id for i in ids] == [newer.id, alone.id, None, regular.id, regular.id, alone.id]
    assert by_id[ids[0]].other_borrower_ids == str(older.id)
    assert by_id[ids[3]].operator_id is None and by_id[ids[4]].operator_id == operator.id
    assert by_id[ids[5]].state == 'active'  # the answer that came first was applied when the call appeared
    for call_id in ids:
        (communication,) = rows(sessions, Communication, call_id=call_id)
        assert communication.id == by_id[call_id].communication_id
        assert communication.borrower_id == by_id[call_id].borrower_id
    assert len(rows(sessions, Call, call_id=seen_before['call_id'])) == 1
    with sessions() as session:
        assert session.get(Borrower, regular.id).last_contact_at == datetime(2026, 11, 26, 9, 5, tzinfo=UTC)
    pops = [n for n in bus.ui if n['kind'] == 'screen_pop']
    assert [n['call_id'] for n in pops] == ids
    assert [n['borrower_name'] for n in pops[:3]] == ['Младший Тест Тестович', 'Одинокий Тест Тестович', None]
    assert bus.ui[-1] == {
        'kind': 'call_state',
        'extension': operator.extension,
        'call_id': ids[5],
        'state': 'active',
        'borrower_id': alone.id,
    }


def test_a_run_of_incoming_calls_that_fails_is_retried_one_by_one(
    inbound, calls, sessions, operator, monkeypatch
) -> None:
    """A bug hit by one event of a burst dead-letters that event alone; the rest is recorded."""
    import crm.services.call_events as incoming_module

    poison = unique_phone()
    original = incoming_module.phone_key

    def breaks_on_poison(number: str) -> str | None:
        if number == poison:
            raise RuntimeError('a bug')
        return original(number)

    monkeypatch.setattr(incoming_module, 'phone_key', breaks_on_poison)
    ids = [f'pbx-{unique()}' for _ in range(3)]
    outcome = inbound.handle_deliveries(
        as_deliveries(
            ('telephony.call.incoming', incoming(ids[0], unique_phone(), operator.extension)),
            ('telephony.call.incoming', incoming(ids[1], poison, operator.extension)),
            ('telephony.call.incoming', incoming(ids[2], unique_phone(), operator.extension)),
        )
    )
    assert outcome == [None, 'processing failed: RuntimeError: a bug', None]
    assert [len(rows(sessions, Call, call_id=i)) for i in ids] == [1, 0, 1]
    assert [len(rows(sessions, InboundEvent, call_id=i)) for i in ids] == [1, 0, 1]


def test_a_batch_of_several_calls_events_is_applied_in_one_savepoint(
    inbound, calls, sessions, engine
) -> None:
    """Under load a batch is mostly runs of one (a ring, another call's answer, a third's end): one
    savepoint for the whole batch, not one per event, while the effect is that of each event alone."""

    operators = [make_user(sessions) for _ in range(3)]
    ids = [f'pbx-{unique()}' for _ in operators]
    batch = as_deliveries(
        *[
            ('telephony.call.incoming', incoming(i, unique_phone(), o.extension))
            for i, o in zip(ids, operators, strict=True)
        ],
        ('telephony.call.answered', {'call_id': ids[0], 'at': '2026-11-26T12:00:05+03:00'}),
        ('telephony.call.incoming', incoming(f'pbx-{unique()}', unique_phone(), operators[1].extension)),
        ('telephony.call.ended', {'call_id': ids[0], 'at': '2026-11-26T12:01:05+03:00'}),
        ('telephony.call.answered', {'call_id': ids[2], 'at': '2026-11-26T12:00:06+03:00'}),
    )
    outcome, statements = handled_counting(inbound, engine, batch)
    assert outcome == [None] * len(batch)
    assert len([s for s in statements if s.startswith('SAVEPOINT')]) == 1
    with sessions() as session:
        states = dict(session.execute(select(Call.call_id, Call.state).where(Call.call_id.in_(ids))).all())
    assert states == {ids[0]: 'ended', ids[1]: 'ringing', ids[2]: 'active'}


def handled_counting(inbound, engine, batch: list[Delivery]) -> tuple[list[str | None], list[str]]:
    """The batch handled, with the statements it sent."""
    from sqlalchemy import event

    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement)

    event.listen(engine, 'before_cursor_execute', count)
    try:
        return inbound.handle_deliveries(batch), statements
    finally:
        event.remove(engine, 'before_cursor_execute', count)


def _mixed_calls_batch(sessions, size: int) -> tuple[list[str], list[Delivery]]:
    """``size`` calls, each rung, answered and ended, their events interleaved as a busy PBX sends them."""
    operators = [make_user(sessions) for _ in range(size)]
    ids = [f'pbx-{unique()}' for _ in operators]
    events: list[tuple[str, dict[str, Any]]] = []
    for n, (call_id, operator) in enumerate(zip(ids, operators, strict=True)):
        events.append(('telephony.call.incoming', incoming(call_id, unique_phone(), operator.extension)))
        if n >= 1:
            events.append(
                ('telephony.call.answered', {'call_id': ids[n - 1], 'at': '2026-11-26T12:00:05+03:00'})
            )
        if n >= 2:
            events.append(
                ('telephony.call.ended', {'call_id': ids[n - 2], 'at': '2026-11-26T12:01:05+03:00'})
            )
    return ids, as_deliveries(*events)


def test_a_mixed_batch_of_calls_events_takes_as_many_statements_whatever_its_size(
    inbound, calls, sessions, engine
) -> None:
    """Rings, answers and ends are applied as one run: the statements (each a round trip taken inside the
    turn every process waits for) do not grow with the batch."""

    counted: list[int] = []
    for size in (3, 12):
        ids, batch = _mixed_calls_batch(sessions, size)
        outcome, statements = handled_counting(inbound, engine, batch)
        assert outcome == [None] * len(batch)
        if engine.dialect.name == 'sqlite':  # its in-process driver inserts RETURNING rows one at a time
            statements = [s for n, s in enumerate(statements) if n == 0 or s != statements[n - 1]]
        counted.append(len(statements))
        with sessions() as session:
            states = dict(
                session.execute(select(Call.call_id, Call.state).where(Call.call_id.in_(ids))).all()
            )
        assert states == {i: 'ended' for i in ids[:-2]} | {ids[-2]: 'active', ids[-1]: 'ringing'}
    assert counted[0] == counted[1], counted
