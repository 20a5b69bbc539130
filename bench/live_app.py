"""What the benchmarks that drive the app in a browser share: the app as a subprocess on a free loopback
port, its RabbitMQ vhost, a publisher that speaks as the PBX (AMQP, or a POST to /api/v1/events on the
in-process bus), the login form, and the percentiles of the report (screen_pop.py, dashboard.py).
"""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for crm and tests.harness

from crm.integrations.bus import EVENTS_EXCHANGE, EVENTS_QUEUE
from tests.harness import purge_events_queue

log = logging.getLogger('bench.live_app')

ROOT = Path(__file__).resolve().parent.parent
HANDSHAKE_JS = '() => window.did_handshake === true'


@dataclass(frozen=True)
class Backend:
    database_url: str
    amqp_url: str | None  # None: in-process bus, events over HTTP

    @property
    def name(self) -> str:
        return 'postgresql+rabbitmq' if self.amqp_url else 'sqlite+inprocess'


# --- RabbitMQ -----------------------------------------------------------------------------------


def with_vhost(url: str, vhost: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path='/' + quote(vhost, safe='')))


def prepare_vhost(url: str, vhost: str) -> str:
    """A vhost of the bench's own (so no other app consumes its events), else the URL's, purged."""
    if vhost:
        rabbitmqctl = shutil.which('rabbitmqctl')
        commands = (['add_vhost', vhost], ['set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*'])
        try:
            if rabbitmqctl is None:
                raise FileNotFoundError('rabbitmqctl not found')
            for command in commands:
                result = subprocess.run(
                    [rabbitmqctl, *command], capture_output=True, text=True, timeout=60, check=False
                )
                if result.returncode != 0 and 'already_exists' not in result.stderr + result.stdout:
                    raise RuntimeError(f'rabbitmqctl {command[0]}: {result.stderr.strip() or result.stdout}')
            url = with_vhost(url, vhost)
            log.info('RabbitMQ vhost %s', vhost)
        except (OSError, RuntimeError, subprocess.SubprocessError) as error:
            log.warning('no vhost of its own (%s): using the URL as given', error)
    purge_old_events(url)
    return url


def purge_old_events(url: str) -> None:
    purged = purge_events_queue(url)
    if purged:
        log.info('purged %d old messages from %s', purged, EVENTS_QUEUE)


def queue_consumers(url: str) -> int:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        return connection.channel().queue_declare(EVENTS_QUEUE, passive=True).method.consumer_count
    finally:
        connection.close()


