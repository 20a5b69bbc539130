"""The cluster under load (issue 12 §4/§5): simulated operator tabs and supervisor dashboards on N app
processes behind HAProxy, a steady rate of calls ringing random operators, and what each tab receives.

Needs PostgreSQL and RabbitMQ (CRM_BENCH_DATABASE_URL, CRM_BENCH_AMQP_URL) and the haproxy binary; without
them it prints ``{"skipped": …}``. The database ``<its name>_cluster`` (tests.harness.bench_database_url)
is the script's own: wiped, migrated and seeded with the demo data, `--tabs` bench operators (extensions
4001…) in one group per dashboard, each group led by a bench supervisor. The cluster is ``python -m
crm.cluster`` itself (its processes, HAProxy, pid files and logs under var/bench/cluster/), started with
no PBX or loan-system simulator, so that the bench's calls are the only ones.

A tab is not a browser: 300 Chromium pages do not fit on 2 cores. It is a client that speaks NiceGUI's
socket protocol as nicegui.js does (``SimTab``): the login is a session ticket minted in the database
(``SessionService.begin``, as the login form does after a right password) and exchanged at
/login/complete through HAProxy; GET of the page through HAProxy keeps HAProxy's CRM_NODE cookie and
reads the page's client id from its HTML; then a python-socketio client connects its websocket to
/_nicegui_ws/socket.io through HAProxy with both cookies (so on the process that drew the page) and the
query nicegui.js sends (client_id, next_message_id, implicit_handshake, document_id, tab_id), and acks
the messages every 3 s as the browser does. Each message is looked at raw, before any JSON decoding.

A pop = the called borrower's full name in a message to the operator's tab; latency = its arrival −
the wall clock taken just before ``telephony.call.incoming`` is published (persistent, confirmed). A pop
in a wrong tab = the name of a borrower called for another extension in an operator's tab. Each call is
a real one: answered a second after the ring showed in the tab, ended 3–8 s later, then the operator's
wrap-up ends by the app's time-out (``--wrap-up-s``); only operators whose last call and wrap-up are over
are rung, at random among them. Every borrower is rung once (a phone and a full name of their own). A tab
whose socket drops connects again as socket.io does in the browser, and loads its page anew when the
process no longer has it, as nicegui.js does.

Logs go to stderr; stdout gets exactly one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import queue
import random
import re
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import socketio  # type: ignore[import-untyped]
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for crm and tests.harness

from live_app import App, Publisher, prepare_vhost, summary

from crm.db.engine import make_engine, make_sessions
from crm.db.migrate import upgrade
from crm.db.models import Borrower, BorrowerPhone, User, UserGroup
from crm.domain import Role
from crm.domain.clock import system_clock
from crm.pages.session import COOKIE
from crm.services.auth import to_actor
from crm.services.sessions import SessionService
from tests.harness import bench_database_url, machine
from tests.loopback import closed_port, free_ports

log = logging.getLogger('bench.cluster')

ROOT = Path(__file__).resolve().parent.parent
VAR_DIR = ROOT / 'var' / 'bench' / 'cluster'
FIRST_EXTENSION = 4001
SEED = 20261202
# crm.db.demo draws at most 300 loan numbers a day and draws again until one is free: with this seed it
# finishes 7,000 borrowers (about 30 s), while 8,000 with another seed never ended (a day ran out of numbers)
DEMO_SEED = 1
DEMO_BORROWERS_MAX = 7000
SOCKET_PATH = '/_nicegui_ws/socket.io'
ACK_EVERY_S = 3.0  # nicegui.js acks what it received every 3 s (the server then drops its history)
RSS_EVERY_S = 10.0
TARGETS = {'pop_p95_ms': 1000, 'lost': 0, 'wrong_tab': 0, 'rss_drift_pct': 10.0, 'statements_ratio_max': 1.10}
# the page's socket query, as the server writes it into the HTML: createApp(…, {…, query: {…}, …}), a
# Python dict's repr there (quotes either way, True or true)
QUERY_RE = re.compile(r'query: (\{[^}]*\})')
CLIENT_ID_RE = re.compile(r'[\'"]client_id[\'"]: [\'"]([^\'"]+)[\'"]')
NEXT_ID_RE = re.compile(r'[\'"]next_message_id[\'"]: (\d+)')
IMPLICIT_RE = re.compile(r'[\'"]implicit_handshake[\'"]: (true|True)')
# a borrower's full name (last, first and middle name) anywhere in a message
NAME_RE = re.compile(r'[А-ЯЁ][а-яё]+(?:-[А-ЯЁ][а-яё]+)? [А-ЯЁ][а-яё]+ [А-ЯЁ][а-яё]+')
ID_RE = re.compile(r'"_id":(\d+)')


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--tabs', type=int, default=300, help='operator tabs (one operator each)')
    parser.add_argument('--dashboards', type=int, default=10, help='supervisor dashboards on /monitoring')
    parser.add_argument('--nodes', type=int, default=3, help='app processes behind HAProxy')
    parser.add_argument('--rate', type=float, default=10.0, help='calls a second')
    parser.add_argument('--duration-s', type=float, default=600.0, help='seconds of calls')
    parser.add_argument(
        '--quick', action='store_true', help='a smoke run: 30 tabs, 3 dashboards, 1 call/s, 60 s'
    )
    parser.add_argument('--warmup-s', type=float, help='RSS before this is left out (default: a tenth)')
    parser.add_argument(
        '--timeout', type=float, default=10.0, help='seconds a pop may take before it is lost'
    )
    parser.add_argument('--wrap-up-s', type=float, default=5.0, help="the app's CRM_WRAP_UP_TIMEOUT_S")
    parser.add_argument('--window-s', type=float, default=30.0, help='seconds of each statement count')
    parser.add_argument('--login-concurrency', type=int, default=6, help='tabs opening at the same time')
    parser.add_argument('--borrowers', type=int, help='demo borrowers (default: enough for every call)')
    parser.add_argument('--vhost', default='crm_bench_cluster', help='RabbitMQ vhost made with rabbitmqctl')
    args = parser.parse_args(argv)
    if args.quick:
        args.tabs, args.dashboards, args.rate, args.duration_s = 30, 3, 1.0, 60.0
    if args.warmup_s is None:
        args.warmup_s = max(10.0, args.duration_s / 10)
    if min(args.tabs, args.dashboards, args.nodes) < 1 or args.rate <= 0 or args.duration_s <= 0:
        parser.error('--tabs, --dashboards, --nodes, --rate and --duration-s must be positive')
    if args.borrowers is None:  # every call rings a borrower of its own
        args.borrowers = 2000 if args.rate * args.duration_s <= 1500 else DEMO_BORROWERS_MAX
    return args


# --- the database -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    user_id: int
    login: str
    extension: str | None


@dataclass(frozen=True)
class Target:
    borrower_id: int
    name: str
    phone: str


@dataclass
class Fixture:
    operators: list[Person]
    supervisors: list[Person]
    targets: list[Target]


def prepare_database(url: str, args: argparse.Namespace) -> Fixture:
    """Migrate, seed the demo data, the supervisors, their groups and the operators; the borrowers to
    ring: a phone nobody else has, a three-part full name nobody else has."""
    from crm.db.demo import seed_demo  # Faker and the generator: only when the bench runs

    started = time.perf_counter()
    upgrade(url)
    engine = make_engine(url)
    sessions = make_sessions(engine)
    try:
        seed_demo(sessions, borrowers=args.borrowers, seed=DEMO_SEED)
        with sessions.begin() as session:

            def user(login: str, name: str, role: Role, extension: str | None = None) -> User:
                # no password: the bench logs in with tickets minted in the database
                return User(
                    login=login,
                    email=None,
                    full_name=name,
                    password_hash='!',
                    role=role.value,
                    active=True,
                    extension=extension,
                    failed_logins=0,
                )

            leads = [
                user(f'benchlead{i + 1}', f'Руководитель стенда {i + 1}', Role.SUPERVISOR)
                for i in range(args.dashboards)
            ]
            session.add_all(leads)
            session.flush()
            groups = [UserGroup(name=f'Стенд {i + 1}', supervisor_id=lead.id) for i, lead in enumerate(leads)]
            session.add_all(groups)
            session.flush()
            operators = []
            for index in range(args.tabs):
                extension = str(FIRST_EXTENSION + index)
                row = user(f'benchop{extension}', f'Оператор стенда {extension}', Role.OPERATOR, extension)
                row.group_id = groups[index % len(groups)].id
                operators.append(row)
            session.add_all(operators)
            session.flush()
            fixture = Fixture(
                [Person(row.id, row.login, row.extension) for row in operators],
                [Person(row.id, row.login, None) for row in leads],
                [],
            )
        with sessions() as session:
            rows = session.execute(
                select(Borrower.id, Borrower.last_name, Borrower.first_name, Borrower.middle_name)
            ).all()
            phones = session.execute(select(BorrowerPhone.borrower_id, BorrowerPhone.phone)).all()
    finally:
        engine.dispose()
    fixture.targets.extend(ringable(rows, phones))
    random.Random(SEED).shuffle(fixture.targets)
    log.info(
        'database ready in %.1f s: %d borrowers, %d operators, %d supervisors, %d borrowers to ring',
        time.perf_counter() - started,
        len(rows),
        len(fixture.operators),
        len(fixture.supervisors),
        len(fixture.targets),
    )
    return fixture


def ringable(rows: Sequence[Any], phones: Sequence[Any]) -> list[Target]:
    """The borrowers a call can name without doubt: a phone only they have, a three-part full name only
    they have."""
    names = {row.id: f'{row.last_name} {row.first_name} {row.middle_name}' for row in rows if row.middle_name}
    count: dict[str, int] = {}
    for name in names.values():
        count[name] = count.get(name, 0) + 1
    holders: dict[str, set[int]] = {}
    for borrower_id, phone in phones:
        holders.setdefault(phone, set()).add(borrower_id)
    taken: set[int] = set()
    targets = []
    for phone, ids in sorted(holders.items()):
        if len(ids) != 1:
            continue
        (borrower_id,) = ids
        if borrower_id in taken or borrower_id not in names:
            continue
        if count[names[borrower_id]] != 1 or not NAME_RE.fullmatch(names[borrower_id]):
            continue
        taken.add(borrower_id)
        targets.append(Target(borrower_id, names[borrower_id], phone))
    return targets


def mint_ticket(sessions: Any, person: Person) -> str:
    """What the login form does after a right password: a one-time ticket for /login/complete."""
    with sessions() as session:
        row = session.get(User, person.user_id)
        actor = to_actor(row)
    return SessionService(sessions, clock=system_clock).begin(actor)


# --- the cluster --------------------------------------------------------------------------------


@dataclass
class Cluster:
    process: subprocess.Popen[str]
    url: str
    nodes: list[str]
    node_urls: dict[str, str]
    token: str
    output: list[str] = field(default_factory=list)

    def pid(self, node: str) -> int | None:
        try:
            return int((VAR_DIR / f'{node}.pid').read_text())
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_cluster(database_url: str, amqp_url: str, args: argparse.Namespace) -> Cluster:
    """``python -m crm.cluster`` on free ports, its files in var/bench/cluster; returns once it is ready."""
    shutil.rmtree(VAR_DIR, ignore_errors=True)
    VAR_DIR.mkdir(parents=True)
    bind, first = closed_port(), free_ports(args.nodes)
    token = secrets.token_urlsafe(24)
    env = {k: v for k, v in os.environ.items() if not k.startswith('CRM_') and k != 'PYTEST_CURRENT_TEST'}
    env |= {
        'CRM_DATABASE_URL': database_url,
        'CRM_AMQP_URL': amqp_url,
        'CRM_API_TOKEN': token,
        'CRM_SECRET': secrets.token_urlsafe(32),
        'CRM_DEMO': '0',  # prepared already: the cluster's prepare only migrates
        'CRM_PBX_SIMULATOR': '0',  # the bench is the PBX
        'CRM_LOAN_SYSTEM_SIMULATOR': '0',
        'CRM_WRAP_UP_TIMEOUT_S': str(args.wrap_up_s),
        'CRM_OFFLINE_AFTER_S': '36000',  # nobody goes offline while the bench runs
    }
    command = [sys.executable, '-m', 'crm.cluster', '--nodes', str(args.nodes), '--bind', f'127.0.0.1:{bind}']
    command += ['--first-port', str(first), '--var-dir', str(VAR_DIR)]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    nodes = [f'node{i + 1}' for i in range(args.nodes)]
    cluster = Cluster(
        process,
        f'http://127.0.0.1:{bind}',
        nodes,
        {node: f'http://127.0.0.1:{first + i}' for i, node in enumerate(nodes)},
        token,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 240
    while True:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            cluster.stop()
            raise RuntimeError('the cluster was not ready in 240 s:\n' + ''.join(cluster.output)) from None
        if line is None:
            raise RuntimeError(f'the cluster exited with {process.wait()}:\n' + ''.join(cluster.output))
        cluster.output.append(line)
        log.info('%s', line.rstrip())
        if 'ready: ' in line:
            return cluster


def scrape(url: str, token: str) -> dict[str, float]:
    response = httpx.get(url + '/metrics', headers={'Authorization': f'Bearer {token}'}, timeout=30)
    response.raise_for_status()
    return {m.group(1): float(m.group(2)) for m in re.finditer(r'^(\w+) (\S+)$', response.text, re.MULTILINE)}


def scrape_all(cluster: Cluster) -> dict[str, dict[str, float]]:
    return {node: scrape(url, cluster.token) for node, url in cluster.node_urls.items()}


def rss_kib(pid: int | None) -> int | None:
    if pid is None:
        return None
    try:
        for line in Path(f'/proc/{pid}/status').read_text().splitlines():
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    except OSError:
        return None
    return None


# --- the simulated tabs -------------------------------------------------------------------------


@dataclass
class Expected:
    call_id: str
    name: str
    published_ms: float
    arrived_ms: float | None = None


class TabSocket(socketio.AsyncClient):
    """python-socketio's client, looking at each message raw before (for an update: instead of) decoding
    it: what a pop needs is a substring, and 310 clients decoding every dashboard tick on 2 cores would
    measure the bench instead of the app."""

    def __init__(self, tab: SimTab) -> None:
        super().__init__(reconnection=False)
        self.tab = tab

    async def _handle_eio_message(self, data: Any) -> None:
        # a socket.io EVENT of the default namespace (engine.io's "4" is gone already): 2["name",{…}]
        if isinstance(data, str) and data.startswith('2['):
            self.tab.received(data, time.time() * 1000)
            if data.startswith('2["update"'):
                return  # nothing else in an update matters here
        await super()._handle_eio_message(data)


@dataclass
class SimTab:
    """One browser tab of one user on one page, kept on one process by HAProxy's cookie."""

    bench: Bench
    person: Person
    path: str  # '/' for an operator, '/monitoring' for a supervisor
    node: str = ''
    client_id: str = ''
    next_message_id: int = 0
    messages: int = 0
    bytes: int = 0
    expected: dict[str, Expected] = field(default_factory=dict)  # by name, calls not popped yet
    wrong: list[str] = field(default_factory=list)
    socket: TabSocket | None = None
    disconnects: int = 0  # sockets lost (not closed by the bench)
    reconnects: int = 0  # a new socket to the same page (its missed messages sent again)
    reloads: int = 0  # the page loaded anew: the process had dropped it (or refused the socket)
    disconnect_reasons: dict[str, int] = field(default_factory=dict)
    closing: bool = False
    cookie: str = ''
    query: dict[str, str] = field(default_factory=dict)

    async def open(self) -> None:
        """Log in (a ticket for /login/complete), load the page, connect its socket: what a browser tab
        does, and what nicegui.js does again when the process refused a socket for the page."""
        ticket = await asyncio.to_thread(mint_ticket, self.bench.sessions, self.person)
        async with httpx.AsyncClient(base_url=self.bench.cluster.url, timeout=60, trust_env=False) as http:
            login = await http.get('/login/complete', params={'ticket': ticket, 'redirect_to': self.path})
            if login.status_code != 303 or not http.cookies.get(COOKIE):
                raise RuntimeError(f'/login/complete for {self.person.login}: {login.status_code}')
            page = await http.get(self.path)
            if page.status_code != 200:
                raise RuntimeError(f'GET {self.path} for {self.person.login}: {page.status_code}')
            found = QUERY_RE.search(page.text)
            if found is None:
                raise RuntimeError(f'no socket query in the page {self.path}')
            query = found.group(1)
            client_id, next_id = CLIENT_ID_RE.search(query), NEXT_ID_RE.search(query)
            if client_id is None or next_id is None:
                raise RuntimeError(f'an unexpected socket query in the page: {query}')
            self.node = http.cookies.get('CRM_NODE') or ''
            self.cookie = f'{COOKIE}={http.cookies.get(COOKIE)}; CRM_NODE={self.node}'
        self.client_id = client_id.group(1)
        self.next_message_id = int(next_id.group(1))
        self.query = {  # what nicegui.js sends: the page's query, its document id and the tab's id
            'client_id': self.client_id,
            'implicit_handshake': 'true' if IMPLICIT_RE.search(query) else 'false',
            'document_id': str(uuid.uuid4()),
            'tab_id': self.query.get('tab_id') or str(uuid.uuid4()),  # sessionStorage keeps it
        }
        await self.connect()

    async def connect(self) -> None:
        """A socket for the page, from the next message it has not seen (the server resends the rest)."""
        socket = TabSocket(self)
        socket.on('disconnect', lambda *reason: self._disconnected(socket, reason))
        query = self.query | {'next_message_id': str(self.next_message_id)}
        url = self.bench.cluster.url + '?' + '&'.join(f'{k}={v}' for k, v in query.items())
        await socket.connect(
            url,
            headers={'Cookie': self.cookie},
            transports=['websocket'],
            socketio_path=SOCKET_PATH,
            wait_timeout=30,
        )
        self.socket = socket

    def _disconnected(self, socket: TabSocket, reason: tuple[Any, ...]) -> None:
        if self.closing or socket is not self.socket:
            return
        self.disconnects += 1
        why = str(reason[0]) if reason else '?'
        self.disconnect_reasons[why] = self.disconnect_reasons.get(why, 0) + 1
        log.warning('%s (%s) lost its socket: %s', self.person.login, self.node, why)
        task = asyncio.get_running_loop().create_task(self.recover())
        self.bench.recoveries.add(task)
        task.add_done_callback(self.bench.recoveries.discard)

    async def recover(self) -> None:
        """As socket.io in the browser: connect again after about a second; when the process has
        dropped the page (its reconnect time-out passed) or refuses it, nicegui.js reloads the page."""
        rng = random.Random()
        for _attempt in range(3):
            await asyncio.sleep(rng.uniform(0.5, 1.5))
            if self.closing:
                return
            try:
                await self.connect()
                self.reconnects += 1
                return
            except Exception as error:
                log.warning('%s: no socket again (%r)', self.person.login, error)
        for _attempt in range(5):
            if self.closing:
                return
            try:
                await self.open()
                self.reloads += 1
                return
            except Exception as error:
                log.warning('%s: the page did not load again (%r)', self.person.login, error)
                await asyncio.sleep(2)
        log.error('%s: gave up', self.person.login)

    def received(self, data: str, at_ms: float) -> None:
        self.messages += 1
        self.bytes += len(data)
        tail = ID_RE.findall(data[-40:])
        if tail:
            self.next_message_id = max(self.next_message_id, int(tail[-1]) + 1)
        if self.person.extension is None:
            return  # a dashboard: every borrower on a line is shown there
        for name, expected in list(self.expected.items()):
            if name in data:
                expected.arrived_ms = at_ms
                del self.expected[name]
                self.bench.popped(self, expected)
        for name in set(NAME_RE.findall(data)):
            extension = self.bench.called.get(name)
            if extension is not None and extension != self.person.extension:
                self.wrong.append(name)

    async def ack(self) -> None:
        if self.socket is not None and self.socket.connected:
            payload = {'client_id': self.client_id, 'next_message_id': self.next_message_id}
            await self.socket.emit('ack', payload)

    async def close(self) -> None:
        self.closing = True
        if self.socket is not None:
            await self.socket.disconnect()


