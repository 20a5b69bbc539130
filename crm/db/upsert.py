"""INSERT … ON CONFLICT DO NOTHING for the two databases this app runs on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import InstrumentedAttribute, Session


def insert_ignoring_conflicts(
    session: Session, model: type, rows: Sequence[dict[str, Any]], key: InstrumentedAttribute
) -> list[Any]:
    """Insert the rows whose unique ``key`` is not taken yet, in one statement; their keys come back."""
    if not rows:
        return []
    dialect = session.get_bind().dialect.name
    values, target = list(rows), [key.key]
    statement: postgresql.Insert | sqlite.Insert
    if dialect == 'postgresql':
        statement = postgresql.insert(model).values(values).on_conflict_do_nothing(index_elements=target)
    elif dialect == 'sqlite':
        statement = sqlite.insert(model).values(values).on_conflict_do_nothing(index_elements=target)
    else:
        raise NotImplementedError(f'ON CONFLICT DO NOTHING is not written for {dialect}')
    return list(session.scalars(statement.returning(key)))
