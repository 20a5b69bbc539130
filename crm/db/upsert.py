"""INSERT … ON CONFLICT DO NOTHING for the two databases this app runs on."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any, cast

from sqlalchemy import Insert, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import InstrumentedAttribute, Session


def insert_ignoring_conflicts(
    session: Session, model: type, rows: Sequence[dict[str, Any]], key: InstrumentedAttribute
) -> list[Any]:
    """Insert the rows whose unique ``key`` is not taken yet, in one statement; their keys come back."""
    if not rows:
        return []
    statement = _statement(session.get_bind().dialect.name, cast(Table, model.__table__), key.key)  # type: ignore[attr-defined]
    # one statement for all the rows (SQLAlchemy's "insertmanyvalues"), built once per table and key
    return list(session.connection().execute(statement, list(rows)).scalars())


@cache
def _statement(dialect: str, table: Table, key: str) -> Insert:
    if dialect == 'postgresql':
        insert: Any = postgresql.insert
    elif dialect == 'sqlite':
        insert = sqlite.insert
    else:
        raise NotImplementedError(f'ON CONFLICT DO NOTHING is not written for {dialect}')
    return insert(table).on_conflict_do_nothing(index_elements=[key]).returning(table.c[key])