# --- the calls ----------------------------------------------------------------------------------


@dataclass
class CallRecord:
    call_id: str
    extension: str
    node: str
    name: str
    published_ms: float
    late_s: float  # how far after its slot the ring was published
    arrived_ms: float | None = None

    @property
    def latency(self) -> float | None:
        return None if self.arrived_ms is None else self.arrived_ms - self.published_ms


@dataclass
class Bench:
    args: argparse.Namespace
    cluster: Cluster
    sessions: Any
    fixture: Fixture
    publisher: Publisher
    operator_tabs: list[SimTab] = field(default_factory=list)
    dashboards: list[SimTab] = field(default_factory=list)
    called: dict[str, str] = field(default_factory=dict)  # borrower name -> extension rung
    records: dict[str, CallRecord] = field(default_factory=dict)  # by call id
    rss: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    loop_lag_ms: list[float] = field(default_factory=list)
    recoveries: set[asyncio.Task[None]] = field(default_factory=set)
    no_free_operator: int = 0

    def popped(self, tab: SimTab, expected: Expected) -> None:
        record = self.records.get(expected.call_id)
        if record is not None:
            record.arrived_ms = expected.arrived_ms

    async def open_tabs(self) -> None:
        gate = asyncio.Semaphore(self.args.login_concurrency)
        done = [0]
        total = len(self.fixture.operators) + len(self.fixture.supervisors)

        async def one(tab: SimTab) -> SimTab:
            async with gate:
                for attempt in range(1, 4):
                    try:
                        await tab.open()
                        break
                    except Exception as error:
                        if attempt == 3:
                            raise
                        log.warning('%s did not open (%r); again', tab.person.login, error)
                        await asyncio.sleep(2)
            done[0] += 1
            if done[0] % 50 == 0 or done[0] == total:
                log.info('%d/%d tabs open', done[0], total)
            return tab

        self.dashboards = list(
            await asyncio.gather(*(one(SimTab(self, p, '/monitoring')) for p in self.fixture.supervisors))
        )
        self.operator_tabs = list(
            await asyncio.gather(*(one(SimTab(self, p, '/')) for p in self.fixture.operators))
        )

    async def acks(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.gather(*(tab.ack() for tab in self.operator_tabs + self.dashboards))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), ACK_EVERY_S)

    async def sample_rss(self, stop: asyncio.Event) -> None:
        started = time.monotonic()
        while not stop.is_set():
            for node in self.cluster.nodes:
                kib = rss_kib(self.cluster.pid(node))
                if kib is not None:
                    self.rss.setdefault(node, []).append((time.monotonic() - started, kib))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), RSS_EVERY_S)

    async def watch_loop(self, stop: asyncio.Event) -> None:
        """How late this process's own event loop runs: a pop is stamped only when the loop gets to it."""
        while not stop.is_set():
            before = time.monotonic()
            await asyncio.sleep(0.1)
            self.loop_lag_ms.append((time.monotonic() - before - 0.1) * 1000)

    async def free_operators(self, free_at: dict[str | None, float]) -> list[str | None]:
        """The extensions whose last call and wrap-up are over (waiting, and counting, until there is one)."""
        while True:
            now = time.monotonic()
            free = [ext for ext, at in free_at.items() if at <= now]
            if free:
                return free
            self.no_free_operator += 1
            await asyncio.sleep(0.05)

    async def ring(self) -> None:
        """`--rate` calls a second for `--duration-s`, each to a random operator free of calls."""
        rng = random.Random(SEED)
        loop = asyncio.get_running_loop()
        free_at: dict[str | None, float] = {tab.person.extension: 0.0 for tab in self.operator_tabs}
        by_extension = {tab.person.extension: tab for tab in self.operator_tabs}
        targets = iter(self.fixture.targets)
        calls = int(self.args.rate * self.args.duration_s)
        started = time.monotonic()
        run_id = uuid.uuid4().hex[:8]
        follow_ups: set[asyncio.Task[None]] = set()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix='pbx') as pbx:

            async def send(event_type: str, body: dict[str, Any]) -> float:
                return await loop.run_in_executor(pbx, self.publisher.send, event_type, body)

            async def later(call_id: str, extension: str, answer_s: float, talk_s: float) -> None:
                # the operator picks up once the ring is on their screen (or gives up waiting for it)
                record, deadline = self.records[call_id], time.monotonic() + self.args.timeout
                while record.arrived_ms is None and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                await asyncio.sleep(answer_s)
                await send('telephony.call.answered', {'call_id': call_id, 'at': now_iso()})
                await asyncio.sleep(talk_s)
                body = {'call_id': call_id, 'at': now_iso(), 'duration_s': int(talk_s)}
                await send('telephony.call.ended', body)
                free_at[extension] = time.monotonic() + self.args.wrap_up_s + 3.0

            for number in range(calls):
                slot = started + number / self.args.rate
                delay = slot - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                extension = rng.choice(await self.free_operators(free_at))
                assert extension is not None
                try:
                    target = next(targets)
                except StopIteration:
                    log.error('no borrowers left to ring after %d calls: raise --borrowers', number)
                    break
                answer_s, talk_s = 1.0, rng.uniform(3.0, 8.0)
                # busy until the call ended and the app's wrap-up time-out made them Готов again
                free_at[extension] = float('inf')  # until `later` has ended the call
                call_id = f'bench-cluster-{run_id}-{number}'
                tab = by_extension[extension]
                self.called[target.name] = extension
                late = max(0.0, time.monotonic() - slot)
                record = CallRecord(call_id, extension, tab.node, target.name, 0.0, late)
                self.records[call_id] = record
                expected = Expected(call_id, target.name, 0.0)
                tab.expected[target.name] = expected
                body = {'call_id': call_id, 'from': target.phone, 'to_extension': extension, 'at': now_iso()}
                record.published_ms = expected.published_ms = await send('telephony.call.incoming', body)
                if record.arrived_ms is not None and record.arrived_ms < record.published_ms:
                    record.arrived_ms = record.published_ms  # arrived while the publish returned
                task = asyncio.create_task(later(call_id, extension, answer_s, talk_s))
                follow_ups.add(task)
                task.add_done_callback(follow_ups.discard)
                if (number + 1) % 500 == 0 or number + 1 == calls:
                    popped = [r for r in self.records.values() if r.arrived_ms is not None]
                    log.info('%d/%d calls rung, %d popped', number + 1, calls, len(popped))
            await asyncio.sleep(self.args.timeout)  # the last pops, and every call's end
            if follow_ups:
                await asyncio.gather(*follow_ups)


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


