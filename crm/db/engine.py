"""Engine and session factory; nothing connects until asked to."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from crm.db.statement_count import count_statements
from crm.domain.clock import Clock, system_clock


def make_engine(url: str, *, statement_timeout_ms: int | None = None) -> Engine:
    """An engine whose errors never carry the statement's parameters (phones, names) into a log line.

    ``statement_timeout_ms`` bounds every statement on PostgreSQL (the app's engine: no request may hold
    a backend for long, whatever it asks); migrations and bulk loads make their engine without it.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == 'sqlite':
        if parsed.database and parsed.database != ':memory:':
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={'check_same_thread': False, 'timeout': 30}, hide_parameters=True
        )
        event.listen(engine, 'connect', _sqlite_pragmas)
        count_statements(engine)
        return engine
    connect_args = {'options': f'-c statement_timeout={statement_timeout_ms}'} if statement_timeout_ms else {}
    engine = create_engine(
        url,
        pool_size=10,
        max_overflow=20,
        pool_pre_ping=True,
        hide_parameters=True,
        connect_args=connect_args,
    )
    count_statements(engine)  # GET /metrics: crm_db_statements_total
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute('PRAGMA foreign_keys=ON')
    cursor.execute('PRAGMA journal_mode=WAL')
    cursor.execute('PRAGMA synchronous=NORMAL')
    cursor.close()


def make_sessions(engine: Engine, clock: Clock = system_clock) -> sessionmaker[Session]:
    """Sessions that keep their rows readable after commit and know the system's clock."""
    return sessionmaker(engine, expire_on_commit=False, info={'clock': clock})


def session_now(session: Session) -> datetime:
    """ "Now" by the clock of the system that made the session (for code that has only the session)."""
    clock: Clock = session.info.get('clock', system_clock)
    return clock()
