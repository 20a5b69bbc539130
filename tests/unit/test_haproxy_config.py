"""deploy/haproxy.cfg.j2 as `python -m crm.cluster` renders it: sticky by an inserted cookie, leastconn,
long websocket tunnels, /healthz checks — and HAProxy itself accepts it when it is installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from crm.cluster import Server, render_haproxy

SERVERS = [Server('node1', '127.0.0.1:8081'), Server('node2', '10.0.0.12:8081')]


def directives(config: str) -> list[str]:
    return [line.split('#')[0].strip() for line in config.splitlines() if line.split('#')[0].strip()]


def test_plain_http_config_has_what_a_call_centre_needs() -> None:
    lines = directives(render_haproxy(SERVERS, bind='127.0.0.1:8080'))
    assert 'bind 127.0.0.1:8080' in lines
    assert 'balance leastconn' in lines
    assert 'cookie CRM_NODE insert indirect nocache httponly attr "SameSite=Lax"' in lines
    assert 'option httpchk GET /healthz' in lines
    assert (
        'timeout tunnel 8h' in lines
        and 'timeout client-fin 10s' in lines
        and 'timeout server-fin 10s' in lines
    )
    assert 'http-reuse safe' in lines and 'option redispatch' in lines
    assert 'server node1 127.0.0.1:8081 check cookie node1' in lines
    assert 'server node2 10.0.0.12:8081 check cookie node2' in lines
    assert not any(line.startswith('balance source') or 'hash' in line for line in lines)


def test_tls_makes_the_node_cookie_secure() -> None:
    lines = directives(render_haproxy(SERVERS, bind=':443', tls_cert='/etc/haproxy/crm.pem'))
    assert 'bind :443 ssl crt /etc/haproxy/crm.pem alpn h2,http/1.1' in lines
    assert 'cookie CRM_NODE insert indirect nocache httponly secure attr "SameSite=Lax"' in lines


def test_haproxy_accepts_it(tmp_path: Path) -> None:
    binary = shutil.which('haproxy') or shutil.which('haproxy', path='/usr/sbin')
    if binary is None:
        pytest.skip('haproxy is not installed')
    config = tmp_path / 'haproxy.cfg'
    config.write_text(render_haproxy(SERVERS, maxconn=1000))
    checked = subprocess.run([binary, '-c', '-q', '-f', str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
