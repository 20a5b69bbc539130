"""Alembic, driven from code: upgrade to head and check that a database is at head."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
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
        reason = str(error.orig or error).strip().splitlines()[0]
        raise DatabaseNotReady(f'CRM_DATABASE_URL={url}: database unreachable ({reason})') from None
    head = head_revision(str(engine.url))
    if current != head:
        raise DatabaseNotReady(
            f'CRM_DATABASE_URL={url}: schema at revision {current or "none"}, code needs {head}; '
            'run migrations first (make run does it: python -m crm.manage prepare)'
        )
