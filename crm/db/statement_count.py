"""A process-wide count of the SQL statements this process sends, for ``GET /metrics``.

Every engine ``make_engine`` builds adds to it (``before_cursor_execute``: one per statement, an
``executemany`` counts once); nothing else is recorded, so it costs a lock and an addition.
"""

from __future__ import annotations

import threading

from sqlalchemy import Engine, event


class StatementCounter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    def add(self, *_: object) -> None:
        """The listener: ``before_cursor_execute``'s arguments are not looked at."""
        with self._lock:
            self._count += 1

    @property
    def value(self) -> int:
        return self._count


STATEMENTS = StatementCounter()


def count_statements(engine: Engine) -> None:
    """Count every statement ``engine`` executes in ``STATEMENTS``."""
    event.listen(engine, 'before_cursor_execute', STATEMENTS.add)
