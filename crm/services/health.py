"""Whether this process can serve: the database answers and the bus is connected (``/healthz``).

HAProxy asks every process every few seconds and takes one that fails out of the rotation, so the check
is cheap and bounded: one ``SELECT 1`` under a short statement timeout, and the bus's own flag (no I/O).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from crm.integrations.bus import EventBus

log = logging.getLogger(__name__)

DATABASE_TIMEOUT_MS = 2000


@dataclass(frozen=True)
class Health:
    database: bool
    bus: bool
    process: str  # CRM_INSTANCE, or the process id: which process of the cluster answered

    @property
    def ok(self) -> bool:
        return self.database and self.bus


class HealthService:
    def __init__(self, sessions: sessionmaker[Session], bus: EventBus, *, instance: str = '') -> None:
        self._sessions = sessions
        self._bus = bus
        self.process = instance or str(os.getpid())
        # at most one database check at a time: when one hangs (a connect to a silent host), the next
        # ones fail at once instead of piling up threads behind it
        self._checking = threading.Lock()

    def check(self) -> Health:
        return Health(database=self.database(), bus=self.bus(), process=self.process)

    def bus(self) -> bool:
        try:
            return self._bus.healthy()
        except Exception:  # a health check answers, whatever the adapter does
            log.warning('bus health check failed', exc_info=True)
            return False

    def database(self) -> bool:
        if not self._checking.acquire(blocking=False):
            return False
        try:
            with self._sessions() as session:
                if session.get_bind().dialect.name == 'postgresql':
                    session.execute(text(f'SET LOCAL statement_timeout = {DATABASE_TIMEOUT_MS}'))
                session.execute(text('SELECT 1'))
            return True
        except Exception as error:  # unreachable, timed out, refused: all mean "not healthy"
            log.warning('database health check failed: %s', type(error).__name__)
            return False
        finally:
            self._checking.release()