# --- the dashboard's statements -----------------------------------------------------------------


async def wait_viewers(cluster: Cluster, wanted: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        scraped = await asyncio.to_thread(scrape_all, cluster)
        viewers = sum(m['crm_dashboard_viewers'] for m in scraped.values())
        if viewers == wanted:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f'crm_dashboard_viewers is {viewers}, not {wanted}, after {timeout_s:.0f} s')
        await asyncio.sleep(0.5)


async def statement_window(cluster: Cluster, viewers: int, seconds: float) -> dict[str, Any]:
    """Per process: statements and dashboard ticks a minute, and its viewers, over ``seconds``."""
    await wait_viewers(cluster, viewers)
    before, started = await asyncio.to_thread(scrape_all, cluster), time.monotonic()
    await asyncio.sleep(seconds)
    after, ended = await asyncio.to_thread(scrape_all, cluster), time.monotonic()
    minutes = (ended - started) / 60
    per_node = {}
    for node in cluster.nodes:
        statements = after[node]['crm_db_statements_total'] - before[node]['crm_db_statements_total']
        ticks = after[node]['crm_dashboard_ticks_total'] - before[node]['crm_dashboard_ticks_total']
        per_node[node] = {
            'viewers': int(after[node]['crm_dashboard_viewers']),
            'statements_per_min': round(statements / minutes, 1),
            'ticks_per_min': round(ticks / minutes, 1),
            'ui_clients': int(after[node].get('crm_ui_clients', -1)),
        }
    log.info('with %d dashboard(s): %s', viewers, per_node)
    return per_node


