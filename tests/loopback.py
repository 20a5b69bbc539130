"""Real servers on 127.0.0.1 for tests and benchmarks: the SMS gateway, the personal-account site, SMTP.

Each listens on an ephemeral port, runs in its own thread(s) and is a context manager (``with
SmsGatewayServer() as gateway: ... gateway.url``); ``stop()`` is safe to call twice. They speak the
contracts of ``docs/integrations.md`` and record what reached them, so a test asserts on what the peer
received, not on what the client believes it sent.

- ``SmsGatewayServer``: ``POST /messages`` ``{"id","to","text","sender"}`` with a bearer token; dedupes
  by ``id``; switchable ``mode`` (``ok``, ``fail503``, ``reject400``, ``hang``, ``garbage``),
  ``fail_for(seconds)`` / ``fail_next(n)``; optional delivery reports through ``on_report``.
  ``SmsGatewayProcess``: the same in a child process (for the benchmark), counters at ``GET /stats``.
- ``AccountSiteServer``: ``POST /borrowers/{pin}/password-reset`` → ``{"password": …}``; keeps only the
  SHA-256 of each password it issued; ``mode`` ``ok`` / ``fail500`` / ``hang`` / ``nopassword``.
- ``SmtpServer``: aiosmtpd on loopback keeping every message parsed; optional AUTH, implicit TLS or
  STARTTLS with a test CA (``trustme``), and per-recipient / DATA refusals (550, 451 …).
- ``closed_port()``: a port nobody listens on (connection refused).
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import hashlib
import json
import queue
import random
import re
import secrets
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from http import HTTPStatus
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote

import httpx
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

SmsMode = Literal['ok', 'fail503', 'reject400', 'hang', 'garbage']
AccountMode = Literal['ok', 'fail500', 'hang', 'nopassword']
PHONE = re.compile(r'7\d{10}')
_ACCOUNT_PATH = re.compile(r'/borrowers/([^/]+)/password-reset')


def _ephemeral_low() -> int:
    """The lowest port the kernel hands out for outgoing connections."""
    try:
        return int(Path('/proc/sys/net/ipv4/ip_local_port_range').read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(('127.0.0.1', port))
        except OSError:
            return False
    return True


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive free loopback ports, below the ephemeral range: a port picked
    in it (bind to 0) can be taken, before the server binds it, as the local end of one of the many
    connections the cluster's other processes open meanwhile — a node then failed to start in CI."""
    rng = random.Random()
    high = _ephemeral_low() - count
    for _ in range(200):
        first = rng.randrange(10_000, high)
        if all(_bindable(port) for port in range(first, first + count)):
            return first
    raise RuntimeError('no run of free ports')


def closed_port() -> int:
    """A loopback port with nothing listening on it: connecting is refused (also a port to listen on
    later, below the ephemeral range as ``free_ports``)."""
    return free_ports(1)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    owner: Any = None

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (a timeout in the test) is not an error worth a traceback."""
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes


class _Handler(socketserver.StreamRequestHandler):
    """A lean HTTP/1.1 server side: keep-alive, Content-Length bodies, one write per answer, no logging.

    ``http.server``'s handler parses headers with the e-mail parser, twice the CPU of this; the benchmark
    sends thousands of requests a second through it in the process it measures. A request it cannot
    read (no Content-Length for a body, a broken request line) closes the connection.
    """

    disable_nagle_algorithm = True
    wbufsize = 64 * 1024  # the answer leaves in one write, on flush
    server: _Server

    def handle(self) -> None:
        while (request := self._read()) is not None:
            status, payload = self.server.owner.handle(request)
            close = request.headers.get('connection', '').lower() == 'close'
            self._answer(status, payload, close)
            if close:
                return

    def _read(self) -> Request | None:
        parts = self.rfile.readline(8192).split()
        if len(parts) != 3:
            return None
        headers: dict[str, str] = {}
        while (line := self.rfile.readline(8192)) not in (b'\r\n', b'\n', b''):
            name, _, value = line.decode('latin-1').partition(':')
            headers[name.strip().lower()] = value.strip()
        if 'transfer-encoding' in headers:
            return None
        length = headers.get('content-length') or '0'
        if not length.isdigit():
            return None
        body = self.rfile.read(int(length))
        return Request(parts[0].decode('latin-1'), parts[1].decode('latin-1'), headers, body)

    def _answer(self, status: int, payload: bytes | dict[str, Any], close: bool) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        kind = 'application/json' if isinstance(payload, dict) else 'text/html; charset=utf-8'
        head = (
            f'HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nContent-Type: {kind}\r\n'
            f'Content-Length: {len(data)}\r\n' + ('Connection: close\r\n' if close else '') + '\r\n'
        )
        self.wfile.write(head.encode('latin-1') + data)
        self.wfile.flush()


class _HttpPeer:
    """An HTTP server in a thread on 127.0.0.1; subclasses implement ``handle``."""

    def __init__(self, hang_seconds: float) -> None:
        self.hang_seconds = hang_seconds
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._http = _Server(('127.0.0.1', 0), _Handler)
        self._http.owner = self
        self.port: int = int(self._http.server_address[1])
        self.url = f'http://127.0.0.1:{self.port}'
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._http.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop listening, release hanging requests and close the socket."""
        self._stopping.set()
        if self._thread is not None:
            self._http.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._http.server_close()

    def hang(self) -> None:
        """Answer nothing for ``hang_seconds`` (or until the server stops)."""
        self._stopping.wait(self.hang_seconds)

    def handle(self, request: Request) -> tuple[int, bytes | dict[str, Any]]:
        raise NotImplementedError


