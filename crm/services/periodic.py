"""The background loop every worker shares: a daemon thread that calls ``run_once`` again and again.

While a round finds work (returns more than 0) the next one starts at once; an idle round, or one that
failed, waits ``interval`` seconds. A database that is away for a moment is a warning, any other error
is logged with its traceback; either way the loop goes on — a worker never dies of one bad batch.
``stop()`` ends the wait at once and joins the thread; ``start()`` / ``stop()`` may be called again.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy.exc import OperationalError

log = logging.getLogger(__name__)


class PeriodicWorker:
    """Subclasses do one round of work in ``run_once`` (also what tests call) and pass ``name`` (the
    thread's and the log's) and ``interval`` to ``__init__``."""

    def __init__(self, *, name: str, interval: float) -> None:
        self.name = name
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        """One round; how much it did (0: nothing to do, wait before the next)."""
        raise NotImplementedError

    def _round(self) -> int:
        """What the thread runs: ``run_once`` (a long round may override this to watch ``_stop``)."""
        return self.run_once()

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=f'crm-{self.name}', daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self._round() > 0
            except OperationalError as error:  # the database away for a moment: try again later
                log.warning('%s: database unavailable: %s', self.name, error.orig)
                busy = False
            except Exception:
                log.exception('%s: round failed', self.name)
                busy = False
            if not busy:
                self._stop.wait(self._interval)