# --- the app ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@dataclass
class App:
    process: subprocess.Popen[bytes]
    url: str
    token: str
    log_path: Path

    def check_alive(self) -> None:
        """RuntimeError with the end of the app's log if the app has exited."""
        if self.process.poll() is not None:
            tail = self.log_path.read_text(errors='replace')[-3000:]
            raise RuntimeError(f'the app exited with {self.process.returncode}:\n{tail}')

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_app(
    backend: Backend,
    amqp_url: str | None,
    var_dir: Path,
    app_dir: Path = ROOT,
    settings: Mapping[str, str] | None = None,
) -> App:
    """app.py with the bench's database and bus, a token of its own and ``settings`` (more CRM_*
    variables), its files and log in ``var_dir`` (emptied first); returns once /login answers."""
    shutil.rmtree(var_dir, ignore_errors=True)
    var_dir.mkdir(parents=True)
    port = free_port()
    token = secrets.token_urlsafe(24)
    env = dict(os.environ)
    for name in [n for n in env if n.startswith('CRM_')] + ['PYTEST_CURRENT_TEST']:
        env.pop(name, None)  # NiceGUI runs in test mode under pytest
    env |= {
        'CRM_DATABASE_URL': backend.database_url,
        'CRM_PORT': str(port),
        'CRM_HOST': '127.0.0.1',
        'CRM_DEMO': '0',
        'CRM_PBX_SIMULATOR': '0',
        'CRM_SECRET': secrets.token_urlsafe(32),
        'CRM_VAR_DIR': str(var_dir),
        'CRM_API_TOKEN': token,
    }
    if amqp_url:
        env['CRM_AMQP_URL'] = amqp_url
    env |= dict(settings or {})
    log_path = var_dir / 'app.log'
    with log_path.open('wb') as output:
        process = subprocess.Popen(
            [sys.executable, 'app.py'], cwd=app_dir, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    app = App(process, f'http://127.0.0.1:{port}', token, log_path)
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f'the app exited:\n{log_path.read_text()[-3000:]}')
        try:
            if httpx.get(app.url + '/login', timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            app.stop()
            raise RuntimeError('the app did not answer /login within 60 s')
        time.sleep(0.2)
    log.info('app up at %s (log %s)', app.url, log_path)
    return app


# --- publishing ---------------------------------------------------------------------------------


class Publisher:
    """One event at a time, the way the PBX would: persistent and confirmed, or a POST to the API."""

    def __init__(self, amqp_url: str | None, app: App) -> None:
        self._amqp_url = amqp_url
        self._app = app
        self._connection: Any = None
        self._channel: Any = None
        self._http: httpx.Client | None = None
        if amqp_url:
            import pika

            self._pika = pika
            self._connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
            self._channel = self._connection.channel()
            self._channel.confirm_delivery()
            self._properties = pika.BasicProperties(
                content_type='application/json', delivery_mode=pika.DeliveryMode.Persistent
            )
        else:
            self._http = httpx.Client(
                base_url=app.url, headers={'Authorization': f'Bearer {app.token}'}, timeout=30
            )

    def send(self, event_type: str, body: dict[str, Any]) -> float:
        """Send one event (``event_type``: its routing key, or its "type" in the POST); returns the epoch
        ms taken immediately before sending it."""
        payload = json.dumps(body if self._channel is not None else {'type': event_type, **body}).encode()
        if self._channel is not None:
            started = time.time() * 1000
            self._channel.basic_publish(EVENTS_EXCHANGE, event_type, payload, self._properties)
            return started
        assert self._http is not None
        started = time.time() * 1000
        response = self._http.post(
            '/api/v1/events', content=payload, headers={'Content-Type': 'application/json'}
        )
        if response.status_code != 202:
            raise RuntimeError(f'POST /api/v1/events: {response.status_code} {response.text[:300]}')
        return started

    def close(self) -> None:
        if self._connection is not None and self._connection.is_open:
            try:
                self._connection.close()
            except (self._pika.exceptions.AMQPError, OSError) as error:
                log.info('bench publisher: %s on close (idle for minutes, the broker closed it)', error)
        if self._http is not None:
            self._http.close()


# --- report -------------------------------------------------------------------------------------


def known(latencies: Iterable[float | None]) -> list[float]:
    """The latencies that were measured (None: no stamp within --timeout)."""
    return [latency for latency in latencies if latency is not None]


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = min(max(1, math.ceil(share * len(ordered))), len(ordered))
    return ordered[rank - 1]


def summary(
    values: Sequence[float], keys: Sequence[str] = ('p50', 'p95', 'p99', 'max', 'mean')
) -> dict[str, float | None]:
    """Nearest-rank percentiles, max and mean in ms; None each when nothing was measured."""
    if not values:
        return dict.fromkeys(keys)
    every = {
        'p50': percentile(values, 0.50),
        'p95': percentile(values, 0.95),
        'p99': percentile(values, 0.99),
        'max': max(values),
        'mean': statistics.fmean(values),
    }
    return {key: round(every[key], 2) for key in keys}


async def sign_in(page: Any, app: App, login: str, password: str, path: str = '/login') -> None:
    """Open ``path`` (the login form, or a page that sends there and back), wait for the websocket,
    submit the form. The caller waits for what its page shows."""
    await page.goto(app.url + path, wait_until='domcontentloaded')
    # a click before the socket's handshake may be lost: the form would not submit
    await page.wait_for_function(HANDSHAKE_JS, timeout=30_000)
    await page.get_by_label('Логин/Email').fill(login)
    await page.get_by_label('Пароль').fill(password)
    await page.get_by_role('button', name='Войти').click()
