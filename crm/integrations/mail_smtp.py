"""E-mail over SMTP at ``CRM_SMTP_URL`` (the standard library's smtplib).

``smtp://[user:password@]host[:port][?starttls=1]`` (port 25; ``starttls=1`` upgrades the connection
before logging in) or ``smtps://[user:password@]host[:port]`` (TLS from the first byte, port 465). The
user and password are percent-decoded; without them there is no AUTH. One connection per message:
nothing is shared between threads and a broken connection never outlives its message.

A message goes out as ``multipart/alternative`` (text/plain, then text/html when there is HTML) in
UTF-8, with the subject in RFC 2047 words, ``Message-ID: <{id}@{the sender's domain}>`` — the outbox
row's key, by which mail clients drop a repeat — and returns that Message-ID.

What a failure means: a 5xx reply (550 recipient refused …) or an address that is not one →
``PermanentFailure`` with the server's reply; a 4xx reply, a refused connection, a timeout, a TLS or
login failure, 530 / 534 / 535 / 538 (log in or STARTTLS first: the server or the CRM's settings are at
fault, not the message) → ``TemporaryFailure``. Reasons never
hold the recipient's address (it is cut out of the server's reply) nor the text.
"""

from __future__ import annotations

import contextlib
import email.policy
import re
import smtplib
import socket
import ssl
from email.headerregistry import Address
from email.message import EmailMessage as MimeMessage
from email.utils import format_datetime, parseaddr
from urllib.parse import parse_qs, unquote, urlsplit

from crm.domain.clock import Clock, system_clock
from crm.integrations.delivery import DeliveryError, PermanentFailure, TemporaryFailure
from crm.integrations.mail import EmailMessage

REASON_LENGTH = 200
DEFAULT_PORTS = {'smtp': 25, 'smtps': 465}
# "Authentication required / too weak / failed", "STARTTLS first": the CRM's settings are at fault, not
# the message, so it waits for them to be fixed instead of failing for good.
SETTINGS_CODES = frozenset({530, 534, 535, 538})
# Quoted-printable or base64 (whichever is shorter), never raw 8-bit: any relay takes the message.
POLICY = email.policy.SMTP.clone(cte_type='7bit')
_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_LABEL = re.compile(r'(?!-)[A-Za-z0-9-]{1,63}(?<!-)')


class BadAddress(ValueError):
    """Not an e-mail address this mailer can send to or from."""


def mailbox(text: str) -> Address:
    """``"Name <local@domain>"`` or ``local@domain`` as an Address; the domain in IDNA (кц.рф works).

    Plain ASCII local parts only (no SMTPUTF8): what every relay takes.
    """
    try:
        header = POLICY.header_factory('To', text.strip())
    except (ValueError, TypeError, IndexError):
        raise BadAddress('недопустимый адрес электронной почты') from None
    addresses: tuple[Address, ...] = getattr(header, 'addresses', ())
    if header.defects or len(addresses) != 1:
        raise BadAddress('нужен ровно один адрес электронной почты')
    name, local, domain = addresses[0].display_name, addresses[0].username, addresses[0].domain
    if not _LOCAL.fullmatch(local) or len(local) > 64:
        raise BadAddress('недопустимый адрес электронной почты')
    try:
        ascii_domain = domain.encode('idna').decode('ascii').lower()
    except UnicodeError:
        raise BadAddress('недопустимый домен адреса электронной почты') from None
    labels = ascii_domain.split('.')
    if len(labels) < 2 or len(ascii_domain) > 253 or not all(_LABEL.fullmatch(x) for x in labels):
        raise BadAddress('недопустимый домен адреса электронной почты')
    return Address(display_name=' '.join(name.split()), username=local, domain=ascii_domain)


