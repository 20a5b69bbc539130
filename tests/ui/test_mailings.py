"""«Рассылки» in NiceGUI's user simulation: a supervisor builds a segment, checks it, starts the mailing,
watches it reach 100 % and downloads its report; an operator cannot open it."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import timedelta

from nicegui import ui
from nicegui.testing import User

from crm import bootstrap
from crm.config import Settings
from crm.db.engine import make_sessions
from crm.domain.clock import SettableClock
from crm.domain.notifications import MailingProgress, from_wire, to_wire
from crm.integrations.bus import RecordingBus
from crm.integrations.mail import RecordingMailer
from crm.integrations.sms import RecordingSms
from crm.pages.live import LiveHub
from crm.services.mailing_worker import MailingWorker
from crm.services.notifier import Notifier
from crm.services.outbox_dispatcher import OutboxDispatcher
from tests.conftest import TEST_NOW
from tests.factories import unique
from tests.integration.test_mailings import CREDITOR_TEXT, borrower, make_template
from tests.ui.conftest import WAIT, log_in, until
from tests.unit.test_live_hub import FakeClient, nothing


def select_labelled(user: User, label: str) -> ui.select:
    (found,) = [e for e in user.find(kind=ui.select).elements if e.props.get('label') == label]
    return found


async def test_a_supervisor_runs_a_mailing_to_a_segment(user: User, sessions, engine, database_url) -> None:
    city = f'Интерфейсово-{unique()}'
    for _ in range(3):
        borrower(sessions, city)
    borrower(sessions, city, mobile=False)
    template_id = make_template(sessions, '{{ name }}, оплатите {{ overdue_amount }}. ' + CREDITOR_TEXT)

    await log_in(user, 'supervisor', 'supervisor', path='/mailings/new')
    await user.should_see('Новая рассылка', retries=WAIT)
    user.find('Название рассылки').type('Проверка из интерфейса')
    template = select_labelled(user, 'Шаблон')
    await until(lambda: template_id in template.options)
    template.set_value(template_id)
    cities = select_labelled(user, 'Город')
    await until(lambda: city in cities.options)
    cities.set_value([city])
    user.find('Проверить сегмент').click()
    await user.should_see('Пройдёт сегодня: 3', retries=WAIT)
    (preview,) = user.find(kind=ui.table).elements
    counts = {row['what']: row['count'] for row in preview.rows}
    assert counts['В сегменте'] == 4 and counts['С адресом (нет мобильного телефона: 1)'] == 3

    user.find('Запустить сейчас').click()
    await user.should_see('Скачать CSV', retries=WAIT)
    await user.should_see('Проверка из интерфейса', retries=WAIT)
    # the app's own worker queues it within its poll; the dispatcher of this test sends what is due
    clock = SettableClock(TEST_NOW + timedelta(minutes=1))
    system = bootstrap.build(
        Settings(database_url=database_url), engine=engine, bus=RecordingBus(), clock=clock
    )
    own = make_sessions(engine, clock)
    creditor = bootstrap.creditor_of(system.settings)
    notifier = Notifier(RecordingBus())
    worker = MailingWorker(own, system.services.compliance, creditor, notifier, clock=clock)
    dispatcher = OutboxDispatcher(
        own,
        sms=RecordingSms(),
        mail=RecordingMailer(),
        compliance=system.services.compliance,
        notifier=notifier,
        clock=clock,
    )
    await asyncio.to_thread(worker.run_once)
    await asyncio.to_thread(dispatcher.run_once)
    await user.should_see('4 из 4 · 100 %', retries=WAIT)  # the one without a mobile phone counts as done
    await user.should_see('Завершена', retries=WAIT)
    (table,) = [t for t in user.find(kind=ui.table).elements if t.columns[0]['label'] == 'Показатель']
    counts = {row['what']: row['count'] for row in table.rows}
    assert counts['Отправлено'] == 3 and counts['Не отправлялось: нет мобильного телефона'] == 1

    user.find('Скачать CSV').click()
    response = await user.download.next(timeout=5)
    text = response.content.decode('utf-8-sig')
    lines = list(csv.reader(io.StringIO(text), delimiter=';'))
    assert lines[0][0] == 'PIN' and len(lines) == 4
    assert {line[3] for line in lines[1:]} == {'Отправлено'}

    await user.open('/mailings')
    await user.should_see('Новая рассылка', retries=WAIT)
    (listing,) = user.find(kind=ui.table).elements
    await until(lambda: any(row['name'] == 'Проверка из интерфейса' for row in listing.rows))


async def test_an_operator_cannot_open_mailings(user: User) -> None:
    await log_in(user, 'operator1', 'operator', path='/mailings')
    await user.should_see('Раздел доступен только руководителю группы и администратору', retries=WAIT)
    await user.should_not_see('Новая рассылка')
    await user.open('/mailings/new')
    await user.should_see('Раздел доступен только руководителю группы и администратору', retries=WAIT)


async def test_a_scheduled_mailing_can_be_cancelled(user: User, sessions) -> None:
    city = f'Планово-{unique()}'
    borrower(sessions, city)
    template_id = make_template(sessions, 'Напоминаем о платеже. ' + CREDITOR_TEXT)
    await log_in(user, 'admin', 'admin', path='/mailings/new')
    await user.should_see('Новая рассылка', retries=WAIT)
    user.find('Название рассылки').type('На завтра')
    template = select_labelled(user, 'Шаблон')
    await until(lambda: template_id in template.options)
    template.set_value(template_id)
    select_labelled(user, 'Город').set_value([city])
    user.find(kind=ui.button, content='Запланировать').click()  # no moment given yet
    await user.should_see('Укажите дату и время запуска', retries=WAIT)
    user.find('Запланировать на (МСК)').type('27.11.2026 10:00')  # tomorrow morning by the app's clock
    user.find(kind=ui.button, content='Запланировать').click()
    await user.should_see('Запланирована', retries=WAIT)
    await user.should_see('запуск 27.11.2026 10:00 МСК', retries=WAIT)
    user.find(kind=ui.button, content='Отменить').click()
    user.find(kind=ui.button, content='Отменить рассылку').click()
    await user.should_see('Отменена', retries=WAIT)


def test_mailing_progress_goes_to_the_mailing_pages_only() -> None:
    hub = LiveHub()
    page, operator_tab = FakeClient('mailings'), FakeClient('card')
    hub.watch_mailings(page, nothing)
    hub.register(operator_tab, '101', nothing)
    progress = from_wire(to_wire([MailingProgress(7, 'running')]))[0]
    assert progress == MailingProgress(7, 'running')
    assert [tab.client.id for tab in hub._targets(progress)] == ['mailings']
    page.close()
    assert hub._targets(progress) == []
