"""`make cluster N=3`: N app processes on PostgreSQL and RabbitMQ behind HAProxy, on this machine.

``python -m crm.cluster [--nodes N]`` installs Debian's haproxy if it is missing (as root), creates the
database if it is missing and prepares it once (migrations, demo data), starts N app processes on
127.0.0.1:8081… (``CRM_INSTANCE=node1``…), writes var/cluster/haproxy.cfg from deploy/haproxy.cfg.j2,
runs HAProxy in the foreground, waits until every process answers ``/healthz`` through HAProxy, prints
the address, and stops everything on Ctrl-C or SIGTERM. ``python -m crm.cluster config --server …`` prints
the HAProxy configuration for real hosts.

One process only (node1) runs the built-in PBX, chat and loan system: each hears every command on
crm.commands, so two of them would answer every dial and every sale twice.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
from jinja2 import Environment, FileSystemLoader, StrictUndefined

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / 'deploy'
DEFAULT_DATABASE_URL = 'postgresql+psycopg://postgres@127.0.0.1:5432/crm_cluster'
DEFAULT_AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672/%2F'
START_TIMEOUT_S = 180.0  # N processes starting at once on a small machine
STOP_TIMEOUT_S = 15.0
SIMULATORS = ('CRM_PBX_SIMULATOR', 'CRM_LOAN_SYSTEM_SIMULATOR')


@dataclass(frozen=True)
class Server:
    name: str  # HAProxy's server name and the value of its CRM_NODE cookie
    address: str  # host:port


def render_haproxy(
    servers: Sequence[Server],
    *,
    bind: str = '127.0.0.1:8080',
    tls_cert: str | None = None,
    tunnel_timeout: str = '8h',
    maxconn: int = 20000,
    system: bool = False,
) -> str:
    """deploy/haproxy.cfg.j2 for these servers; the node cookie is Secure when HAProxy does TLS.
    ``system``: for Debian's haproxy.service (drops root, an admin socket for draining a process)."""
    environment = Environment(
        loader=FileSystemLoader(DEPLOY),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # a configuration file, not HTML
    )
    return environment.get_template('haproxy.cfg.j2').render(
        servers=servers,
        bind=bind,
        tls_cert=tls_cert,
        secure_cookie=tls_cert is not None,
        tunnel_timeout=tunnel_timeout,
        maxconn=maxconn,
        system=system,
    )


def local_maxconn(wanted: int = 20000) -> int:
    """HAProxy needs about two descriptors per connection, within this machine's hard limit."""
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        return wanted
    return max(100, min(wanted, (hard - 100) // 2))


def say(text: str) -> None:
    print(f'cluster: {text}', flush=True)


def fail(text: str) -> SystemExit:
    return SystemExit(f'cluster: {text}')


# --- what the cluster needs ----------------------------------------------------------------------


def haproxy_binary() -> str:
    """The haproxy binary; Debian's package installed with apt-get when missing (as root)."""
    found = shutil.which('haproxy') or shutil.which('haproxy', path='/usr/sbin:/usr/local/sbin')
    if found:
        return found
    if os.geteuid() != 0:
        raise fail('haproxy is not installed: run `sudo apt-get install haproxy` (or `make cluster` as root)')
    say("installing Debian's haproxy package")
    env = os.environ | {'DEBIAN_FRONTEND': 'noninteractive'}
    install = ['apt-get', 'install', '-y', '-q', 'haproxy']
    if subprocess.run(install, env=env, stdout=subprocess.DEVNULL).returncode != 0:
        subprocess.run(['apt-get', 'update', '-q'], env=env, stdout=subprocess.DEVNULL, check=False)
        subprocess.run(install, env=env, stdout=subprocess.DEVNULL, check=False)
    found = shutil.which('haproxy') or shutil.which('haproxy', path='/usr/sbin:/usr/local/sbin')
    if not found:
        raise fail('could not install haproxy with apt-get')
    return found


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database of ``url`` if it does not exist (connecting to ``postgres``)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    target = make_url(url)
    if target.get_backend_name() != 'postgresql':
        raise fail('CRM_DATABASE_URL: a cluster needs PostgreSQL (every process shares the database)')
    name = target.database or 'crm'
    engine = create_engine(target.set(database='postgres'), isolation_level='AUTOCOMMIT')
    try:
        with engine.connect() as connection:
            exists = connection.execute(text('SELECT 1 FROM pg_database WHERE datname = :n'), {'n': name})
            if exists.first() is None:
                quoted = connection.dialect.identifier_preparer.quote(name)
                connection.execute(text(f'CREATE DATABASE {quoted}'))
                say(f'created database {name}')
    except OperationalError as error:
        reason = str(error.orig or error).strip().splitlines()[0]
        raise fail(f'CRM_DATABASE_URL: cannot reach PostgreSQL ({reason})') from None
    finally:
        engine.dispose()


def ensure_broker(url: str) -> None:
    from crm.integrations.rabbitmq import BusUnavailable, check_reachable

    try:
        check_reachable(url)
    except BusUnavailable as error:
        raise fail(str(error)) from None


def shared_secret(var_dir: Path) -> str:
    """CRM_SECRET, or one generated once under var/cluster: every process must share it."""
    if os.environ.get('CRM_SECRET'):
        return os.environ['CRM_SECRET']
    path = var_dir / 'secret'
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


# --- the processes --------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """In the child: SIGTERM when the cluster process dies, even by SIGKILL (Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: IO[bytes]
    announced_exit: bool = False


def spawn(name: str, command: list[str], env: dict[str, str], log_path: Path) -> Child:
    log = log_path.open('ab')
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C reaches the cluster script only; it stops the rest in order
        # Linux sends the death signal when the *thread* that spawned the child ends, not the process:
        # a child started from a short-lived thread (the chaos tests restart nodes from one) would be
        # stopped with it, so only children of the main thread get it
        preexec_fn=_die_with_parent if sys.platform == 'linux' and _on_main_thread() else None,
    )
    return Child(name, process, log)


def stop_all(children: Sequence[Child]) -> None:
    for child in children:
        if child.process.poll() is None:
            child.process.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for child in children:
        try:
            child.process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f'{child.name} did not stop in {STOP_TIMEOUT_S:.0f} s: killing it')
            child.process.kill()
            child.process.wait()
        child.log.close()