@dataclass(frozen=True)
class AcceptedSms:
    """One message as the gateway took it (the first time its id came)."""

    id: str
    to: str
    text: str
    sender: str
    gateway_id: str
    idempotency_key: str | None  # the Idempotency-Key header


class SmsGatewayServer(_HttpPeer):
    """The SMS gateway of ``CRM_SMS_GATEWAY_URL``, for real, on loopback.

    ``POST /messages``, JSON ``{"id","to","text","sender"}``, ``Authorization: Bearer <token>`` (401
    without it when ``token`` is set). The first time an ``id`` comes it is accepted: ``200 {"id":
    "gw-N", "status": "accepted"}`` and recorded in ``accepted``; the same ``id`` again answers the same
    gateway id and is not recorded twice (``requests`` counts every POST). A bad body or a ``to`` that is
    not ``7XXXXXXXXXX`` answers ``400 {"error": …}``.

    ``mode``: ``ok``; ``fail503`` (503 ``{"error": "service unavailable"}``); ``reject400`` (400 with
    ``reject_reason``); ``hang`` (no answer for ``hang_seconds``); ``garbage`` (200 with an HTML page).
    ``fail_for(s)`` and ``fail_next(n)`` answer 503 for a while whatever the mode.

    ``on_report(gateway_id, status)``, when given, is called from a reporter thread after each newly
    accepted message with ``report_status`` (``'delivered'`` by default; ``None`` sends none) — the
    test wires it to whatever posts ``sms.status`` to the CRM.
    """

    def __init__(
        self,
        token: str | None = 'test-sms-token',
        *,
        mode: SmsMode = 'ok',
        hang_seconds: float = 10.0,
        on_report: Callable[[str, str], None] | None = None,
        report_status: str | None = 'delivered',
    ) -> None:
        super().__init__(hang_seconds)
        self.token = token
        self.mode: SmsMode = mode
        self.reject_reason = 'invalid destination number'
        self.on_report = on_report
        self.report_status = report_status
        self.requests = 0  # every POST /messages, answered or not
        self.rejected_auth = 0
        self.duplicates = 0  # ids that came again after they were accepted
        self._accepted: list[AcceptedSms] = []
        self._by_id: dict[str, AcceptedSms] = {}
        self._fail_until = 0.0
        self._fail_left = 0
        self.report_errors: list[Exception] = []  # what on_report raised
        self._reports: queue.SimpleQueue[tuple[str, str] | None] = queue.SimpleQueue()
        self._reporter: threading.Thread | None = None

    def __enter__(self) -> SmsGatewayServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        super().start()
        if self.on_report is not None and self._reporter is None:
            self._reporter = threading.Thread(target=self._report_loop, name='sms-reports', daemon=True)
            self._reporter.start()

    def stop(self) -> None:
        super().stop()
        if self._reporter is not None:
            self._reports.put(None)
            self._reporter.join(timeout=5)
            self._reporter = None

    @property
    def accepted(self) -> list[AcceptedSms]:
        """The messages accepted, once per id, in the order they came (a copy)."""
        with self._lock:
            return list(self._accepted)

    def count(self, message_id: str) -> int:
        """How many SMS the gateway sends for this id: 0 or 1."""
        with self._lock:
            return int(message_id in self._by_id)

    def stats(self) -> dict[str, int]:
        """The counters (also served at ``GET /stats``, for a gateway in another process)."""
        with self._lock:
            return {
                'requests': self.requests,
                'accepted': len(self._accepted),
                'duplicates': self.duplicates,
                'rejected_auth': self.rejected_auth,
            }

    def fail_for(self, seconds: float) -> None:
        """Answer 503 to everything for the next ``seconds``."""
        with self._lock:
            self._fail_until = time.monotonic() + seconds

    def fail_next(self, n: int) -> None:
        """Answer 503 to the next ``n`` requests."""
        with self._lock:
            self._fail_left = n

    def handle(self, request: Request) -> tuple[int, bytes | dict[str, Any]]:
        if request.method == 'GET' and request.path == '/stats':
            return 200, self.stats()
        if request.method == 'GET' and request.path == '/accepted':
            return 200, {'accepted': [[sms.id, sms.to] for sms in self.accepted]}
        if request.method == 'POST' and request.path.startswith('/fail_for/'):
            self.fail_for(float(request.path.rpartition('/')[2]))
            return 200, {'status': 'failing'}
        if request.method != 'POST' or request.path.rstrip('/') != '/messages':
            return 404, {'error': 'not found'}
        with self._lock:
            self.requests += 1
            failing = self._fail_left > 0 or time.monotonic() < self._fail_until
            self._fail_left = max(0, self._fail_left - 1)
        if self.token is not None and request.headers.get('authorization') != f'Bearer {self.token}':
            with self._lock:
                self.rejected_auth += 1
            return 401, {'error': 'unauthorized'}
        mode = 'fail503' if failing else self.mode
        if mode == 'fail503':
            return 503, {'error': 'service unavailable'}
        if mode == 'reject400':
            return 400, {'error': self.reject_reason}
        if mode == 'hang':
            self.hang()
            return 504, {'error': 'gave up'}
        if mode == 'garbage':
            return 200, b'<html><body>OK</body></html>'
        return self._accept(request.body, request.headers.get('idempotency-key'))

    def _accept(self, body: bytes, key: str | None) -> tuple[int, dict[str, Any]]:
        try:
            data = json.loads(body)
            fields = {name: data[name] for name in ('id', 'to', 'text', 'sender')}
        except (ValueError, TypeError, KeyError):
            return 400, {'error': 'body must be a JSON object with id, to, text, sender'}
        if not all(isinstance(value, str) and value for value in fields.values()):
            return 400, {'error': 'id, to, text and sender must be non-empty strings'}
        if not PHONE.fullmatch(fields['to']):
            return 400, {'error': 'invalid destination number'}
        with self._lock:
            known = self._by_id.get(fields['id'])
            self.duplicates += known is not None
            if known is None:
                known = AcceptedSms(**fields, gateway_id=f'gw-{len(self._by_id) + 1}', idempotency_key=key)
                self._by_id[known.id] = known
                self._accepted.append(known)
                if self.on_report is not None and self.report_status is not None:
                    self._reports.put((known.gateway_id, self.report_status))
        return 200, {'id': known.gateway_id, 'status': 'accepted'}

    def _report_loop(self) -> None:
        while (item := self._reports.get()) is not None:
            assert self.on_report is not None
            try:
                self.on_report(*item)
            except Exception as error:  # kept for the test to see; later reports still go
                self.report_errors.append(error)


