"""`python -m crm.cluster` (`make cluster`): two app processes behind a real HAProxy on PostgreSQL and
RabbitMQ — /healthz through HAProxy, a login kept on one process by the CRM_NODE cookie, and the same login
served by the other process once the first is killed (the session is in the database)."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from crm.domain import Role
from crm.domain.clock import SettableClock
from crm.services.auth import to_actor
from crm.services.sessions import SessionService
from tests.conftest import TEST_API_TOKEN, TEST_NOW, need_service
from tests.factories import make_user
from tests.loopback import closed_port, free_ports

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 90.0


@dataclass
class Cluster:
    url: str
    var_dir: Path
    process: subprocess.Popen[str]
    output: list[str]

    def pid(self, node: str) -> int:
        return int((self.var_dir / f'{node}.pid').read_text())


@pytest.fixture
def cluster(database_url: str, amqp_url: str, tmp_path: Path) -> Iterator[Cluster]:
    if make_url(database_url).get_backend_name() != 'postgresql':
        need_service('a cluster needs PostgreSQL: set CRM_TEST_DATABASE_URL')
    if not (shutil.which('haproxy') or shutil.which('haproxy', path='/usr/sbin')):
        need_service('the haproxy binary is not installed (apt-get install haproxy)')
    bind, first = closed_port(), free_ports(2)
    env = os.environ | {
        'CRM_DATABASE_URL': database_url,
        'CRM_AMQP_URL': amqp_url,
        'CRM_SECRET': 'test-secret',
        'CRM_API_TOKEN': TEST_API_TOKEN,
        'CRM_DEMO': '0',  # the test database holds its data already: prepare only migrates
        'CRM_CLOCK_START': TEST_NOW.isoformat(),
        'CRM_OUTBOX_DISPATCHER': '0',
    }
    env.pop('PYTEST_CURRENT_TEST', None)
    command = [sys.executable, '-m', 'crm.cluster', '--nodes', '2', '--bind', f'127.0.0.1:{bind}']
    command += ['--first-port', str(first), '--var-dir', str(tmp_path)]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: queue.Queue[str | None] = queue.Queue()
    output: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + READY_TIMEOUT_S
    try:
        while True:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f'the cluster was not ready in {READY_TIMEOUT_S:.0f} s:\n{"".join(output)}')
            if line is None:
                pytest.fail(f'the cluster exited with {process.wait()}:\n{"".join(output)}')
            output.append(line)
            if 'ready: ' in line:
                break
        yield Cluster(f'http://127.0.0.1:{bind}', tmp_path, process, output)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def node_of(client: httpx.Client, url: str) -> str:
    answer = client.get(f'{url}/healthz')
    assert answer.status_code == 200, answer.text
    return str(answer.json()['process'])


def test_cluster_keeps_a_login_on_one_process_and_moves_it_when_that_one_dies(
    cluster: Cluster, sessions
) -> None:
    with httpx.Client(timeout=10, trust_env=False) as anonymous:
        health = anonymous.get(f'{cluster.url}/healthz')
    assert health.status_code == 200
    assert health.json() | {'process': ''} == {'status': 'ok', 'database': 'ok', 'bus': 'ok', 'process': ''}

    actor = to_actor(make_user(sessions, role=Role.OPERATOR))
    ticket = SessionService(sessions, clock=SettableClock(TEST_NOW)).begin(actor)
    with httpx.Client(timeout=10, trust_env=False) as browser:
        login = browser.get(f'{cluster.url}/login/complete', params={'ticket': ticket, 'redirect_to': '/'})
        assert login.status_code == 303 and login.headers['location'] == '/'
        home = login.cookies.get('CRM_NODE')
        assert home in {'node1', 'node2'} and login.cookies.get('crm_session')
        assert {node_of(browser, cluster.url) for _ in range(6)} == {home}  # sticky
        page = browser.get(f'{cluster.url}/', follow_redirects=False)
        assert page.status_code == 200  # logged in: no redirect to /login

        os.kill(cluster.pid(home), signal.SIGKILL)
        page = browser.get(f'{cluster.url}/', follow_redirects=False)
        assert page.status_code == 200  # the other process, the same session (it is in the database)
        other = browser.cookies.get('CRM_NODE')
        assert other in {'node1', 'node2'} and other != home
        assert node_of(browser, cluster.url) == other

    left = [cluster.pid(other), cluster.pid('haproxy')]
    cluster.process.send_signal(signal.SIGTERM)  # what Ctrl-C does too
    assert cluster.process.wait(30) == 0
    for pid in left:  # stopped and reaped by the cluster
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