def tail(path: Path, lines: int = 15) -> str:
    try:
        return '\n'.join(path.read_text(errors='replace').splitlines()[-lines:])
    except OSError:
        return ''


def wait_healthy(
    url: str, nodes: Sequence[str], children: Sequence[Child], var_dir: Path, stopping: threading.Event
) -> bool:
    """Until every node answers /healthz with 200 through HAProxy (its CRM_NODE cookie picks the node);
    False when asked to stop first."""
    deadline = time.monotonic() + START_TIMEOUT_S
    waiting = list(nodes)
    with httpx.Client(timeout=5, trust_env=False) as client:
        while waiting:
            if stopping.is_set():
                return False
            for child in children:
                if child.process.poll() is not None:
                    raise fail(
                        f'{child.name} exited with {child.process.returncode}; its log:\n'
                        + tail(var_dir / f'{child.name}.log')
                    )
            if time.monotonic() > deadline:
                raise fail(f'not healthy after {START_TIMEOUT_S:.0f} s: {", ".join(waiting)}')
            node = waiting[0]
            try:
                client.cookies.clear()  # only the node asked for: not one HAProxy set on a redispatch
                answer = client.get(f'{url}/healthz', headers={'Cookie': f'CRM_NODE={node}'})
                if answer.status_code == 200 and answer.json().get('process') == node:
                    waiting.pop(0)
                    continue
            except (httpx.HTTPError, ValueError):
                pass
            stopping.wait(0.5)
    return True


def node_env(base: dict[str, str], *, index: int, port: int, var_dir: Path, secret: str) -> dict[str, str]:
    name = f'node{index}'
    home = var_dir / name
    home.mkdir(parents=True, exist_ok=True)
    env = base | {
        'CRM_PORT': str(port),
        'CRM_HOST': '127.0.0.1',
        'CRM_INSTANCE': name,
        'CRM_SECRET': secret,
        'CRM_VAR_DIR': str(home),
        'NICEGUI_STORAGE_PATH': str(home / 'nicegui'),
    }
    if index > 1:  # the built-in PBX, chat and loan system: in node1 only (or, when turned off, nowhere)
        env |= {name: '0' for name in SIMULATORS}
    return env


