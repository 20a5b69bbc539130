"""The workers' shared loop: a failed round is logged and the loop goes on; busy rounds run back to back."""

from __future__ import annotations

import logging
import threading

import pytest
from sqlalchemy.exc import OperationalError

from crm.services.periodic import PeriodicWorker


class Flaky(PeriodicWorker):
    """Fails its first two rounds (the database away, then a bug), then has work twice, then none."""

    def __init__(self, interval: float) -> None:
        super().__init__(name='flaky', interval=interval)
        self.rounds = 0
        self.done = threading.Event()

    def run_once(self) -> int:
        self.rounds += 1
        if self.rounds == 1:
            raise OperationalError('SELECT 1', {}, Exception('connection refused'))
        if self.rounds == 2:
            raise ValueError('a bad batch')
        if self.rounds >= 5:
            self.done.set()
        return 1 if self.rounds in (3, 4) else 0


def test_a_failed_round_is_logged_and_the_loop_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    worker = Flaky(interval=0.01)
    with caplog.at_level(logging.WARNING, logger='crm.services.periodic'):
        worker.start()
        worker.start()  # a second start is no second thread
        assert worker.done.wait(5)
        worker.stop()
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert ('WARNING', 'flaky: database unavailable: connection refused') in messages
    assert ('ERROR', 'flaky: round failed') in messages
    assert [t.name for t in threading.enumerate()].count('crm-flaky') == 0


def test_stop_ends_the_wait_at_once() -> None:
    worker = Flaky(interval=60)
    worker.rounds = 10  # nothing to do: the loop waits a minute between rounds
    worker.start()
    assert worker.done.wait(5)
    stopping = threading.Thread(target=worker.stop)
    stopping.start()
    stopping.join(2)
    assert not stopping.is_alive()
    worker.start()  # started again after a stop
    worker.stop()
