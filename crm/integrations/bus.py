"""The event bus port and its in-process adapter.

Three flows cross the bus (contracts in SPEC):
- events in: the durable topic exchange ``crm.events`` (PBX, chat, SMS gateway) -> the CRM;
- commands out: the durable topic exchange ``crm.commands`` (the CRM -> the PBX);
- UI notifications: the fanout exchange ``crm.ui``, which every app process hears, so a screen pop
  reaches the operator's tabs whichever process holds them.

``EventHandler`` gets a batch of deliveries (whatever arrived together, up to the prefetch) and
returns, for each, None (its effect is committed) or the reason it can never be processed (the
adapter dead-letters it with that reason). It returns only after the batch's transaction committed;
the adapter acknowledges then. Raising means "nothing of this batch is done, try again later".
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)

EVENTS_EXCHANGE = 'crm.events'
COMMANDS_EXCHANGE = 'crm.commands'
UI_EXCHANGE = 'crm.ui'
EVENTS_QUEUE = 'crm.events.crm'
DEAD_LETTER_QUEUE = 'crm.events.dead'
EVENT_KEYS = ('telephony.#', 'chat.#', 'email.#', 'sms.#', 'loan.#', 'product.#')


@dataclass(frozen=True)
class Delivery:
    routing_key: str
    body: bytes


EventHandler = Callable[[Sequence[Delivery]], list[str | None]]
UiHandler = Callable[[dict[str, Any]], None]
CommandHandler = Callable[[str, dict[str, Any]], None]


class EventBus(Protocol):
    def start(self, on_event: EventHandler, on_ui: UiHandler) -> None:
        """Declare what is needed and start consuming events and UI notifications."""

    def stop(self) -> None: ...

    def publish_event(self, routing_key: str, body: dict[str, Any]) -> None:
        """Put an event on crm.events (the PBX simulator and tests speak like the PBX)."""

    def publish_command(self, routing_key: str, body: dict[str, Any]) -> None:
        """Send a command to the PBX on crm.commands."""

    def publish_ui(self, body: dict[str, Any]) -> None:
        """Tell every app process (this one included) about something to show."""

    def subscribe_commands(self, handler: CommandHandler) -> None:
        """Hear the commands too (the built-in PBX simulator does)."""

    def healthy(self) -> bool:
        """Whether the bus can carry messages now (``/healthz``); cheap, no I/O."""


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, default=str).encode()


@dataclass
class DeadLetter:
    routing_key: str
    body: bytes
    reason: str


@dataclass
class InProcessBus:
    """The embedded default: one process, a worker thread for events, nothing kept across restarts.

    Events are handled one at a time on the worker thread, like a consumer with prefetch 1; a
    failing handler is retried after a pause, an invalid body lands in ``dead_letters``.
    """

    retry_delay_s: float = 1.0
    dead_letters: list[DeadLetter] = field(default_factory=list)
    commands: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _queue: queue.Queue[Delivery | threading.Event | None] = field(default_factory=queue.Queue)
    _on_event: EventHandler | None = None
    _on_ui: UiHandler | None = None
    _command_handlers: list[CommandHandler] = field(default_factory=list)
    _thread: threading.Thread | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)

    def start(self, on_event: EventHandler, on_ui: UiHandler) -> None:
        self._on_event, self._on_ui = on_event, on_ui
        self._stopping.clear()
        self._thread = threading.Thread(target=self._work, name='crm-events', daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def publish_event(self, routing_key: str, body: dict[str, Any]) -> None:
        self._queue.put(Delivery(routing_key, encode(body)))

    def publish_raw_event(self, routing_key: str, body: bytes) -> None:
        self._queue.put(Delivery(routing_key, body))

    def publish_command(self, routing_key: str, body: dict[str, Any]) -> None:
        self.commands.append((routing_key, body))
        for handler in list(self._command_handlers):
            try:
                handler(routing_key, body)
            except Exception:
                log.exception('command handler failed for %s', routing_key)

    def publish_ui(self, body: dict[str, Any]) -> None:
        if self._on_ui is not None:
            self._on_ui(body)

    def subscribe_commands(self, handler: CommandHandler) -> None:
        self._command_handlers.append(handler)

    def healthy(self) -> bool:
        """Always: it lives in this process."""
        return True

    def drain(self, timeout: float = 5.0) -> None:
        """Wait until every event published so far is handled (for tests and the simulator)."""
        done = threading.Event()
        self._queue.put(done)
        if not done.wait(timeout):
            raise TimeoutError('events not handled in time')

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None or self._stopping.is_set():
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            self._deliver(item)

    def _deliver(self, delivery: Delivery) -> None:
        assert self._on_event is not None
        while not self._stopping.is_set():
            try:
                (reason,) = self._on_event([delivery])
            except Exception:
                log.exception('event %s failed; retrying in %.1f s', delivery.routing_key, self.retry_delay_s)
                self._stopping.wait(self.retry_delay_s)
                continue
            if reason is not None:
                log.warning('dead-lettered %s: %s', delivery.routing_key, reason)
                self.dead_letters.append(DeadLetter(delivery.routing_key, delivery.body, reason))
            return


class RecordingBus(InProcessBus):
    """The in-process bus that remembers the UI notifications instead of showing them (for tests).

    ``ui`` holds every notification in its wire form, a batch unpacked; ``messages`` counts publishes.
    Commands are remembered by ``InProcessBus.commands`` already.
    """

    def __init__(self) -> None:
        super().__init__()
        self.ui: list[dict[str, Any]] = []
        self.messages = 0

    def publish_ui(self, body: dict[str, Any]) -> None:
        self.ui.extend(body['items'] if body['kind'] == 'batch' else [body])
        self.messages += 1