class SmtpSettings:
    """``CRM_SMTP_URL`` taken apart; a ``ValueError`` naming the variable when it makes no sense."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise ValueError('CRM_SMTP_URL: expected smtp://[user:password@]host[:port] or smtps://…')
        try:
            port = parts.port
        except ValueError:
            raise ValueError('CRM_SMTP_URL: the port is not a number from 1 to 65535') from None
        self.implicit_tls = parts.scheme == 'smtps'
        self.host = parts.hostname
        self.port = port or DEFAULT_PORTS[parts.scheme]
        query = parse_qs(parts.query)
        self.starttls = not self.implicit_tls and query.get('starttls', ['0'])[-1] in {'1', 'true', 'yes'}
        self.user = unquote(parts.username) if parts.username is not None else None
        self.password = unquote(parts.password or '') if self.user is not None else None
        if not (self.user or '').isascii() or not (self.password or '').isascii():
            raise ValueError('CRM_SMTP_URL: the login and password must be ASCII (smtplib sends no other)')


class SmtpMailer:
    """``Mailer`` over SMTP: one connection per message, so it is safe to call from several threads."""

    def __init__(
        self,
        url: str,
        sender: str,
        *,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        clock: Clock = system_clock,
        helo: str | None = None,
    ) -> None:
        self._settings = SmtpSettings(url)
        try:
            self._sender = mailbox(sender)
        except BadAddress:
            raise ValueError(f'CRM_SMTP_FROM: not an e-mail address: {sender!r}') from None
        self._timeout = timeout
        self._ssl = ssl_context or ssl.create_default_context()
        self._clock = clock
        # The name in EHLO; smtplib's default (getfqdn) asks DNS on every connection.
        self._helo = helo or socket.gethostname() or 'localhost'

    def send(self, message: EmailMessage) -> str:
        """The Message-ID the message went with; ``TemporaryFailure`` / ``PermanentFailure``."""
        mime = self.compose(message)
        message_id = str(mime['Message-ID'])
        try:
            self._deliver(mime)
        except DeliveryError as failure:
            raise type(failure)(_scrub(failure.reason, message.to)) from None
        return message_id

    def compose(self, message: EmailMessage) -> MimeMessage:
        """The MIME message (``PermanentFailure`` for an address that is not one)."""
        try:
            sender = mailbox(message.sender) if message.sender.strip() else self._sender
        except BadAddress as error:
            raise PermanentFailure(f'адрес отправителя: {error}') from None
        try:
            recipient = mailbox(message.to)
        except BadAddress as error:
            raise PermanentFailure(f'адрес получателя: {error}') from None
        mime = MimeMessage(policy=POLICY)
        mime['From'] = sender
        mime['To'] = Address(username=recipient.username, domain=recipient.domain)
        mime['Subject'] = ' '.join(message.subject.split())  # one line: no header injection
        mime['Date'] = format_datetime(self._clock())
        mime['Message-ID'] = f'<{message.id}@{sender.domain or "crm.local"}>'
        mime.set_content(message.text, charset='utf-8')
        if message.html.strip():
            mime.add_alternative(message.html, subtype='html', charset='utf-8')
        return mime

    def close(self) -> None:
        pass  # nothing kept open between messages

    def _deliver(self, mime: MimeMessage) -> None:
        try:
            smtp = self._open()
        except smtplib.SMTPAuthenticationError as error:
            raise TemporaryFailure(f'SMTP-сервер не принял логин (CRM_SMTP_URL): {_reply(error)}') from None
        except smtplib.SMTPNotSupportedError:
            raise TemporaryFailure('SMTP-сервер не поддерживает STARTTLS или AUTH (CRM_SMTP_URL)') from None
        except (smtplib.SMTPException, OSError) as error:
            raise _connection_failure(error) from None
        try:
            smtp.send_message(mime)
        except smtplib.SMTPRecipientsRefused as error:
            code, reply = next(iter(error.recipients.values()))
            raise _refusal('SMTP-сервер отклонил получателя', code, reply) from None
        except smtplib.SMTPResponseException as error:  # sender refused, DATA refused …
            raise _refusal('SMTP-сервер не принял письмо', error.smtp_code, error.smtp_error) from None
        except (smtplib.SMTPException, OSError) as error:
            raise _connection_failure(error) from None
        finally:
            _quit(smtp)

    def _open(self) -> smtplib.SMTP:
        """A connection ready for MAIL FROM: TLS as configured, logged in if a user is set."""
        s = self._settings
        smtp: smtplib.SMTP
        if s.implicit_tls:
            smtp = smtplib.SMTP_SSL(
                s.host, s.port, local_hostname=self._helo, timeout=self._timeout, context=self._ssl
            )
        else:
            smtp = smtplib.SMTP(s.host, s.port, local_hostname=self._helo, timeout=self._timeout)
        try:
            if s.starttls:
                smtp.starttls(context=self._ssl)
            if s.user is not None and s.password is not None:
                smtp.login(s.user, s.password)
        except BaseException:
            smtp.close()
            raise
        return smtp


def _refusal(what: str, code: int, reply: bytes | str) -> DeliveryError:
    text = f'{what}: {code} {_text(reply)}'.rstrip()
    if code in SETTINGS_CODES:
        return TemporaryFailure(f'{text} (проверьте CRM_SMTP_URL)')
    return PermanentFailure(text) if 500 <= code < 600 else TemporaryFailure(text)


def _connection_failure(error: BaseException) -> TemporaryFailure:
    if isinstance(error, TimeoutError | socket.timeout):
        return TemporaryFailure('SMTP-сервер не ответил вовремя')
    if isinstance(error, ssl.SSLError):
        return TemporaryFailure(f'TLS-соединение с SMTP-сервером не установлено ({type(error).__name__})')
    if isinstance(error, ConnectionRefusedError):
        return TemporaryFailure('SMTP-сервер недоступен: соединение отклонено')
    if isinstance(error, smtplib.SMTPResponseException):
        return TemporaryFailure(f'SMTP-сервер ответил {error.smtp_code} {_text(error.smtp_error)}')
    return TemporaryFailure(f'связь с SMTP-сервером прервана ({type(error).__name__})')


def _reply(error: smtplib.SMTPResponseException) -> str:
    return f'{error.smtp_code} {_text(error.smtp_error)}'


def _text(reply: bytes | str) -> str:
    text = reply.decode('utf-8', 'replace') if isinstance(reply, bytes) else reply
    return ' '.join(text.split())


def _scrub(reason: str, address: str) -> str:
    """The reason without the recipient's address (servers quote it back), one line, 200 characters."""
    for secret in {address.strip(), parseaddr(address)[1]}:
        if secret:
            reason = re.sub(re.escape(secret), '…', reason, flags=re.IGNORECASE)
    return reason[:REASON_LENGTH]


def _quit(smtp: smtplib.SMTP) -> None:
    """QUIT, ignoring what it answers: the message's fate was decided by the reply to DATA."""
    with contextlib.suppress(smtplib.SMTPException, OSError):
        smtp.quit()
    smtp.close()
