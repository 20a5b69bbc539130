"""What ``GET /metrics`` reports: this process's counters and gauges, each read only when asked.

The statement count is registered here; a page that owns a figure registers a reader for it (the
dashboard hub its viewers and ticks, the pages the connected tabs). Registering a name again replaces
its reader (pages are registered once per process, again in tests).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Literal

from crm.db.statement_count import ORIGINS, STATEMENTS

Kind = Literal['counter', 'gauge']


@dataclass(frozen=True)
class Sample:
    name: str
    kind: Kind
    help: str
    value: float


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._readers: dict[str, tuple[Kind, str, Callable[[], float]]] = {}
        self.counter(
            'crm_db_statements_total',
            'SQL statements this process sent to the database',
            lambda: STATEMENTS.value,
        )
        for origin in ORIGINS:
            self.counter(
                f'crm_db_statements_{origin}_total',
                f'SQL statements this process sent for {origin} (crm.db.statement_count)',
                partial(STATEMENTS.of, origin),
            )

    def counter(self, name: str, help: str, read: Callable[[], float]) -> None:
        """A figure that only grows (Prometheus: a name ending in ``_total``)."""
        self._add(name, 'counter', help, read)

    def gauge(self, name: str, help: str, read: Callable[[], float]) -> None:
        self._add(name, 'gauge', help, read)

    def _add(self, name: str, kind: Kind, help: str, read: Callable[[], float]) -> None:
        with self._lock:
            self._readers[name] = (kind, help, read)

    def samples(self) -> list[Sample]:
        """Every figure now, in name order."""
        with self._lock:
            readers = sorted(self._readers.items())
        return [Sample(name, kind, help, float(read())) for name, (kind, help, read) in readers]
