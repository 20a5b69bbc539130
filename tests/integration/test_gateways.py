"""The real adapters of the message ports against real servers on loopback (``tests/loopback.py``).

SMS gateway over HTTP, SMTP (aiosmtpd; login, smtps and STARTTLS with a test CA), the personal-account
site over HTTP: what each answer means (accepted / try again / never again), what reaches the peer, and
that no reason and no log line holds the text, the phone, the address or the password.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from urllib.parse import quote

import httpx
import pytest

from crm.bootstrap import make_gateways
from crm.config import Settings
from crm.domain.clock import SettableClock
from crm.integrations.account import AccountUnavailable
from crm.integrations.account_http import HttpAccountSite
from crm.integrations.delivery import PermanentFailure, TemporaryFailure
from crm.integrations.mail import EmailMessage
from crm.integrations.mail_smtp import SmtpMailer
from crm.integrations.sms import SmsMessage
from crm.integrations.sms_http import HttpSmsGateway, accepted_id
from tests.conftest import TEST_NOW
from tests.loopback import (
    AccountSiteServer,
    SmsGatewayProcess,
    SmsGatewayServer,
    SmtpServer,
    closed_port,
)

TOKEN = 'test-sms-token'
PHONE = '79161234567'
TEXT = 'ООО МКК «Демо Займ»: платёж 5 000,00 ₽ до 30.11.2026. Тел. 8 800 555-35-35'
SUBJECT = 'Напоминание о платеже по договору № 12/345 — «Демо Займ»'
ADDRESS = 'ivanov.petr@example.ru'
SENDER = 'Демо Займ <noreply@demozaim.ru>'


def sms(key: str = 'key-1', *, to: str = PHONE, text: str = TEXT) -> SmsMessage:
    return SmsMessage(id=key, to=to, text=text, sender='DEMOZAIM')


def mail(key: str = 'mail-1', *, to: str = ADDRESS, subject: str = SUBJECT) -> EmailMessage:
    return EmailMessage(
        id=key,
        to=to,
        subject=subject,
        text='Здравствуйте, Пётр Иванович!\nСумма к оплате: 5 000,00 ₽.',
        html='<p>Здравствуйте, <b>Пётр Иванович</b>!</p><p>Сумма к оплате: 5&nbsp;000,00&nbsp;₽.</p>',
        sender=SENDER,
    )


@pytest.fixture
def gateway_server() -> Iterator[SmsGatewayServer]:
    with SmsGatewayServer(TOKEN, hang_seconds=5) as server:
        yield server


@pytest.fixture
def gateway(gateway_server: SmsGatewayServer) -> Iterator[HttpSmsGateway]:
    client = HttpSmsGateway(gateway_server.url, TOKEN, timeout=0.3)
    yield client
    client.close()


# --- SMS gateway ----------------------------------------------------------------------------------------


def test_an_accepted_sms_returns_the_gateway_id_and_reaches_it_whole(
    gateway: HttpSmsGateway, gateway_server: SmsGatewayServer
) -> None:
    assert gateway.send(sms('key-1')) == 'gw-1'
    [received] = gateway_server.accepted
    assert (received.id, received.to, received.text, received.sender) == ('key-1', PHONE, TEXT, 'DEMOZAIM')
    assert received.idempotency_key == 'key-1'


def test_the_bearer_token_is_checked(gateway_server: SmsGatewayServer) -> None:
    for token in ('wrong-token', None):
        client = HttpSmsGateway(gateway_server.url, token, timeout=1)
        with pytest.raises(TemporaryFailure, match='HTTP 401') as failure:
            client.send(sms())
        client.close()
        assert 'CRM_SMS_GATEWAY_TOKEN' in failure.value.reason  # the settings, not the message, are wrong
    assert gateway_server.rejected_auth == 2
    assert gateway_server.accepted == []


def test_the_same_id_twice_is_one_sms_with_one_gateway_id(
    gateway: HttpSmsGateway, gateway_server: SmsGatewayServer
) -> None:
    first = gateway.send(sms('key-1'))
    assert gateway.send(sms('key-1')) == first
    assert gateway.send(sms('key-2')) != first
    assert gateway_server.requests == 3
    assert [m.id for m in gateway_server.accepted] == ['key-1', 'key-2']


def test_a_400_is_a_permanent_failure_with_the_gateways_reason(
    gateway: HttpSmsGateway, gateway_server: SmsGatewayServer
) -> None:
    gateway_server.mode = 'reject400'
    gateway_server.reject_reason = 'number is blacklisted'
    with pytest.raises(PermanentFailure) as failure:
        gateway.send(sms())
    assert failure.value.reason == 'шлюз SMS отклонил сообщение: HTTP 400 — number is blacklisted'


def test_a_reason_never_holds_the_phone_or_the_text(
    gateway: HttpSmsGateway, gateway_server: SmsGatewayServer
) -> None:
    gateway_server.mode = 'reject400'
    gateway_server.reject_reason = f'bad destination +{PHONE} for text "{TEXT}"'
    with pytest.raises(PermanentFailure) as failure:
        gateway.send(sms())
    assert PHONE not in failure.value.reason and TEXT not in failure.value.reason
    assert 'bad destination' in failure.value.reason


def test_a_503_is_temporary_and_a_resend_with_the_same_id_makes_one_sms(
    gateway: HttpSmsGateway, gateway_server: SmsGatewayServer
) -> None:
    gateway_server.fail_next(2)
    for _ in range(2):
        with pytest.raises(TemporaryFailure, match='HTTP 503 — service unavailable'):
            gateway.send(sms('key-1'))
    assert gateway_server.accepted == []
    assert gateway.send(sms('key-1')) == 'gw-1'
    gateway_server.mode = 'fail503'
    with pytest.raises(TemporaryFailure):
        gateway.send(sms('key-1'))
    assert len(gateway_server.accepted) == 1


def test_a_gateway_that_hangs_is_a_temporary_failure_within_the_timeout(
    gateway: HttpSmsGateway, gateway_server: SmsGatewayServer
) -> None:
    gateway_server.mode = 'hang'
    started = time.monotonic()
    with pytest.raises(TemporaryFailure, match=r'не ответил за 0\.3 с'):
        gateway.send(sms())
    assert time.monotonic() - started < 2


def test_a_refused_connection_is_a_temporary_failure() -> None:
    client = HttpSmsGateway(f'http://127.0.0.1:{closed_port()}', TOKEN, timeout=1)
    with pytest.raises(TemporaryFailure, match='соединение не установлено'):
        client.send(sms())
    client.close()


def test_a_2xx_without_an_id_is_unconfirmed_so_temporary(
    gateway: HttpSmsGateway, gateway_server: SmsGatewayServer
) -> None:
    gateway_server.mode = 'garbage'
    with pytest.raises(TemporaryFailure, match='без идентификатора'):
        gateway.send(sms())


@pytest.mark.parametrize(
    ('status', 'body', 'outcome'),
    [
        (200, b'{"id": "abc"}', 'abc'),
        (202, b'{"message_id": 42, "status": "queued"}', '42'),
        (201, b'{"id": ""}', TemporaryFailure),
        (200, b'[1, 2]', TemporaryFailure),
        (200, b'{"id": true}', TemporaryFailure),
        (204, b'', TemporaryFailure),
        (302, b'', TemporaryFailure),
        (400, b'{"error": {"message": "text too long"}}', PermanentFailure),
        (404, b'not here', PermanentFailure),
        (422, b'{"reason": "unknown sender"}', PermanentFailure),
        (408, b'', TemporaryFailure),
        (429, b'{"error": "rate limit"}', TemporaryFailure),
        (403, b'{"error": "forbidden"}', TemporaryFailure),
        (500, b'<html>oops</html>', TemporaryFailure),
        (504, b'', TemporaryFailure),
    ],
)
def test_what_each_answer_means(status: int, body: bytes, outcome: str | type[Exception]) -> None:
    response = httpx.Response(status, content=body)
    if isinstance(outcome, str):
        assert accepted_id(response, sms()) == outcome
    else:
        with pytest.raises(outcome) as failure:
            accepted_id(response, sms())
        assert f'HTTP {status}' in str(failure.value)


def test_a_reason_is_one_line_of_at_most_200_characters_of_the_body() -> None:
    response = httpx.Response(400, content=('строка\n' * 100).encode())
    with pytest.raises(PermanentFailure) as failure:
        accepted_id(response, sms())
    said = failure.value.reason.split(' — ', 1)[1]
    assert '\n' not in said and len(said) == 200


def test_one_gateway_serves_many_threads_each_message_once(gateway_server: SmsGatewayServer) -> None:
    client = HttpSmsGateway(gateway_server.url, TOKEN, timeout=5)
    ids: dict[str, str] = {}
    errors: list[BaseException] = []

    def send(worker: int) -> None:
        try:
            for n in range(50):
                key = f'{worker}-{n % 25}'  # every message twice
                ids[key] = client.send(sms(key))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=send, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client.close()
    assert errors == []
    assert len(gateway_server.accepted) == len(ids) == 200
    assert gateway_server.requests == 400
    assert {m.gateway_id for m in gateway_server.accepted} == set(ids.values())


def test_delivery_reports_come_back_for_each_accepted_message(gateway_server: SmsGatewayServer) -> None:
    reports: list[tuple[str, str]] = []
    done = threading.Event()

    def report(gateway_id: str, status: str) -> None:
        reports.append((gateway_id, status))
        if len(reports) == 2:
            done.set()

    with SmsGatewayServer(TOKEN, on_report=report, report_status='failed') as server:
        client = HttpSmsGateway(server.url, TOKEN)
        first = client.send(sms('a'))
        client.send(sms('a'))
        second = client.send(sms('b'))
        client.close()
        assert done.wait(5)
    assert reports == [(first, 'failed'), (second, 'failed')]


def test_the_gateway_in_a_child_process_counts_what_it_took() -> None:
    with SmsGatewayProcess(TOKEN) as server:
        client = HttpSmsGateway(server.url, TOKEN)
        first = client.send(sms('a'))
        assert client.send(sms('a')) == first
        client.send(sms('b'))
        client.close()
        assert server.stats() == {'requests': 3, 'accepted': 2, 'duplicates': 1, 'rejected_auth': 0}


# --- SMTP -----------------------------------------------------------------------------------------------


def test_a_cyrillic_message_arrives_intact_with_both_parts() -> None:
    with SmtpServer() as server:
        mailer = SmtpMailer(server.url(), SENDER, clock=SettableClock(TEST_NOW))
        message_id = mailer.send(mail('9f1c2e'))
        [received] = server.received()
    sent = mail('9f1c2e')
    got = received.message
    assert message_id == '<9f1c2e@demozaim.ru>' == got['Message-ID']
    assert str(got['Subject']) == SUBJECT
    assert got['From'].addresses[0].display_name == 'Демо Займ'
    assert str(got['To']) == ADDRESS
    assert received.rcpt_tos == [ADDRESS] and received.mail_from == 'noreply@demozaim.ru'
    assert parsedate_to_datetime(str(got['Date'])) == TEST_NOW
    assert got.get_content_type() == 'multipart/alternative'
    text, html = got.get_body(('plain',)), got.get_body(('html',))
    assert text is not None and html is not None
    # MIME's canonical text form has CRLF line breaks (inside base64 too): a reader shows them as breaks
    assert text.get_content().replace('\r\n', '\n').rstrip('\n') == sent.text
    assert html.get_content().replace('\r\n', '\n').rstrip('\n') == sent.html
    raw = got.as_bytes()
    assert raw.isascii()  # 7-bit on the wire: quoted-printable / base64 and RFC 2047 words


def test_a_message_without_html_is_plain_text_and_a_subject_stays_one_line() -> None:
    with SmtpServer() as server:
        mailer = SmtpMailer(server.url(), SENDER)
        message = mail(subject='Тема\r\nBcc: victim@example.ru')
        mailer.send(EmailMessage(**{**message.__dict__, 'html': ''}))
        [received] = server.received()
    assert received.message.get_content_type() == 'text/plain'
    assert str(received.message['Subject']) == 'Тема Bcc: victim@example.ru'
    assert received.message['Bcc'] is None and received.rcpt_tos == [ADDRESS]


def test_login_with_percent_encoded_credentials() -> None:
    password = 'p@ss:w/rd%'
    with SmtpServer(login=('crm@demozaim.ru', password)) as server:
        good = SmtpMailer(server.url(quote('crm@demozaim.ru', safe=''), quote(password, safe='')), SENDER)
        good.send(mail())
        with pytest.raises(TemporaryFailure, match='не принял логин'):
            SmtpMailer(server.url('crm%40demozaim.ru', 'wrong'), SENDER).send(mail('mail-2'))
        # no login where one is required: the settings are wrong, not the message, so it waits
        with pytest.raises(TemporaryFailure, match=r'530 .*CRM_SMTP_URL'):
            SmtpMailer(server.url(), SENDER).send(mail('mail-3'))
        assert [m.login for m in server.received()] == ['crm@demozaim.ru']
        assert server.failed_logins >= 1  # smtplib tries each mechanism the server offers


def test_smtps_with_the_test_ca() -> None:
    with SmtpServer(tls='implicit', login=('crm', 'secret')) as server:
        assert server.certificates is not None
        trusted = server.certificates.client_context()
        url = server.url('crm', 'secret')
        assert url.startswith('smtps://')
        SmtpMailer(url, SENDER, ssl_context=trusted).send(mail())
        with pytest.raises(TemporaryFailure, match='TLS'):  # the system's CAs do not know the test CA
            SmtpMailer(url, SENDER, timeout=2).send(mail('mail-2'))
        assert len(server.received()) == 1
        assert str(server.received()[0].message['Subject']) == SUBJECT


def test_starttls_upgrades_before_the_login() -> None:
    with SmtpServer(tls='starttls', login=('crm', 'secret')) as server:
        assert server.certificates is not None
        url = server.url('crm', 'secret')
        assert url.endswith('?starttls=1')
        SmtpMailer(url, SENDER, ssl_context=server.certificates.client_context()).send(mail())
        with pytest.raises(TemporaryFailure, match='530 Must issue a STARTTLS'):  # forgot ?starttls=1
            SmtpMailer(url.split('?')[0], SENDER).send(mail('mail-2'))
        assert [m.login for m in server.received()] == ['crm']


def test_a_refused_recipient_is_permanent_without_the_address() -> None:
    with SmtpServer() as server:
        server.refuse[ADDRESS] = f'550 5.1.1 <{ADDRESS}>: Recipient address rejected: User unknown'
        with pytest.raises(PermanentFailure) as failure:
            SmtpMailer(server.url(), SENDER).send(mail())
        assert server.received() == []
    assert failure.value.reason.startswith('SMTP-сервер отклонил получателя: 550 5.1.1')
    assert 'User unknown' in failure.value.reason and ADDRESS not in failure.value.reason


def test_a_451_and_a_closed_port_are_temporary() -> None:
    with SmtpServer() as server:
        server.data_reply = '451 4.3.0 Try again later'
        with pytest.raises(TemporaryFailure, match=r'451 4\.3\.0 Try again later'):
            SmtpMailer(server.url(), SENDER).send(mail())
        server.refuse[ADDRESS] = '450 4.2.0 Mailbox busy'
        with pytest.raises(TemporaryFailure, match='450'):
            SmtpMailer(server.url(), SENDER).send(mail())
        server.data_reply = None
        del server.refuse[ADDRESS]
        SmtpMailer(server.url(), SENDER).send(mail())  # and then it goes
        assert len(server.received()) == 1
    with pytest.raises(TemporaryFailure, match='соединение отклонено'):
        SmtpMailer(f'smtp://127.0.0.1:{closed_port()}', SENDER, timeout=1).send(mail())


def test_one_mailer_sends_from_several_threads_each_message_once() -> None:
    with SmtpServer() as server:
        mailer = SmtpMailer(server.url(), SENDER)
        threads = [
            threading.Thread(target=lambda n=n: mailer.send(mail(f'm{n}', to=f'user{n}@example.ru')))
            for n in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        received = server.received()
    assert sorted(str(m.message['Message-ID']) for m in received) == sorted(
        f'<m{n}@demozaim.ru>' for n in range(8)
    )
    assert all(m.rcpt_tos == [str(m.message['To'])] for m in received)


@pytest.mark.parametrize(
    'address', ['', 'ivanov', 'ivanov@', '@example.ru', 'a@b', 'a b@example.ru', 'a@x.ru, b@y.ru', 'и@x.ru']
)
def test_a_bad_recipient_is_permanent_and_nothing_is_sent(address: str) -> None:
    with SmtpServer() as server:
        with pytest.raises(PermanentFailure, match='адрес получателя'):
            SmtpMailer(server.url(), SENDER).send(mail(to=address))
        assert server.received() == []


def test_an_idn_recipient_goes_to_its_punycode_domain() -> None:
    with SmtpServer() as server:
        SmtpMailer(server.url(), SENDER).send(mail(to='ivan@почта.рф'))
        assert server.received()[0].rcpt_tos == ['ivan@xn--80a1acny.xn--p1ai']


def test_bad_settings_are_refused_at_construction() -> None:
    for url in ('http://mail.example.ru', 'smtp://', 'smtp://host:99999'):
        with pytest.raises(ValueError, match='CRM_SMTP_URL'):
            SmtpMailer(url, SENDER)
    with pytest.raises(ValueError, match='CRM_SMTP_FROM'):
        SmtpMailer('smtp://127.0.0.1', 'not an address')
    with pytest.raises(PermanentFailure, match='адрес отправителя'):
        SmtpMailer('smtp://127.0.0.1', SENDER).send(EmailMessage(**{**mail().__dict__, 'sender': 'x@'}))


# --- personal-account site ------------------------------------------------------------------------------


def test_a_password_comes_back_and_the_site_keeps_only_its_hash() -> None:
    with AccountSiteServer() as server:
        site = HttpAccountSite(server.url, timeout=1)
        password = site.reset_password('100042')
        site.close()
        [reset] = server.resets
    assert reset.pin == '100042' and password not in reset.password_sha256
    assert server.verify('100042', password) and not server.verify('100042', password + 'x')


def test_the_pin_is_url_quoted() -> None:
    with AccountSiteServer() as server:
        HttpAccountSite(server.url).reset_password('AB/12 ?#')
        assert [r.pin for r in server.resets] == ['AB/12 ?#']


@pytest.mark.parametrize('mode', ['fail500', 'hang', 'nopassword'])
def test_no_password_is_account_unavailable_without_the_password(mode: str) -> None:
    known = 'Kn0wn-Pa55word'
    with AccountSiteServer(hang_seconds=5) as server:
        server.mode = mode  # type: ignore[assignment]
        server.error_body = f'{{"error": "db down", "password": "{known}"}}'.encode()
        site = HttpAccountSite(server.url, timeout=0.3)
        started = time.monotonic()
        with pytest.raises(AccountUnavailable) as failure:
            site.reset_password('100042')
        site.close()
    assert time.monotonic() - started < 2
    assert known not in failure.value.reason and 'db down' not in failure.value.reason
    # raised without the httpx exception, whose request and response would travel with it
    assert failure.value.__cause__ is None
    assert failure.value.__suppress_context__ or failure.value.__context__ is None


def test_a_closed_site_is_account_unavailable() -> None:
    with pytest.raises(AccountUnavailable, match='соединение не установлено'):
        HttpAccountSite(f'http://127.0.0.1:{closed_port()}', timeout=1).reset_password('100042')


# --- wiring -----------------------------------------------------------------------------------------------


def test_the_settings_pick_the_real_adapters() -> None:
    with SmsGatewayServer(TOKEN) as sms_server, AccountSiteServer() as account_server, SmtpServer() as smtp:
        settings = Settings(
            sms_gateway_url=sms_server.url,
            sms_gateway_token=TOKEN,
            smtp_url=smtp.url(),
            account_url=account_server.url,
        )
        gateways = make_gateways(settings)
        assert isinstance(gateways.sms, HttpSmsGateway)
        assert isinstance(gateways.mail, SmtpMailer)
        assert isinstance(gateways.account, HttpAccountSite)
        gateways.sms.send(sms())
        gateways.mail.send(mail())
        password = gateways.account.reset_password('100042')
        gateways.close()
        assert len(sms_server.accepted) == len(smtp.received()) == 1
        assert account_server.verify('100042', password)


# --- logs -----------------------------------------------------------------------------------------------


def test_nothing_logged_holds_the_text_the_phone_the_address_or_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with SmsGatewayServer(TOKEN) as sms_server, AccountSiteServer() as account_server, SmtpServer() as smtp:
        gateway = HttpSmsGateway(sms_server.url, TOKEN)
        gateway.send(sms())
        sms_server.mode = 'reject400'
        with pytest.raises(PermanentFailure):
            gateway.send(sms('key-2'))
        gateway.close()
        site = HttpAccountSite(account_server.url)
        password = site.reset_password('100042')
        site.close()
        SmtpMailer(smtp.url(), SENDER).send(mail())
    ours = [r for r in caplog.records if r.name.split('.')[0] in {'crm', 'httpx', 'httpcore', 'smtplib'}]
    assert any(r.name == 'httpx' for r in ours)  # the request lines are there, and nothing else
    logged = '\n'.join(r.getMessage() for r in ours)
    for secret in (password, TEXT, PHONE, ADDRESS, SUBJECT, TOKEN):
        assert secret not in logged
