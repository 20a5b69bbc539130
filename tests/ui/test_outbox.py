"""«Исходящие сообщения»: an administrator finds a failed message, opens its attempts and sends it again;
a password is never sent again from here; supervisors look, operators do not get in."""

from __future__ import annotations

import random
from datetime import timedelta

from nicegui import ui
from nicegui.testing import User
from sqlalchemy import select

from crm.db.engine import make_sessions
from crm.db.models import AuditEntry, OutboxMessage
from crm.domain.clock import SettableClock
from crm.domain.messages import MessageChannel, Purpose
from crm.integrations.bus import RecordingBus
from crm.integrations.delivery import PermanentFailure
from crm.integrations.mail import RecordingMailer
from crm.integrations.sms import SmsMessage
from crm.services import outbox
from crm.services.compliance import ComplianceService
from crm.services.notifier import Notifier
from crm.services.outbox_dispatcher import DispatchPolicy, OutboxDispatcher
from tests.conftest import TEST_NOW
from tests.factories import make_borrower, unique, unique_phone
from tests.ui.conftest import WAIT, log_in, until

REASON = 'шлюз SMS отклонил сообщение: HTTP 400 — destination barred'


class Refusing:
    """A gateway that refuses every message for good (what a 400 from the HTTP gateway comes to)."""

    def send(self, message: SmsMessage) -> str:
        raise PermanentFailure(REASON)

    def close(self) -> None:
        pass


def failed_message(engine, *, secret: bool = False) -> tuple[int, str]:
    """A message the gateway refused, made the way the dispatcher makes one; its id and its borrower.

    Made a month after the suite's "now", so that it is the newest of the test database, at the top."""
    clock = SettableClock(TEST_NOW + timedelta(days=30, seconds=unique()))
    sessions = make_sessions(engine, clock)
    last = f'Исходящий{unique()}'
    borrower = make_borrower(sessions, last=last, phones=(unique_phone(),))
    body = 'Новый пароль ЛК: Qw7rTy2p' if secret else 'ООО МКК «Демо Займ»: 8 800 555-35-35'
    message = outbox.NewMessage(
        MessageChannel.SMS,
        Purpose.PASSWORD if secret else Purpose.SERVICE,
        borrower.phones[0].phone,
        body,
        borrower_id=borrower.id,
        secret=secret,
    )
    with sessions.begin() as session:
        message_id = outbox.queue(session, message, now=clock(), ttl=timedelta(hours=72))
    dispatcher = OutboxDispatcher(
        sessions,
        sms=Refusing(),
        mail=RecordingMailer(),
        compliance=ComplianceService(sessions, clock=clock),
        notifier=Notifier(RecordingBus()),
        policy=DispatchPolicy(),
        clock=clock,
        rng=random.Random(1),
    )
    try:
        while dispatcher.run_once():  # ours, and whatever else of the test database is due
            pass
    finally:
        dispatcher.stop()
    return message_id, last


def status_of(engine, message_id: int) -> str:
    with make_sessions(engine)() as session:
        row = session.get(OutboxMessage, message_id)
        assert row is not None
        return row.status


async def row_of(user: User, message_id: int) -> dict:
    """The message's row of the table, once the page has loaded it."""
    await user.should_see(marker='outbox-table', retries=WAIT)
    (table,) = user.find(marker='outbox-table').elements
    await until(lambda: any(row['id'] == message_id for row in table.rows))
    (row,) = [row for row in table.rows if row['id'] == message_id]
    return row


async def open_outbox_row(user: User, message_id: int) -> list[dict]:
    """Click the message's row; the attempts its dialog shows."""
    row = await row_of(user, message_id)
    user.find(marker='outbox-table').trigger('rowClick', [None, row, 0])
    await user.should_see(marker='outbox-attempts', retries=WAIT)
    (attempts,) = user.find(marker='outbox-attempts').elements
    return list(attempts.rows)


async def test_the_admin_sees_a_failed_message_and_sends_it_again(user: User, engine) -> None:
    message_id, last = failed_message(engine)
    await log_in(user, 'admin', 'admin', path='/admin/outbox')
    await user.should_see('Исходящие сообщения', retries=WAIT)
    row = await row_of(user, message_id)
    assert row['borrower'].startswith(last) and row['borrower_id']
    assert row['status'] == 'Ошибка' and row['reason'] == REASON and row['attempts'] == 1
    assert row['recipient'].startswith('+7 999 ***-**-')  # never the whole number
    (status,) = [s for s in user.find(kind=ui.select).elements if s.props.get('label') == 'Статус']
    status.set_value('failed')  # the filter by status
    (table,) = user.find(marker='outbox-table').elements
    await until(lambda: {r['status'] for r in table.rows} == {'Ошибка'})
    assert message_id in {r['id'] for r in table.rows}
    (attempt,) = await open_outbox_row(user, message_id)
    assert attempt['outcome'] == 'Отказ' and attempt['detail'] == REASON  # the attempt, and why
    await user.should_see('ООО МКК «Демо Займ»: 8 800 555-35-35')
    user.find('Отправить повторно').click()
    await user.should_see('Сообщение снова поставлено в очередь', retries=WAIT)
    assert status_of(engine, message_id) == 'queued'
    with make_sessions(engine)() as session:
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.details.contains(f'"message_id": {message_id}'))
        )
        assert set(actions) == {'outbox.view', 'outbox.resend'}


async def test_a_password_is_not_sent_again_from_the_outbox(user: User, engine) -> None:
    message_id, _ = failed_message(engine, secret=True)
    await log_in(user, 'admin', 'admin', path='/admin/outbox')
    await open_outbox_row(user, message_id)
    await user.should_see('Новый пароль ЛК: ••••••••', retries=WAIT)  # the text masked, as in the database
    user.find('Отправить повторно').click()
    await user.should_see('Пароль ЛК повторно из очереди не отправляется', retries=WAIT)
    assert status_of(engine, message_id) == 'failed'


async def test_supervisors_look_and_operators_do_not_get_in(user: User, create_user, engine) -> None:
    message_id, _ = failed_message(engine)
    await log_in(user, 'supervisor', 'supervisor', path='/admin/outbox')
    assert [attempt['outcome'] for attempt in await open_outbox_row(user, message_id)] == ['Отказ']
    await user.should_not_see('Отправить повторно')
    operator = create_user()
    await log_in(operator, 'operator1', 'operator', path='/admin/outbox')
    await operator.should_see('Раздел доступен только', retries=WAIT)
    await operator.should_not_see(kind=ui.table)
