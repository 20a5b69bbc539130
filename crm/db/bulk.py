"""Many rows into one table at once, with their new ids: what a mailing's batch and the outbox need.

On PostgreSQL the ids are drawn from the table's sequence first and the rows go as one array per column
through ``unnest``: one statement whose text is the same for any number of rows, so the driver parses
it once (SQLAlchemy's multi-row VALUES make a new, long text per batch, which psycopg parses every time
— most of a mailing's CPU before this). On SQLite SQLAlchemy's "insertmanyvalues" with RETURNING.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Column, ColumnElement, Connection, Integer, Table, any_, bindparam, insert
from sqlalchemy.dialects import postgresql


def insert_many(connection: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert the rows (every row with the same keys); their new ``id``s, in the rows' order."""
    if not rows:
        return []
    if connection.dialect.name != 'postgresql':
        # SQLite: multi-row INSERT … RETURNING. The rows go in in their order under the write lock, so
        # their new rowids ascend in that order (an ordered RETURNING would insert them one at a time).
        statement = insert(table).returning(table.c.id)
        return sorted(connection.execute(statement, list(rows)).scalars())
    columns = [column for column in table.columns if column.name in rows[0] and column.name != 'id']
    ids = list(
        connection.exec_driver_sql(
            "SELECT nextval(pg_get_serial_sequence(%(table)s, 'id')) FROM generate_series(1, %(n)s)",
            {'table': table.name, 'n': len(rows)},
        ).scalars()
    )
    arrays: dict[str, list[Any]] = {'id': ids}
    for column in columns:
        process = _processor(connection, column)
        values = [row[column.name] for row in rows]
        arrays[column.name] = [process(value) for value in values] if process else values
    connection.exec_driver_sql(_statement(connection, table, tuple(c.name for c in columns)), arrays)
    return ids


def _processor(connection: Connection, column: Column[Any]) -> Callable[[Any], Any] | None:
    """The column type's own conversion (money to kopecks, moments to UTC) that a bound value gets."""
    return column.type._cached_bind_processor(connection.dialect)


_STATEMENTS: dict[tuple[str, tuple[str, ...]], str] = {}


def _statement(connection: Connection, table: Table, names: tuple[str, ...]) -> str:
    key = (table.name, names)
    if key not in _STATEMENTS:
        dialect = connection.dialect
        casts = [f'%(id)s::{table.c.id.type.compile(dialect=dialect)}[]']
        casts += [f'%({name})s::{table.c[name].type.compile(dialect=dialect)}[]' for name in names]
        listed = ', '.join(['id', *names])
        _STATEMENTS[key] = f'INSERT INTO {table.name} ({listed}) SELECT * FROM unnest({", ".join(casts)})'
    return _STATEMENTS[key]


def any_of(column: ColumnElement[Any], postgres: bool) -> ColumnElement[bool]:
    """``column = ANY(:ids)`` on PostgreSQL (one array parameter: the same short text for any number of
    ids), ``column IN (:ids…)`` elsewhere; bind the list as ``ids``."""
    if postgres:
        return column == any_(bindparam('ids', type_=postgresql.ARRAY(Integer)))
    return column.in_(bindparam('ids', expanding=True))