class SmsGatewayProcess:
    """An ``SmsGatewayServer`` (mode ``ok``) in a child process, for a benchmark whose measured process
    should not share its interpreter with the peer: ``with SmsGatewayProcess() as gateway: gateway.url``,
    ``gateway.stats()`` → ``{"requests", "accepted", "duplicates", "rejected_auth"}``; ``fail_for(s)``
    (``POST /fail_for/<s>``) and ``accepted()`` (``GET /accepted``: ``[id, to]`` of each message taken once).
    """

    def __init__(self, token: str | None = 'test-sms-token') -> None:
        self.token = token
        self.url = ''
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> SmsGatewayProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        command = [sys.executable, '-m', 'tests.loopback', *(['--token', self.token] if self.token else [])]
        root = Path(__file__).resolve().parent.parent
        self._process = subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        self.url = self._process.stdout.readline().strip()
        if not self.url.startswith('http://'):
            self.stop()
            raise RuntimeError('the SMS gateway process did not start')

    def stats(self) -> dict[str, int]:
        return dict(httpx.get(f'{self.url}/stats', timeout=5).json())

    def fail_for(self, seconds: float) -> None:
        """Answer 503 to everything for the next ``seconds``."""
        httpx.post(f'{self.url}/fail_for/{seconds}', timeout=5).raise_for_status()

    def accepted(self) -> list[tuple[str, str]]:
        """(id, to) of every message the gateway took, once per id."""
        rows = httpx.get(f'{self.url}/accepted', timeout=30).json()['accepted']
        return [(str(id_), str(to)) for id_, to in rows]

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            if self._process.stdout is not None:
                self._process.stdout.close()
            self._process = None


