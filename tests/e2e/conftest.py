"""A real app process on a free loopback port, and headless Debian Chromium driven by Playwright."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_API_TOKEN, TEST_NOW, need_service
from tests.harness import CHROMIUM, CHROMIUM_ARGS

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / 'test-output'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@contextmanager
def running_app(database_url: str, var_dir: Path, **settings: str) -> Iterator[str]:
    """An app process on a free loopback port (its log in ``var_dir/app.log``), on the test database, its
    clock starting at TEST_NOW; on RabbitMQ too when CRM_TEST_AMQP_URL is set; ``settings`` are more
    CRM_… variables. Yields its URL once it serves /login; stopped when the block ends."""
    port = free_port()
    env = os.environ | {
        'CRM_DATABASE_URL': database_url,
        'CRM_DEMO': '0',
        'CRM_PORT': str(port),
        'CRM_SECRET': 'e2e-secret',
        'CRM_VAR_DIR': str(var_dir),
        'CRM_API_TOKEN': TEST_API_TOKEN,
        'CRM_PBX_SIMULATOR': '0',
        'CRM_AMQP_URL': os.environ.get('CRM_TEST_AMQP_URL', ''),
        'CRM_CLOCK_START': TEST_NOW.isoformat(),
        **settings,
    }
    env.pop('PYTEST_CURRENT_TEST', None)  # NiceGUI would run in its pytest mode
    log = (var_dir / 'app.log').open('w')
    process = subprocess.Popen(
        [sys.executable, 'app.py'], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f'http://127.0.0.1:{port}'
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f'app exited: {(var_dir / "app.log").read_text()}')
            try:
                if httpx.get(url + '/login', timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError('app did not start within 30 s')
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope='module')  # ends before other modules' apps consume from the same broker
def app_url(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app (``running_app``) for this module's tests."""
    with running_app(database_url, tmp_path_factory.mktemp('var')) as url:
        yield url


def browser_env() -> dict[str, str]:
    """Chromium's environment: the test process's, but under libfaketime (the date-independence runs of
    .ci/run) with the monotonic clock faked too. With FAKETIME_DONT_FAKE_MONOTONIC=1, which the Python
    processes need (tests/faketime/sitecustomize.py), libfaketime 0.9.10 leaves Chromium unable to
    load any page; with both clocks moved it runs, and its ``Date`` is the moved one."""
    env = dict(os.environ)
    env.pop('FAKETIME_DONT_FAKE_MONOTONIC', None)
    return env


@pytest.fixture(scope='module')  # sync Playwright holds an event loop: release it before async tests run
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        need_service('Chromium is not installed at /usr/bin/chromium (apt-get install chromium)')
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            env=browser_env(),
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    context = browser.new_context(viewport={'width': 1440, 'height': 900}, locale='ru-RU')
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture(scope='session')
def output_dir() -> Path:
    OUTPUT.mkdir(exist_ok=True)
    return OUTPUT


def log_in(page, login: str, password: str) -> None:
    """Fill the login form the page shows and wait until the browser has left it (argon2 and the
    navigation that follows take a while on a busy machine: up to 20 s here, not the default 5)."""
    page.get_by_label('Логин/Email', exact=True).fill(login)
    page.get_by_label('Пароль', exact=True).fill(password)
    page.get_by_role('button', name='Войти', exact=True).click()
    page.wait_for_url(lambda url: '/login' not in url, timeout=20_000)
    page.wait_for_load_state()
