"""Requests (обращения) on the real database: by hand, from rings and chats, from broken promises; taking,
assigning, statuses, answers, topics, and what the screens are told after the commit."""

from __future__ import annotations

import json
import threading
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from crm import bootstrap
from crm.config import Settings
from crm.db.models import Communication, Promise, Request, User
from crm.domain import Role
from crm.domain.errors import AccessDenied, NotFound, ServiceError
from crm.domain.notifications import HistoryChanged, RequestsChanged, from_wire
from crm.domain.promises import PromiseStatus
from crm.domain.requests import RequestEventKind, RequestStatus
from crm.integrations.bus import Delivery, RecordingBus
from crm.services.auth import to_actor
from crm.services.promises import PromiseChecker
from crm.services.requests import RequestService
from tests.conftest import TEST_NOW
from tests.factories import make_borrower, make_user, unique, unique_phone

AT = '2026-11-26T12:00:00+03:00'


@pytest.fixture
def requests(system) -> RequestService:
    return system.services.requests


@pytest.fixture
def supervisor(sessions):
    return to_actor(make_user(sessions, role=Role.SUPERVISOR))


@pytest.fixture
def admin(sessions):
    return to_actor(make_user(sessions, role=Role.ADMIN))


def told(bus: RecordingBus, kind: type) -> list[Any]:
    return [n for body in bus.ui for n in from_wire(body) if isinstance(n, kind)]


def ring(inbound, number: str, extension: str, at: str = AT) -> str:
    call_id = f'req-call-{unique()}'
    body = {'call_id': call_id, 'from': number, 'to_extension': extension, 'at': at}
    assert inbound.handle_deliveries([Delivery('telephony.call.incoming', json.dumps(body).encode())]) == [
        None
    ]
    return call_id


def chat(inbound, chat_id: str, sender: str, text: str, at: str = AT) -> None:
    body = {'chat_id': chat_id, 'from': sender, 'text': text, 'at': at}
    assert inbound.handle_deliveries([Delivery('chat.message.received', json.dumps(body).encode())]) == [None]


def open_requests(sessions, borrower_id: int) -> list[Request]:
    with sessions() as session:
        return list(
            session.scalars(
                select(Request)
                .where(
                    Request.borrower_id == borrower_id, Request.status.in_(('new', 'in_progress', 'waiting'))
                )
                .order_by(Request.id)
            )
        )


def by_hand(requests: RequestService, actor, borrower_id: int, **values: str):
    fields = {'channel': 'manual', 'topic_code': 'payment', 'subject': 'Платёж не дошёл', 'text': ''} | values
    return requests.open(actor, borrower_id, **fields)


def queued(requests: RequestService, supervisor, borrower_id: int):
    """An unassigned new request (a supervisor's written-down one goes to the queue)."""
    return by_hand(requests, supervisor, borrower_id)


# --- opening by hand -------------------------------------------------------------------------------
def test_a_request_by_hand_opens_then_the_next_joins_it(requests, bus, sessions, operator) -> None:
    phone = unique_phone()
    borrower = make_borrower(sessions, last='Обращенцев', phones=(phone,))
    view = by_hand(requests, operator, borrower.id, text='Оплатил вчера, долг не уменьшился')
    assert (view.status, view.channel, view.origin, view.topic_name) == ('new', 'manual', 'contact', 'Платёж')
    assert (view.assignee_id, view.assignee_name) == (operator.id, operator.full_name)
    assert view.borrower_name == 'Обращенцев Тест Тестович' and view.pin == borrower.pin
    # opened on Thursday 26.11.2026: 15 working days later
    assert view.due_on == date(2026, 12, 17) == view.deadline.due_on
    assert (view.deadline.working_days_left, view.deadline.warning, view.deadline.overdue) == (
        15,
        False,
        False,
    )
    with sessions() as session:
        search = session.get(Request, view.id).search_text
    assert all(
        part in search for part in ('обращенцев', 'тест тестович', borrower.pin, phone, 'оплатил вчера')
    )

    again = by_hand(requests, operator, borrower.id, subject='Реквизиты', text='Пришлите реквизиты')
    assert again.id == view.id and again.subject == 'Платёж не дошёл'
    lines = requests.history(view.id)
    assert [line.kind for line in lines] == [RequestEventKind.OPENED, RequestEventKind.CONTACT]
    assert lines[0].to_status == 'new' and lines[0].actor_name == operator.full_name
    assert lines[1].text == 'Реквизиты\nПришлите реквизиты'
    assert [r.id for r in requests.of_borrower(borrower.id)] == [view.id]
    assert requests.get(view.id) == again
    changes = told(bus, RequestsChanged)
    assert len(changes) == 2 and all(c.borrower_ids == (borrower.id,) for c in changes)
    assert changes[-1].new_count == requests.new_count()


