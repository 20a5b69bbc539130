"""The app refuses to start on a database it cannot use, with one line naming CRM_DATABASE_URL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def start(database_url: str, tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {'CRM_DATABASE_URL': database_url, 'CRM_VAR_DIR': str(tmp_path), 'CRM_PORT': '1'}
    env |= extra
    env.pop('PYTEST_CURRENT_TEST', None)
    return subprocess.run(
        [sys.executable, 'app.py'], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    'url',
    ['sqlite:///{tmp}/empty.sqlite3', 'postgresql+psycopg://postgres@127.0.0.1:1/nowhere'],
    ids=['not-migrated', 'unreachable'],
)
def test_unusable_database_gives_one_clear_line(tmp_path: Path, url: str) -> None:
    result = start(url.format(tmp=tmp_path), tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('CRM_DATABASE_URL=')
    assert 'Traceback' not in result.stderr


def test_unreachable_broker_gives_one_clear_line(tmp_path: Path, database_url: str) -> None:
    result = start(database_url, tmp_path, CRM_AMQP_URL='amqp://guest:secret@127.0.0.1:1/')
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith('CRM_AMQP_URL=amqp://guest:***@127.0.0.1:1/') and 'secret' not in line
