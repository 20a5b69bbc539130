"""A cluster for fault tests: N app processes behind a real HAProxy, each reaching PostgreSQL and RabbitMQ
through TCP proxies of its own, so a test can cut one process's broker connection, take the database
away from every process, or SIGKILL a process and start it again.

Built from ``crm.cluster``'s parts (the HAProxy template, ``node_env``, ``spawn``); used by
``bench/chaos.py`` (``make chaos``) and ``tests/e2e/test_chaos.py``.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from crm.cluster import (
    Child,
    Server,
    haproxy_binary,
    local_maxconn,
    node_env,
    render_haproxy,
    spawn,
    stop_all,
    tail,
)
from tests.loopback import closed_port, free_ports
from tests.tcp_proxy import TcpProxy

START_TIMEOUT_S = 180.0


@dataclass
class Node:
    name: str
    port: int
    env: dict[str, str]
    database: TcpProxy
    broker: TcpProxy
    child: Child | None = None

    @property
    def pid(self) -> int:
        assert self.child is not None
        return self.child.process.pid


@dataclass
class ChaosCluster:
    """``with chaos_cluster(...) as cluster:`` — ``cluster.url`` is HAProxy's address."""

    url: str
    var_dir: Path
    nodes: dict[str, Node]
    haproxy: Child
    clock_start: datetime | None = None  # CRM_CLOCK_START of the nodes started with the cluster
    events: list[dict[str, object]] = field(default_factory=list)  # what was done to it, when
    created: float = field(default_factory=time.monotonic)
    stats_url: str = ''
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, what: str, **details: object) -> None:
        with self._lock:
            self.events.append({'at': round(time.monotonic(), 3), 'what': what, **details})

    def kill(self, name: str) -> None:
        """SIGKILL: no shutdown, no goodbye to the broker or the database."""
        node = self.nodes[name]
        assert node.child is not None
        os.kill(node.pid, signal.SIGKILL)
        node.child.process.wait()
        node.child.log.close()
        node.child = None
        self.note('kill', node=name)

    def start(self, name: str) -> None:
        node = self.nodes[name]
        log = self.var_dir / f'{name}.log'
        if self.clock_start is not None:  # a node started later runs on the same clock as the others
            moved = self.clock_start + timedelta(seconds=time.monotonic() - self.created)
            node.env['CRM_CLOCK_START'] = moved.isoformat()
        node.child = spawn(name, [sys.executable, 'app.py'], node.env, log)
        (self.var_dir / f'{name}.pid').write_text(str(node.child.process.pid))
        self.note('start', node=name)

    def wait_up(self, name: str, timeout: float = START_TIMEOUT_S) -> float:
        """Until the node answers /healthz on its own port; the seconds it took."""
        node = self.nodes[name]
        started = time.monotonic()
        with httpx.Client(timeout=3, trust_env=False) as client:
            while True:
                if node.child is None or node.child.process.poll() is not None:
                    raise RuntimeError(f'{name} exited; its log:\n{tail(self.var_dir / f"{name}.log")}')
                try:
                    if client.get(f'http://127.0.0.1:{node.port}/healthz').status_code == 200:
                        self.note('up', node=name)
                        return time.monotonic() - started
                except httpx.HTTPError:
                    pass
                if time.monotonic() - started > timeout:
                    raise RuntimeError(f'{name} not healthy after {timeout:.0f} s')
                time.sleep(0.2)

    def cut_broker(self, name: str, seconds: float) -> None:
        """Drop the node's connections to RabbitMQ and refuse new ones for ``seconds``."""
        self._outage([self.nodes[name].broker], seconds, 'broker cut', node=name)

    def cut_database(self, seconds: float) -> None:
        """PostgreSQL unreachable for every node for ``seconds`` (open connections dropped too)."""
        proxies = [node.database for node in self.nodes.values()]
        self._outage(proxies, seconds, 'database cut', nodes=list(self.nodes))

    def _outage(self, proxies: Sequence[TcpProxy], seconds: float, what: str, **details: object) -> None:
        self.note(what, seconds=seconds, **details)
        for proxy in proxies:
            proxy.cut(refuse=True)
        time.sleep(seconds)
        for proxy in proxies:
            proxy.resume()
        self.note(what.replace('cut', 'restored'), **details)

    def wait_routed(self, name: str, timeout: float = 60.0) -> float:
        """Until HAProxy's health checks have the node up (a request pinned by its cookie reaches it)."""
        started = time.monotonic()
        with httpx.Client(timeout=3, trust_env=False) as client:
            while True:
                client.cookies.clear()
                try:
                    answer = client.get(f'{self.url}/healthz', headers={'Cookie': f'CRM_NODE={name}'})
                    if answer.status_code == 200 and answer.json().get('process') == name:
                        return time.monotonic() - started
                except (httpx.HTTPError, ValueError):
                    pass
                if time.monotonic() - started > timeout:
                    raise RuntimeError(
                        f'HAProxy does not reach {name}:\n{tail(self.var_dir / "haproxy.log")}'
                    )
                time.sleep(0.3)

    def servers(self) -> dict[str, dict[str, str]]:
        """Per node: HAProxy's status and last check, and the node's own /healthz answer."""
        seen: dict[str, dict[str, str]] = {}
        with httpx.Client(timeout=3, trust_env=False) as client:
            try:
                lines = client.get(self.stats_url).text.lstrip('# ').splitlines()
                header = lines[0].split(',')
                for line in lines[1:]:
                    row = dict(zip(header, line.split(','), strict=False))
                    if row.get('svname') in self.nodes:
                        seen[row['svname']] = {
                            'haproxy': row.get('status', ''),
                            'check': f'{row.get("check_status", "")} {row.get("check_code", "")}'.strip(),
                        }
            except httpx.HTTPError as error:
                seen['haproxy'] = {'error': type(error).__name__}
            for name, node in self.nodes.items():
                try:
                    own = client.get(f'http://127.0.0.1:{node.port}/healthz').status_code
                except httpx.HTTPError as error:
                    own = type(error).__name__  # type: ignore[assignment]
                seen.setdefault(name, {})['healthz'] = str(own)
        return seen

    def count_in_logs(self, needle: str) -> int:
        """How many lines of the nodes' logs hold ``needle`` (the logs are appended to across restarts)."""
        total = 0
        for name in self.nodes:
            path = self.var_dir / f'{name}.log'
            if path.exists():
                with path.open(errors='replace') as lines:
                    total += sum(needle in line for line in lines)
        return total


