"""A built-in stand-in for the lender's loan system, so that a sale is confirmed with `make run` alone.

It speaks the loan system's side of the contract: it hears ``product.sale.requested``
``{"sale_id","loan_number","product_code","price"}`` on crm.commands and, after ``delay_s`` seconds,
answers on crm.events ``product.sale.confirmed`` ``{"sale_id","reason": null}`` — or
``product.sale.rejected`` ``{"sale_id","reason"}`` when the loan is one it holds as closed (``close``),
its own rule. Like a real loan system it decides a sale once: a command sent again for the same
``sale_id`` gets the same answer again (the CRM drops the repeat).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from crm.integrations.bus import EventBus

log = logging.getLogger(__name__)

REQUESTED = 'product.sale.requested'
CLOSED_REASON = 'Займ закрыт в учётной системе'
KEPT = 10_000  # decisions remembered (the newest): enough for any repeat the CRM's sweeper sends

Scheduler = Callable[[float, Callable[[], None]], None]  # run the callable after so many seconds


def _timer(delay_s: float, action: Callable[[], None]) -> None:
    if delay_s <= 0:
        action()
        return
    timer = threading.Timer(delay_s, action)
    timer.daemon = True
    timer.start()


class LoanSystemSimulator:
    def __init__(self, bus: EventBus, *, delay_s: float = 2.0, schedule: Scheduler = _timer) -> None:
        self._bus = bus
        self.delay_s = delay_s
        self._schedule = schedule  # tests run the answers at once, or when they choose
        self._closed: set[str] = set()
        self._decided: dict[str, tuple[str, str | None]] = {}  # sale id -> (event type, reason)
        self._lock = threading.Lock()

    def attach(self) -> None:
        self._bus.subscribe_commands(self.on_command)

    def close(self, loan_number: str) -> None:
        """From now on the loan is closed here: sales on it are rejected."""
        with self._lock:
            self._closed.add(loan_number)

    def reopen(self, loan_number: str) -> None:
        with self._lock:
            self._closed.discard(loan_number)

    def on_command(self, command: str, body: dict[str, Any]) -> None:
        """A sale to decide (other commands are not for the loan system)."""
        if command != REQUESTED:
            return
        sale_id = str(body.get('sale_id') or '')
        if not sale_id:
            log.warning('loan system simulator: a sale request without sale_id ignored')
            return
        with self._lock:
            decision = self._decided.get(sale_id)
            if decision is None:
                decision = self._decide(str(body.get('loan_number') or ''))
                self._decided[sale_id] = decision
                if len(self._decided) > KEPT:
                    del self._decided[next(iter(self._decided))]
        event_type, reason = decision
        self._schedule(self.delay_s, lambda: self._answer(event_type, sale_id, reason))

    def _decide(self, loan_number: str) -> tuple[str, str | None]:
        if loan_number in self._closed:
            return 'product.sale.rejected', CLOSED_REASON
        return 'product.sale.confirmed', None

    def _answer(self, event_type: str, sale_id: str, reason: str | None) -> None:
        try:
            self._bus.publish_event(event_type, {'sale_id': sale_id, 'reason': reason})
        except Exception:  # the CRM's sweeper sends the command again; it is answered then
            log.warning('loan system simulator: answer for %s not sent', sale_id, exc_info=True)
