"""A process-wide count of the SQL statements this process sends, for ``GET /metrics``.

Every engine ``make_engine`` builds adds to it (``before_cursor_execute``: one per statement, an
``executemany`` counts once); nothing else is recorded, so it costs a lock and an addition.

Each statement is also counted by where it came from, told by the thread that sent it: the inbound
events' consumer (``events``), the screens' service calls off the loop (``pages``), the readers of
screen pops' cards (``pops``), the background workers (``workers``). "Does a dashboard's database work
grow with its viewers?" is answered by ``pages`` and ``workers`` alone, apart from the events' churn.
"""

from __future__ import annotations

import threading

from sqlalchemy import Engine, event

ORIGINS = ('events', 'pages', 'pops', 'workers')
_BY_THREAD_PREFIX = (
    ('crm-rabbitmq', 'events'),
    ('crm-events', 'events'),  # the in-process bus's consumer
    ('crm-live-read', 'pops'),
    ('crm-', 'workers'),  # outbox, mailings, promise checker, operator-state time-outs …
)


def origin_of(thread_name: str) -> str:
    """Which origin a statement sent by the thread ``thread_name`` counts for; the rest — the event
    loop's worker threads (NiceGUI's ``run.io_bound``), the loop itself, HTTP handlers — is ``pages``."""
    for prefix, origin in _BY_THREAD_PREFIX:
        if thread_name.startswith(prefix):
            return origin
    return 'pages'


class StatementCounter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0
        self._by_origin = dict.fromkeys(ORIGINS, 0)

    def add(self, *_: object) -> None:
        """The listener: ``before_cursor_execute``'s arguments are not looked at."""
        origin = origin_of(threading.current_thread().name)
        with self._lock:
            self._count += 1
            self._by_origin[origin] += 1

    @property
    def value(self) -> int:
        return self._count

    def of(self, origin: str) -> int:
        return self._by_origin[origin]


STATEMENTS = StatementCounter()


def count_statements(engine: Engine) -> None:
    """Count every statement ``engine`` executes in ``STATEMENTS``."""
    event.listen(engine, 'before_cursor_execute', STATEMENTS.add)