def _proxy_for(url: str) -> TcpProxy:
    parts = urlsplit(url)
    return TcpProxy(parts.hostname or '127.0.0.1', parts.port or 0)


@contextmanager
def chaos_cluster(
    *,
    nodes: int,
    database_url: str,
    amqp_url: str,
    var_dir: Path,
    env: dict[str, str],
    tunnel_timeout: str = '8h',
) -> Iterator[ChaosCluster]:
    """Start the cluster (``env``: CRM_… variables for every node on top of this process's environment;
    the database must be migrated already); stop everything when the block ends."""
    var_dir.mkdir(parents=True, exist_ok=True)
    haproxy = haproxy_binary()
    base = dict(os.environ) | {'CRM_PBX_SIMULATOR': '0', 'CRM_LOAN_SYSTEM_SIMULATOR': '0'} | env
    base.pop('PYTEST_CURRENT_TEST', None)  # NiceGUI would run in its pytest mode
    secret = base.get('CRM_SECRET') or 'chaos-secret'
    bind, first = closed_port(), free_ports(nodes)
    made: dict[str, Node] = {}
    children: list[Child] = []
    try:
        for index in range(1, nodes + 1):
            name = f'node{index}'
            database, broker = _proxy_for(database_url), _proxy_for(amqp_url)
            own = node_env(base, index=index, port=first + index - 1, var_dir=var_dir, secret=secret)
            own |= {'CRM_DATABASE_URL': database.url(database_url), 'CRM_AMQP_URL': broker.url(amqp_url)}
            own |= {'CRM_PBX_SIMULATOR': '0', 'CRM_LOAN_SYSTEM_SIMULATOR': '0'}
            made[name] = Node(name, first + index - 1, own, database, broker)
        servers = [Server(node.name, f'127.0.0.1:{node.port}') for node in made.values()]
        config = var_dir / 'haproxy.cfg'
        stats = closed_port()
        rendered = render_haproxy(
            servers, bind=f'127.0.0.1:{bind}', tunnel_timeout=tunnel_timeout, maxconn=local_maxconn(2000)
        )
        # HAProxy's own view of the servers (state, last check), for the report
        config.write_text(
            rendered + f'\nlisten stats\n    bind 127.0.0.1:{stats}\n    stats enable\n    stats uri /\n'
        )
        proxy = spawn('haproxy', [haproxy, '-db', '-f', str(config)], base, var_dir / 'haproxy.log')
        children.append(proxy)
        clock_start = datetime.fromisoformat(base['CRM_CLOCK_START']) if base.get('CRM_CLOCK_START') else None
        cluster = ChaosCluster(f'http://127.0.0.1:{bind}', var_dir, made, proxy, clock_start)
        cluster.stats_url = f'http://127.0.0.1:{stats}/;csv'
        for name in made:
            cluster.start(name)
        for name in made:
            cluster.wait_up(name)
        _wait_balanced(cluster)
        yield cluster
    finally:
        children += [node.child for node in made.values() if node.child is not None]
        stop_all(children)
        for node in made.values():
            node.database.close()
            node.broker.close()


def _wait_balanced(cluster: ChaosCluster) -> None:
    for name in cluster.nodes:
        cluster.wait_routed(name)


def run_in_background(target: Callable[..., object], *args: object) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread
