"""INSERT … ON CONFLICT DO NOTHING for the two databases this app runs on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import InstrumentedAttribute, Session

_INSERTS = {'postgresql': postgresql.insert, 'sqlite': sqlite.insert}


def insert_ignoring_conflicts(
    session: Session, model: type, rows: Sequence[dict[str, Any]], key: InstrumentedAttribute
) -> list[Any]:
    """Insert the rows whose unique ``key`` is not taken yet, in one statement; their keys come back."""
    if not rows:
        return []
    dialect = session.get_bind().dialect.name
    try:
        insert = _INSERTS[dialect]
    except KeyError:
        raise NotImplementedError(f'ON CONFLICT DO NOTHING is not written for {dialect}') from None
    statement = (
        insert(model).values(list(rows)).on_conflict_do_nothing(index_elements=[key.key]).returning(key)
    )
    return list(session.scalars(statement))