async def dashboard_statements(bench: Bench) -> dict[str, Any]:
    """After the calls: every dashboard open, then one (on the same process); what that process's
    statements cost with its viewers, then with that one."""
    window = bench.args.window_s
    every = await statement_window(bench.cluster, len(bench.dashboards), window)
    kept = bench.dashboards[0]
    for tab in bench.dashboards[1:]:
        await tab.close()
    one = await statement_window(bench.cluster, 1, window)
    node = kept.node
    many, single = every[node]['statements_per_min'], one[node]['statements_per_min']
    return {
        'window_s': window,
        'node': node,
        'viewers_on_node': every[node]['viewers'],
        f'all_{len(bench.dashboards)}_open': every,
        'one_open': one,
        'ratio': round(many / single, 3) if single else None,
    }


# --- report -------------------------------------------------------------------------------------


def rss_report(samples: list[tuple[float, int]], warmup_s: float) -> dict[str, Any]:
    after = [kib for at, kib in samples if at >= warmup_s] or [kib for _, kib in samples[-1:]]
    if not after:
        return {}
    start, end = after[0], after[-1]
    return {
        'samples': len(after),
        'start_mib': round(start / 1024, 1),
        'end_mib': round(end / 1024, 1),
        'min_mib': round(min(after) / 1024, 1),
        'max_mib': round(max(after) / 1024, 1),
        'drift_pct': round((end - start) / start * 100, 2),
        'max_dev_pct': round(max(abs(k - start) for k in after) / start * 100, 2),
        'before_warmup_mib': round(samples[0][1] / 1024, 1),
        # the curve: where it levels off, drift over the run is warming up, not a leak
        'per_minute_mib': [
            round(next(kib for at, kib in samples if at >= minute * 60) / 1024, 1)
            for minute in range(int(samples[-1][0] // 60) + 1)
        ],
    }


async def measure(bench: Bench) -> dict[str, Any]:
    result: dict[str, Any] = {'load_at_start': round(os.getloadavg()[0], 2)}
    started = time.perf_counter()
    await bench.open_tabs()
    result['open_s'] = round(time.perf_counter() - started, 1)
    nodes: dict[str, dict[str, int]] = {n: {'tabs': 0, 'dashboards': 0} for n in bench.cluster.nodes}
    for tab in bench.operator_tabs:
        nodes[tab.node]['tabs'] += 1
    for tab in bench.dashboards:
        nodes[tab.node]['dashboards'] += 1
    result['per_node'] = nodes
    log.info('tabs per process: %s', nodes)
    stop = asyncio.Event()
    background = [
        asyncio.create_task(bench.acks(stop)),
        asyncio.create_task(bench.sample_rss(stop)),
        asyncio.create_task(bench.watch_loop(stop)),
    ]
    try:
        await asyncio.sleep(2.0)
        before = await asyncio.to_thread(scrape_all, bench.cluster)
        load_started = time.monotonic()
        result['load_during'] = []
        loads = asyncio.create_task(sample_load(result['load_during'], stop))
        await bench.ring()
        minutes = (time.monotonic() - load_started) / 60
        after = await asyncio.to_thread(scrape_all, bench.cluster)
        result['under_load'] = {
            node: {
                'statements_per_min': round(
                    (after[node]['crm_db_statements_total'] - before[node]['crm_db_statements_total'])
                    / minutes
                ),
                'dashboard_ticks_per_min': round(
                    (after[node]['crm_dashboard_ticks_total'] - before[node]['crm_dashboard_ticks_total'])
                    / minutes,
                    1,
                ),
                'viewers': int(after[node]['crm_dashboard_viewers']),
                'ui_clients': int(after[node].get('crm_ui_clients', -1)),
            }
            for node in bench.cluster.nodes
        }
        result['load_at_end_of_calls'] = round(os.getloadavg()[0], 2)
        result['statements'] = await dashboard_statements(bench)
        loads.cancel()
    finally:
        stop.set()
        await asyncio.gather(*background, return_exceptions=True)
        await asyncio.gather(*(tab.close() for tab in bench.operator_tabs + bench.dashboards[:1]))
    return result


async def sample_load(into: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        into.append(round(os.getloadavg()[0], 2))
        await asyncio.sleep(30)


def report(bench: Bench, measured: dict[str, Any]) -> dict[str, Any]:
    args = bench.args
    records = list(bench.records.values())
    latencies = [r.latency for r in records if r.latency is not None and r.latency <= args.timeout * 1000]
    lost = [r for r in records if r.latency is None or r.latency > args.timeout * 1000]
    wrong = [(tab.person.extension, name) for tab in bench.operator_tabs for name in tab.wrong]
    pop_ms = summary(latencies)
    by_node = {
        node: summary(
            [r.latency for r in records if r.node == node and r.latency is not None], ('p50', 'p95', 'p99')
        )
        for node in bench.cluster.nodes
    }
    rss = {node: rss_report(samples, args.warmup_s) for node, samples in bench.rss.items()}
    statements = measured['statements']
    usage = resource.getrusage(resource.RUSAGE_SELF)
    lags = sorted(bench.loop_lag_ms)
    tabs = bench.operator_tabs + bench.dashboards
    reasons: dict[str, int] = {}
    for tab in tabs:
        for why, count in tab.disconnect_reasons.items():
            reasons[why] = reasons.get(why, 0) + count
    met = {
        'pop_p95_ms': pop_ms['p95'] is not None and pop_ms['p95'] <= TARGETS['pop_p95_ms'],
        'lost': len(lost) == 0,
        'wrong_tab': len(wrong) == 0,
        'rss_drift_pct': bool(rss)
        and all(r.get('max_dev_pct', 100) <= TARGETS['rss_drift_pct'] for r in rss.values()),
        'statements_ratio_max': statements['ratio'] is not None
        and statements['ratio'] <= TARGETS['statements_ratio_max'],
    }
    return {
        'backend': 'postgresql+rabbitmq',
        'client': 'python-socketio AsyncClient speaking NiceGUI socket protocol (not Chromium)',
        'nodes': args.nodes,
        'tabs': len(bench.operator_tabs),
        'dashboards': len(bench.dashboards),
        'rate_per_s': args.rate,
        'duration_s': args.duration_s,
        'calls': len(records),
        'pop_ms': pop_ms,
        'lost': len(lost),
        'wrong_tab': len(wrong),
        'rss': rss,
        'statements': statements,
        'targets': TARGETS,
        'met': met,
        'detail': {
            'per_node': measured['per_node'],
            'pop_ms_by_node': by_node,
            'under_load': measured['under_load'],
            'open_tabs_s': measured['open_s'],
            'publish_late_s': summary([r.late_s for r in records], ('p50', 'p99', 'max')),
            'waits_for_a_free_operator': bench.no_free_operator,
            'client_loop_lag_ms': {
                'p50': round(lags[len(lags) // 2], 1) if lags else None,
                'p99': round(lags[int(len(lags) * 0.99)], 1) if lags else None,
                'max': round(lags[-1], 1) if lags else None,
            },
            'client_cpu_s': round(usage.ru_utime + usage.ru_stime, 1),
            'sockets_lost': sum(t.disconnects for t in tabs),
            'sockets_lost_by_reason': reasons,
            'reconnected': sum(t.reconnects for t in tabs),
            'pages_reloaded': sum(t.reloads for t in tabs),
            'messages_to_operator_tabs': sum(t.messages for t in bench.operator_tabs),
            'messages_to_dashboards': sum(t.messages for t in bench.dashboards),
            'mib_to_dashboards': round(sum(t.bytes for t in bench.dashboards) / 2**20, 1),
            'lost_examples': [(r.call_id, r.extension, r.node) for r in lost[:5]],
            'wrong_examples': wrong[:5],
            'warmup_s': args.warmup_s,
            'wrap_up_s': args.wrap_up_s,
            'loadavg_1m_during': measured['load_during'],
            'loadavg_1m_end_of_calls': measured['load_at_end_of_calls'],
        },
        'machine': machine(measured['load_at_start']),
    }


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format='%(asctime)s %(levelname)s %(name)s: %(message)s'
    )
    for noisy in ('pika', 'httpx', 'alembic', 'socketio', 'engineio'):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    args = parse_args(argv)
    database_url, amqp_url = os.environ.get('CRM_BENCH_DATABASE_URL'), os.environ.get('CRM_BENCH_AMQP_URL')
    haproxy = shutil.which('haproxy') or shutil.which('haproxy', path='/usr/sbin:/usr/local/sbin')
    if not (database_url and amqp_url and database_url.startswith('postgresql') and haproxy):
        reason = 'needs CRM_BENCH_DATABASE_URL (PostgreSQL), CRM_BENCH_AMQP_URL and haproxy'
        print(json.dumps({'skipped': reason}))
        return
    url = bench_database_url('cluster', VAR_DIR / 'unused.sqlite3')
    fixture = prepare_database(url, args)
    vhost_url = prepare_vhost(amqp_url, args.vhost)
    cluster = start_cluster(url, vhost_url, args)
    engine = make_engine(url)
    publisher = Publisher(vhost_url, App(None, cluster.url, cluster.token, VAR_DIR / 'node1.log'))  # type: ignore[arg-type]
    try:
        bench = Bench(args, cluster, make_sessions(engine), fixture, publisher)
        measured = asyncio.run(measure(bench))
    finally:
        try:
            publisher.close()
        finally:  # a cluster left running would load the next run's machine
            cluster.stop()
            engine.dispose()
    print(json.dumps(report(bench, measured), ensure_ascii=False))


if __name__ == '__main__':
    main()
