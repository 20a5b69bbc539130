"""For runs of the suite under libfaketime (``.ci/run``): put this directory on ``PYTHONPATH``.

    FAKETIME_DONT_FAKE_MONOTONIC=1 PYTHONPATH=tests/faketime faketime -f '+30d' .venv/bin/python -m pytest

Python imports ``sitecustomize`` at start-up, so this reaches every Python process of the run (pytest,
the end-to-end app it starts). The wall clock is moved; the monotonic clock must stay real, or every
wait with a timeout (``threading.Event.wait``, ``queue.get``, lock acquires: ``sem_clockwait``, which
libfaketime 0.9.10 does not intercept) waits for the whole offset. But with the monotonic clock left
alone, libfaketime 0.9.10 still shifts the absolute deadline of ``clock_nanosleep(CLOCK_MONOTONIC,
TIMER_ABSTIME)`` by the offset, and that is what ``time.sleep`` calls: it fails with EINVAL. So here
``time.sleep`` waits on an event instead, which keeps to the real monotonic clock.
"""

from __future__ import annotations

import os
import threading
import time

FAKED = 'libfaketime' in os.environ.get('LD_PRELOAD', '')
if FAKED and os.environ.get('FAKETIME_DONT_FAKE_MONOTONIC') == '1':

    def _sleep(seconds: float) -> None:
        if seconds < 0:
            raise ValueError('sleep length must be non-negative')
        threading.Event().wait(seconds)

    time.sleep = _sleep