def run(args: argparse.Namespace) -> int:
    var_dir = Path(args.var_dir).resolve()
    var_dir.mkdir(parents=True, exist_ok=True)
    base = dict(os.environ)
    base.pop('PYTEST_CURRENT_TEST', None)
    base['CRM_DATABASE_URL'] = base.get('CRM_DATABASE_URL') or DEFAULT_DATABASE_URL
    base['CRM_AMQP_URL'] = base.get('CRM_AMQP_URL') or DEFAULT_AMQP_URL
    haproxy = haproxy_binary()
    ensure_database(base['CRM_DATABASE_URL'])
    ensure_broker(base['CRM_AMQP_URL'])
    secret = shared_secret(var_dir)

    prepare = [sys.executable, '-m', 'crm.manage', 'prepare']
    if args.borrowers is not None:
        prepare += ['--borrowers', str(args.borrowers)]
    say('preparing the database (migrations, demo data)')
    prepared = subprocess.run(prepare, cwd=ROOT, env=base | {'CRM_VAR_DIR': str(var_dir)}, check=False)
    if prepared.returncode != 0:
        return prepared.returncode

    ports = [args.first_port + i for i in range(args.nodes)]
    servers = [Server(f'node{i + 1}', f'127.0.0.1:{port}') for i, port in enumerate(ports)]
    config = var_dir / 'haproxy.cfg'
    config.write_text(render_haproxy(servers, bind=args.bind, maxconn=local_maxconn()))
    checked = subprocess.run([haproxy, '-c', '-q', '-f', str(config)], capture_output=True, text=True)
    if checked.returncode != 0:
        raise fail(f'{config} is not valid:\n{checked.stdout}{checked.stderr}')

    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())

    children: list[Child] = []
    try:
        for index, port in enumerate(ports, start=1):
            env = node_env(base, index=index, port=port, var_dir=var_dir, secret=secret)
            child = spawn(f'node{index}', [sys.executable, 'app.py'], env, var_dir / f'node{index}.log')
            (var_dir / f'node{index}.pid').write_text(str(child.process.pid))
            children.append(child)
        say(f'{args.nodes} app processes on 127.0.0.1:{ports[0]}…{ports[-1]}; logs in {var_dir}/node*.log')
        proxy = spawn('haproxy', [haproxy, '-db', '-f', str(config)], base, var_dir / 'haproxy.log')
        (var_dir / 'haproxy.pid').write_text(str(proxy.process.pid))
        children.insert(0, proxy)  # stopped first: no new requests to processes going away

        host, _, port_text = args.bind.rpartition(':')
        url = f'http://{host or "127.0.0.1"}:{port_text}'
        if not wait_healthy(url, [server.name for server in servers], children, var_dir, stopping):
            return 0
        say(f'ready: {url} ({args.nodes} processes behind HAProxy; Ctrl-C stops them)')
        while not stopping.is_set():
            if proxy.process.poll() is not None:
                say(f'haproxy exited with {proxy.process.returncode}:\n{tail(var_dir / "haproxy.log")}')
                return 1
            for child in children[1:]:
                if child.process.poll() is not None and not child.announced_exit:
                    child.announced_exit = True
                    say(f'{child.name} exited with {child.process.returncode}; HAProxy sends its users on')
            stopping.wait(0.5)
        say('stopping')
        return 0
    finally:
        stop_all(children)
        for pid_file in var_dir.glob('*.pid'):
            pid_file.unlink(missing_ok=True)


def print_config(args: argparse.Namespace) -> int:
    servers: list[Server] = []
    for item in args.server or []:
        name, _, address = item.partition('=')
        if not address or ':' not in address:
            raise fail(f'--server {item!r}: expected NAME=HOST:PORT')
        servers.append(Server(name, address))
    if not servers:
        servers = [Server(f'node{i + 1}', f'127.0.0.1:{args.first_port + i}') for i in range(args.nodes)]
    sys.stdout.write(render_haproxy(servers, bind=args.bind, tls_cert=args.tls_cert, system=True))
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog='python -m crm.cluster', description=__doc__.split('\n\n')[0])
    parser.add_argument('command', nargs='?', choices=('run', 'config'), default='run')
    parser.add_argument('--nodes', type=int, default=3, help='app processes (default 3)')
    parser.add_argument('--bind', default='127.0.0.1:8080', help="HAProxy's address (default 127.0.0.1:8080)")
    parser.add_argument('--first-port', type=int, default=8081, help='the first app port (default 8081)')
    parser.add_argument('--borrowers', type=int, help='demo borrowers for an empty database (default 2000)')
    parser.add_argument('--var-dir', default=str(ROOT / 'var' / 'cluster'), help='config, logs, pid files')
    parser.add_argument('--server', action='append', help='config: NAME=HOST:PORT of an app process')
    parser.add_argument('--tls-cert', help='config: a PEM (certificate and key) for HTTPS on --bind')
    args = parser.parse_args(argv)
    if args.nodes < 1:
        raise fail('--nodes: at least 1')
    sys.exit(print_config(args) if args.command == 'config' else run(args))


if __name__ == '__main__':
    main()