@dataclass(frozen=True)
class PasswordReset:
    """One password the site issued: the PIN and the SHA-256 of the password, never the password."""

    pin: str
    password_sha256: str


class AccountSiteServer(_HttpPeer):
    """The personal-account site of ``CRM_ACCOUNT_URL``, for real, on loopback.

    ``POST /borrowers/{pin}/password-reset`` → ``200 {"password": "<random>"}`` and a ``PasswordReset``
    in ``resets``. ``mode``: ``ok``; ``fail500`` (500 with ``error_body``); ``hang`` (no answer for
    ``hang_seconds``); ``nopassword`` (200 ``{"status": "ok"}``). ``next_password`` forces the next
    password (and, in ``fail500``, a test may put a password in ``error_body`` to check it never leaks).
    """

    def __init__(self, *, mode: AccountMode = 'ok', hang_seconds: float = 10.0) -> None:
        super().__init__(hang_seconds)
        self.mode: AccountMode = mode
        self.error_body = b'{"error": "internal error"}'
        self.next_password: str | None = None
        self.requests = 0
        self._resets: list[PasswordReset] = []

    def __enter__(self) -> AccountSiteServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def resets(self) -> list[PasswordReset]:
        with self._lock:
            return list(self._resets)

    def verify(self, pin: str, password: str) -> bool:
        """Whether ``password`` is the last one issued for ``pin`` (what the borrower would log in with)."""
        issued = [reset for reset in self.resets if reset.pin == pin]
        return bool(issued) and issued[-1].password_sha256 == _sha256(password)

    def handle(self, request: Request) -> tuple[int, bytes | dict[str, Any]]:
        match = _ACCOUNT_PATH.fullmatch(request.path)
        if request.method != 'POST' or match is None:
            return 404, {'error': 'not found'}
        with self._lock:
            self.requests += 1
        if self.mode == 'fail500':
            return 500, self.error_body
        if self.mode == 'hang':
            self.hang()
            return 504, {'error': 'gave up'}
        if self.mode == 'nopassword':
            return 200, {'status': 'ok'}
        with self._lock:
            password = self.next_password or secrets.token_urlsafe(9)
            self.next_password = None
            self._resets.append(PasswordReset(unquote(match.group(1)), _sha256(password)))
        return 200, {'password': password}


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class ReceivedMail:
    """One message the SMTP server took: the envelope and the message parsed (``policy.default``)."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    login: str | None  # who authenticated, if anyone


class TestCertificates:
    """A throwaway CA and a certificate for 127.0.0.1 / localhost (``trustme``)."""

    __test__ = False  # not a pytest class

    def __init__(self) -> None:
        import trustme

        self._ca = trustme.CA()
        self._cert = self._ca.issue_cert('127.0.0.1', 'localhost')

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._cert.configure_cert(context)
        return context

    def client_context(self) -> ssl.SSLContext:
        """Trusts the test CA only (what ``SmtpMailer(..., ssl_context=...)`` gets)."""
        context = ssl.create_default_context()
        self._ca.configure_trust(context)
        return context


class _SmtpHandler:
    """aiosmtpd handler: refusals by recipient, a DATA answer to force, and the messages kept."""

    def __init__(self, owner: SmtpServer) -> None:
        self.owner = owner

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        reply = self.owner.refuse.get(address.lower())
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return '250 OK'

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.owner.data_reply is not None:
            return self.owner.data_reply
        raw = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        login = session.auth_data if isinstance(session.auth_data, str) else None
        received = ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), message, login)
        with self.owner.lock:
            self.owner.messages.append(received)
        return '250 Message accepted for delivery'


class SmtpServer:
    """An SMTP server (aiosmtpd) on 127.0.0.1 keeping what it receives in ``messages``.

    ``login=(user, password)``: AUTH PLAIN/LOGIN is offered and required (over plain SMTP too).
    ``tls='implicit'``: smtps (TLS from the first byte); ``tls='starttls'``: STARTTLS offered and
    required; either way ``certificates.client_context()`` is what a client must trust.
    ``refuse['to@x.ru'] = '550 5.1.1 No such user'`` refuses one recipient; ``data_reply = '451 4.3.0
    Try again later'`` answers DATA with that instead of taking the message.
    ``url(user, password)`` is the ``CRM_SMTP_URL`` of this server.
    """

    def __init__(
        self,
        *,
        login: tuple[str, str] | None = None,
        tls: Literal['implicit', 'starttls'] | None = None,
    ) -> None:
        self.credentials = login
        self.tls = tls
        self.certificates = TestCertificates() if tls else None
        self.refuse: dict[str, str] = {}
        self.data_reply: str | None = None
        self.messages: list[ReceivedMail] = []
        self.failed_logins = 0
        self.lock = threading.Lock()
        self._controller: _EphemeralController | None = None
        self.port = 0

    def __enter__(self) -> SmtpServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def url(self, user: str | None = None, password: str | None = None, *, query: str = '') -> str:
        scheme = 'smtps' if self.tls == 'implicit' else 'smtp'
        credentials = f'{user}:{password}@' if user is not None else ''
        if self.tls == 'starttls' and not query:
            query = 'starttls=1'
        return f'{scheme}://{credentials}127.0.0.1:{self.port}' + (f'?{query}' if query else '')

    def received(self) -> list[ReceivedMail]:
        with self.lock:
            return list(self.messages)

    def start(self) -> None:
        if self._controller is not None:
            return
        kwargs: dict[str, Any] = {}
        if self.credentials is not None:
            kwargs.update(authenticator=self._authenticate, auth_required=True, auth_require_tls=False)
        if self.tls == 'implicit':
            assert self.certificates is not None
            kwargs['ssl_context'] = self.certificates.server_context()
        elif self.tls == 'starttls':
            assert self.certificates is not None
            kwargs.update(tls_context=self.certificates.server_context(), require_starttls=True)
        self._controller = _EphemeralController(
            _SmtpHandler(self), hostname='127.0.0.1', port=0, server_hostname='loopback.test', **kwargs
        )
        self._controller.start()
        self.port = self._controller.port

    def stop(self) -> None:
        if self._controller is not None:
            with contextlib.suppress(Exception):
                self._controller.stop()
            self._controller = None

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword) and self.credentials is not None:
            user, password = self.credentials
            if auth_data.login == user.encode() and auth_data.password == password.encode():
                return AuthResult(success=True, auth_data=user)
        with self.lock:
            self.failed_logins += 1
        return AuthResult(success=False, handled=False)


class _EphemeralController(Controller):
    """aiosmtpd's Controller on port 0: learns the port the OS gave before it checks readiness.

    AUTH over plain SMTP (what tests of ``smtp://user:password@`` need) is allowed after construction,
    as aiosmtpd warns about it at every connection otherwise.
    """

    def factory(self) -> SMTP:
        allow_plain_auth = self.SMTP_kwargs.get('auth_require_tls') is False
        kwargs = {**self.SMTP_kwargs, 'auth_require_tls': True}
        server = SMTP(self.handler, **kwargs)
        if allow_plain_auth:
            server._auth_require_tls = False
        return server

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


def _serve_sms_gateway(argv: list[str]) -> None:
    """``python -m tests.loopback [--token T]``: print the gateway's URL, serve until terminated."""
    token = argv[argv.index('--token') + 1] if '--token' in argv else None
    with SmsGatewayServer(token) as server:
        print(server.url, flush=True)
        threading.Event().wait()


if __name__ == '__main__':
    _serve_sms_gateway(sys.argv[1:])