@pytest.mark.parametrize(
    ('values', 'message'),
    [
        ({'topic_code': 'no_such_topic'}, 'Выберите тему обращения из списка'),
        ({'subject': '   '}, 'Тема: заполните поле'),
        ({'subject': 'т' * 201}, 'Тема: не длиннее 200 символов (сейчас 201)'),
        ({'text': 'т' * 4001}, 'Текст обращения: не длиннее 4000 символов (сейчас 4001)'),
        ({'channel': 'system'}, 'Выберите канал обращения'),
        ({'channel': 'fax'}, 'Выберите канал обращения'),
    ],
)
def test_a_request_by_hand_is_checked(requests, sessions, operator, values, message) -> None:
    borrower = make_borrower(sessions)
    with pytest.raises(ServiceError) as refused:
        by_hand(requests, operator, borrower.id, **values)
    assert refused.value.message == message
    assert open_requests(sessions, borrower.id) == []


def test_a_request_for_nobody_is_not_found(requests, operator) -> None:
    with pytest.raises(NotFound):
        by_hand(requests, operator, 10**9)


# --- taking and assigning --------------------------------------------------------------------------
def test_of_two_operators_taking_at_once_one_gets_it(requests, sessions, supervisor) -> None:
    view = queued(requests, supervisor, make_borrower(sessions).id)
    assert view.assignee_id is None and view.status == 'new'
    first, second = (to_actor(make_user(sessions)) for _ in range(2))
    start = threading.Barrier(2)
    results: dict[int, Any] = {}

    def take(actor) -> None:
        start.wait()
        try:
            results[actor.id] = requests.take(actor, view.id)
        except ServiceError as error:
            results[actor.id] = error

    threads = [threading.Thread(target=take, args=(a,)) for a in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    won = [v for v in results.values() if not isinstance(v, ServiceError)]
    lost = [v for v in results.values() if isinstance(v, ServiceError)]
    assert len(won) == 1 and len(lost) == 1, results
    winner = won[0].assignee_name
    assert won[0].status == 'in_progress' and lost[0].message == f'Обращение уже взял в работу {winner}'
    taken = [line for line in requests.history(view.id) if line.kind == RequestEventKind.TAKEN]
    assert len(taken) == 1 and (taken[0].from_status, taken[0].to_status) == ('new', 'in_progress')


def test_taking_twice_is_harmless_and_a_finished_one_is_refused(
    requests, sessions, supervisor, operator
) -> None:
    view = queued(requests, supervisor, make_borrower(sessions).id)
    assert requests.take(operator, view.id).assignee_id == operator.id
    assert requests.take(operator, view.id).assignee_id == operator.id
    assert len(requests.history(view.id)) == 2
    requests.answer(operator, view.id, 'Ответили')
    with pytest.raises(ServiceError, match='уже решено или закрыто'):
        requests.take(to_actor(make_user(sessions)), view.id)


def test_only_supervisors_and_admins_assign_and_only_to_active_staff(
    requests, sessions, supervisor, admin, operator
) -> None:
    view = queued(requests, supervisor, make_borrower(sessions).id)
    with pytest.raises(AccessDenied):
        requests.assign(operator, view.id, operator.id)
    assigned = requests.assign(supervisor, view.id, operator.id)
    assert (assigned.assignee_id, assigned.status) == (operator.id, 'new')
    other = to_actor(make_user(sessions))
    assert requests.assign(admin, view.id, other.id).assignee_name == other.full_name
    gone = make_user(sessions)
    with sessions.begin() as session:
        session.get(User, gone.id).active = False
    for user_id in (gone.id, admin.id, 10**9):
        with pytest.raises(ServiceError, match='только действующего сотрудника'):
            requests.assign(supervisor, view.id, user_id)
    lines = [line for line in requests.history(view.id) if line.kind == RequestEventKind.ASSIGNED]
    assert [line.assignee_name for line in lines] == [operator.full_name, other.full_name]
    assert [line.actor_name for line in lines] == [supervisor.full_name, admin.full_name]


# --- statuses --------------------------------------------------------------------------------------
def test_statuses_move_by_the_rules(requests, sessions, supervisor, operator, clock) -> None:
    view = queued(requests, supervisor, make_borrower(sessions).id)
    with pytest.raises(ServiceError, match='Сначала возьмите обращение в работу'):
        requests.set_status(operator, view.id, 'waiting')
    with pytest.raises(ServiceError, match='Из статуса «Новое» нельзя перейти в «Ожидает клиента»'):
        requests.set_status(supervisor, view.id, 'waiting')
    taken = requests.set_status(operator, view.id, 'in_progress')  # «В работе» of an unassigned one takes it
    assert (taken.status, taken.assignee_id) == ('in_progress', operator.id)
    with pytest.raises(ServiceError, match='Это обращение другого сотрудника'):
        requests.set_status(to_actor(make_user(sessions)), view.id, 'waiting')
    assert requests.set_status(operator, view.id, 'waiting', 'Ждём выписку').status == 'waiting'
    assert requests.set_status(operator, view.id, 'in_progress').status == 'in_progress'
    clock.advance(hours=1)
    resolved = requests.set_status(operator, view.id, 'resolved')
    assert resolved.resolved_at == TEST_NOW + timedelta(hours=1)
    reopened = requests.set_status(operator, view.id, 'in_progress', 'Клиент перезвонил')
    assert reopened.status == 'in_progress' and reopened.resolved_at is None
    requests.set_status(operator, view.id, 'resolved')
    closed = requests.set_status(supervisor, view.id, 'closed')
    assert closed.status == 'closed' and closed.resolved_at is not None and not closed.is_open
    for status in ('in_progress', 'resolved', 'new'):
        with pytest.raises(ServiceError, match='Из статуса «Закрыто» нельзя перейти'):
            requests.set_status(supervisor, view.id, status)
    with pytest.raises(ServiceError, match='Неизвестный статус'):
        requests.set_status(supervisor, view.id, 'lost')
    moves = [(e.from_status, e.to_status, e.text) for e in requests.history(view.id) if e.kind == 'status']
    assert moves == [
        ('new', 'in_progress', ''),
        ('in_progress', 'waiting', 'Ждём выписку'),
        ('waiting', 'in_progress', ''),
        ('in_progress', 'resolved', ''),
        ('resolved', 'in_progress', 'Клиент перезвонил'),
        ('in_progress', 'resolved', ''),
        ('resolved', 'closed', ''),
    ]


def test_reopening_is_refused_while_another_request_is_open(requests, sessions, operator) -> None:
    borrower = make_borrower(sessions)
    first = by_hand(requests, operator, borrower.id)
    requests.set_status(operator, first.id, 'in_progress')
    requests.set_status(operator, first.id, 'resolved')
    second = by_hand(requests, operator, borrower.id)
    assert second.id != first.id
    with pytest.raises(ServiceError, match=f'уже есть открытое обращение № {second.id}'):
        requests.set_status(operator, first.id, 'in_progress')


def test_topic_and_comment(requests, sessions, operator) -> None:
    view = by_hand(requests, operator, make_borrower(sessions).id)
    assert requests.set_topic(operator, view.id, 'complaint').topic_name == 'Жалоба'
    with pytest.raises(ServiceError, match='Выберите тему'):
        requests.set_topic(operator, view.id, 'nothing')
    requests.comment(to_actor(make_user(sessions)), view.id, 'Клиент просил перезвонить после 18:00')
    with pytest.raises(ServiceError, match='Комментарий: заполните поле'):
        requests.comment(operator, view.id, '  ')
    lines = requests.history(view.id)
    assert [(line.kind, line.text) for line in lines[1:]] == [
        ('topic', 'Жалоба'),
        ('comment', 'Клиент просил перезвонить после 18:00'),
    ]


# --- the answer ------------------------------------------------------------------------------------
def test_an_answer_is_a_communication_and_resolves(
    requests, bus, sessions, supervisor, operator, clock
) -> None:
    borrower = make_borrower(sessions)
    view = queued(requests, supervisor, borrower.id)
    with pytest.raises(ServiceError, match='Сначала возьмите'):
        requests.answer(operator, view.id, 'Платёж зачислен')
    requests.take(operator, view.id)
    clock.advance(minutes=5)
    with pytest.raises(ServiceError, match='Ответ: заполните поле'):
        requests.answer(operator, view.id, '')
    answered = requests.answer(operator, view.id, 'Платёж зачислен 25.11, долг пересчитан')
    assert answered.status == 'resolved' and answered.resolved_at == clock()
    line = requests.history(view.id)[-1]
    assert (line.kind, line.from_status, line.to_status) == ('answer', 'in_progress', 'resolved')
    with sessions() as session:
        note = session.get(Communication, line.communication_id)
        assert (note.channel, note.direction, note.comment, note.operator_id, note.borrower_id) == (
            'note',
            'out',
            'Платёж зачислен 25.11, долг пересчитан',
            operator.id,
            borrower.id,
        )
        assert not note.collection
    assert HistoryChanged(borrower.id) in told(bus, HistoryChanged)
    assert bus.commands == []  # recorded, not sent
    with pytest.raises(ServiceError, match='уже решено или закрыто'):
        requests.answer(operator, view.id, 'Ещё раз')


# --- inbound contacts ------------------------------------------------------------------------------
def test_a_ring_from_a_known_number_opens_a_request_and_the_next_joins(
    inbound, requests, bus, sessions, operator
) -> None:
    phone = unique_phone()
    borrower = make_borrower(sessions, phones=(phone,))
    ring(inbound, phone, operator.extension)
    (opened,) = open_requests(sessions, borrower.id)
    assert (opened.channel, opened.origin, opened.status, opened.subject) == (
        'call',
        'contact',
        'new',
        'Входящий звонок',
    )
    assert opened.assignee_id is None and phone in opened.search_text
    ring(inbound, f'8{phone[1:]}', operator.extension, at='2026-11-26T12:30:00+03:00')
    assert [r.id for r in open_requests(sessions, borrower.id)] == [opened.id]
    lines = requests.history(opened.id)
    assert [line.kind for line in lines] == ['opened', 'contact']
    with sessions() as session:
        calls = session.scalars(
            select(Communication.id)
            .where(Communication.borrower_id == borrower.id)
            .order_by(Communication.id)
        ).all()
        touched = session.get(Request, opened.id).updated_at
    assert [line.communication_id for line in lines] == list(calls)
    assert touched == lines[1].at
    changes = told(bus, RequestsChanged)
    assert changes[0].new_count is not None and changes[1].new_count is None  # a join leaves the count
    assert all(c.request_ids == (opened.id,) for c in changes)


def test_a_ring_from_an_unknown_number_opens_nothing(inbound, bus, sessions, operator) -> None:
    with sessions() as session:
        before = session.scalar(select(Request.id).order_by(Request.id.desc()).limit(1))
    ring(inbound, f'7000{unique():07d}', operator.extension)
    with sessions() as session:
        assert session.scalar(select(Request.id).order_by(Request.id.desc()).limit(1)) == before
    assert told(bus, RequestsChanged) == []


def test_a_ring_joins_a_request_written_down_by_hand(inbound, requests, sessions, operator) -> None:
    phone = unique_phone()
    borrower = make_borrower(sessions, phones=(phone,))
    view = by_hand(requests, operator, borrower.id)
    ring(inbound, phone, operator.extension)
    assert [line.kind for line in requests.history(view.id)] == ['opened', 'contact']


def test_a_contact_on_a_request_waiting_for_the_borrower_puts_it_back_to_work(
    inbound, requests, sessions, operator
) -> None:
    phone = unique_phone()
    borrower = make_borrower(sessions, phones=(phone,))
    view = by_hand(requests, operator, borrower.id)
    requests.set_status(operator, view.id, 'in_progress')
    assert requests.set_status(operator, view.id, 'waiting').status == 'waiting'
    ring(inbound, phone, operator.extension)
    assert requests.get(view.id).status == 'in_progress'


def test_a_chat_message_opens_a_request_and_the_next_joins(inbound, requests, sessions) -> None:
    phone = unique_phone()
    borrower = make_borrower(sessions, phones=(phone,))
    chat_id = f'req-chat-{unique()}'
    chat(inbound, chat_id, phone, 'Здравствуйте, как оплатить?')
    (opened,) = open_requests(sessions, borrower.id)
    assert (opened.channel, opened.subject, opened.text) == (
        'chat',
        'Сообщение в чате',
        'Здравствуйте, как оплатить?',
    )
    chat(inbound, chat_id, phone, 'Картой можно?', at='2026-11-26T12:01:00+03:00')
    lines = requests.history(opened.id)
    assert [(line.kind, line.text) for line in lines] == [
        ('opened', 'Здравствуйте, как оплатить?'),
        ('contact', 'Картой можно?'),
    ]
    assert all(line.communication_id is not None for line in lines)


def test_a_chat_linked_later_joins_the_borrowers_request(
    inbound, requests, system, sessions, operator
) -> None:
    borrower = make_borrower(sessions)
    chat_id = f'req-chat-{unique()}'
    stranger = f'7000{unique():07d}'
    chat(inbound, chat_id, stranger, 'Я по поводу долга')
    chat(inbound, chat_id, stranger, 'Телефон сменил', at='2026-11-26T12:02:00+03:00')
    assert open_requests(sessions, borrower.id) == []
    system.services.chats.link(operator, chat_id, borrower.id)
    (opened,) = open_requests(sessions, borrower.id)
    assert opened.channel == 'chat' and opened.text == 'Я по поводу долга'
    assert [line.text for line in requests.history(opened.id)] == ['Я по поводу долга', 'Телефон сменил']


# --- broken promises -------------------------------------------------------------------------------
def test_a_broken_promise_opens_a_request_for_the_assigned_operator(
    system, bus, sessions, operator, clock
) -> None:
    borrower = make_borrower(sessions, operator_id=operator.id, overdue=Decimal('5000'), days_past_due=10)
    promise = system.services.promises.create(operator, borrower.id, Decimal('1500'), date(2026, 11, 27))
    checker = next(w for w in system.workers if isinstance(w, PromiseChecker))  # as bootstrap wires it
    checker.run_once()
    assert open_requests(sessions, borrower.id) == []  # not due yet
    clock.advance(days=3)  # 29.11: the 27th and its day of grace have passed
    bus.ui.clear()
    while checker.run_once():
        pass
    with sessions() as session:
        assert session.get(Promise, promise.id).status == PromiseStatus.BROKEN
    (request,) = open_requests(sessions, borrower.id)
    assert (request.origin, request.channel, request.topic_code, request.subject) == (
        'broken_promise',
        'system',
        'broken_promise',
        'Нарушено обещание',
    )
    assert (request.status, request.assignee_id) == ('new', operator.id)
    assert request.due_on == date(2026, 12, 18)  # opened on Sunday 29.11: 15 working days from Monday
    (line,) = system.services.requests.history(request.id)
    assert line.kind == 'opened' and line.actor_name is None and line.assignee_name == operator.full_name
    assert '1 500,00' in line.text and '27.11.2026' in line.text
    changes = [c for c in told(bus, RequestsChanged) if borrower.id in c.borrower_ids]
    assert len(changes) == 1 and changes[0].new_count is not None


# --- counts and notifications ----------------------------------------------------------------------
class CommittedCheckingBus(RecordingBus):
    """Reads the count of new requests from another session at each publish: what is published was
    committed before."""

    def __init__(self, sessions) -> None:
        super().__init__()
        self.sessions = sessions
        self.seen: list[int] = []

    def publish_ui(self, body: dict[str, Any]) -> None:
        with self.sessions() as session:
            self.seen.append(session.query(Request).filter(Request.status == RequestStatus.NEW.value).count())
        super().publish_ui(body)


def test_new_count_is_published_after_the_commit(engine, database_url, clock, sessions, supervisor) -> None:
    bus = CommittedCheckingBus(sessions)
    system = bootstrap.build(Settings(database_url=database_url), engine=engine, bus=bus, clock=clock)
    requests = system.services.requests
    phone = unique_phone()
    borrower = make_borrower(sessions, phones=(phone,))
    before = requests.new_count()
    view = queued(requests, supervisor, borrower.id)
    assert requests.new_count() == before + 1
    taken = requests.take(supervisor, view.id)
    assert taken.status == 'in_progress' and requests.new_count() == before
    ring(system.services.inbound, phone, supervisor.extension)  # joins the open request
    counts = [c.new_count for c in told(bus, RequestsChanged)]
    assert counts == [before + 1, before, None]
    assert bus.seen[:2] == [before + 1, before]
    operator = to_actor(make_user(sessions))
    assert requests.queue_count(supervisor) == requests.new_count()
    assert requests.queue_count(operator) <= requests.new_count()


def test_a_notification_crosses_the_wire_intact() -> None:
    from crm.domain.notifications import to_wire

    note = RequestsChanged(new_count=3, borrower_ids=(1, 2), request_ids=(5,))
    assert from_wire(json.loads(json.dumps(to_wire([note])))) == [note]


# --- topics ----------------------------------------------------------------------------------------
def test_admins_keep_the_topic_list(requests, sessions, admin, operator) -> None:
    code = f'topic_{unique()}'
    with pytest.raises(AccessDenied):
        requests.save_topic(operator, code, 'Новая тема', True)
    created = requests.save_topic(admin, code, f'Тема {code}', True, new=True)
    assert created.active and created in requests.topics()
    with pytest.raises(ServiceError, match='уже есть'):
        requests.save_topic(admin, code, 'Другое имя', True, new=True)
    with pytest.raises(ServiceError, match='Тема «Платёж» уже есть'):
        requests.save_topic(admin, code, 'Платёж', True)
    with pytest.raises(ServiceError, match='Код темы'):
        requests.save_topic(admin, 'Плохой код', 'Имя', True)
    retired = requests.save_topic(admin, code, f'Тема {code}', False)
    assert retired not in requests.topics() and retired in requests.topics(include_retired=True)
    borrower = make_borrower(sessions)
    with pytest.raises(ServiceError, match='Выберите тему'):
        by_hand(requests, operator, borrower.id, topic_code=code)
    assert [t.code for t in requests.topics()][:3] == ['payment', 'requisites', 'restructuring']
