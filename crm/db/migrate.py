"""Alembic, driven from code: upgrade to head and check that a database is at head."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

MIGRATIONS = Path(__file__).parent / 'migrations'


class DatabaseNotReady(RuntimeError):
    """The database cannot be used: unreachable, or not migrated to the code's schema."""


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option('script_location', str(MIGRATIONS))
    config.set_main_option('sqlalchemy.url', url.replace('%', '%%'))
    return config


def upgrade(url: str) -> None:
    command.upgrade(alembic_config(url), 'head')


def head_revision(url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def check_ready(engine: Engine) -> None:
    """Raise DatabaseNotReady with one clear line unless the schema is at the code's head."""
    url = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as error:
        reason = str(getattr(error, 'orig', None) or error).strip().splitlines()[0]
        raise DatabaseNotReady(f'CRM_DATABASE_URL={url}: database unreachable ({reason})') from None
    head = head_revision(str(engine.url))
    if current != head:
        raise DatabaseNotReady(
            f'CRM_DATABASE_URL={url}: schema at revision {current or "none"}, code needs {head}; '
            'run migrations first (make run does it: python -m crm.manage prepare)'
        )


def create_database_if_missing(url: str) -> None:
    """Create the PostgreSQL database a URL names, if it is not there yet (benchmarks, first runs)."""
    from crm.db.engine import make_engine

    parsed = make_url(url)
    admin = make_engine(parsed.set(database='postgres').render_as_string(hide_password=False))
    try:
        with admin.connect().execution_options(isolation_level='AUTOCOMMIT') as connection:
            exists = connection.scalar(
                text('SELECT 1 FROM pg_database WHERE datname = :name'), {'name': parsed.database}
            )
            if not exists:
                connection.exec_driver_sql(f'CREATE DATABASE "{parsed.database}"')
    finally:
        admin.dispose()
