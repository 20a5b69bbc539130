"""The RabbitMQ adapter of the EventBus port (pika).

pika connections are not thread-safe, so the bus owns two of them:
- the consumer connection, opened and used only by one daemon thread: it consumes the events queue
  (manual ack, prefetch, batches), this process's UI queue and, when asked, a commands queue;
- the publisher connection, used by any thread under a lock, with publisher confirms, so a publish
  that returns is on the broker.
The only call another thread makes on the consumer connection is ``add_callback_threadsafe`` (to
wake it up). The consumer thread also keeps the idle publisher connection's heartbeats going, under
the same lock.

Delivery is at least once: a batch is acknowledged only after the handler returned, so a crash or a
lost connection before that brings the messages again (handlers are idempotent by contract).
Disconnects are logged at WARNING: a broker restart is an operational event, not a bug.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pika
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pika.exceptions import AMQPChannelError, AMQPConnectionError, NackError
from pika.spec import Basic, BasicProperties

from crm.integrations.bus import (
    COMMANDS_EXCHANGE,
    DEAD_LETTER_QUEUE,
    EVENT_KEYS,
    EVENTS_EXCHANGE,
    EVENTS_QUEUE,
    UI_EXCHANGE,
    CommandHandler,
    Delivery,
    EventHandler,
    UiHandler,
    encode,
)

log = logging.getLogger(__name__)

# What "the broker or the link to it went away" looks like; anything else is a bug.
BROKER_ERRORS: tuple[type[BaseException], ...] = (AMQPConnectionError, AMQPChannelError, OSError)

JSON = 'application/json'
PERSISTENT = pika.DeliveryMode.Persistent
POLL_S = 0.2  # how long the consumer blocks in pika between checks of the stop flag
KEEPALIVE_S = 5.0  # how often the consumer thread services the idle publisher connection
START_TIMEOUT_S = 30.0


class BusUnavailable(RuntimeError):
    """RabbitMQ cannot be reached (at start, or for a publish after the retries)."""


@dataclass(frozen=True)
class QueueNames:
    """Exchange and queue names; tests use a prefixed set so they do not touch a running app's."""

    events_exchange: str = EVENTS_EXCHANGE
    commands_exchange: str = COMMANDS_EXCHANGE
    ui_exchange: str = UI_EXCHANGE
    events_queue: str = EVENTS_QUEUE
    dead_letter_queue: str = DEAD_LETTER_QUEUE
    event_keys: tuple[str, ...] = EVENT_KEYS

    @classmethod
    def prefixed(cls, prefix: str) -> QueueNames:
        return cls(
            events_exchange=prefix + EVENTS_EXCHANGE,
            commands_exchange=prefix + COMMANDS_EXCHANGE,
            ui_exchange=prefix + UI_EXCHANGE,
            events_queue=prefix + EVENTS_QUEUE,
            dead_letter_queue=prefix + DEAD_LETTER_QUEUE,
        )


class _ConsumerCancelled(Exception):
    """The broker cancelled one of our consumers (e.g. its queue was deleted): reconnect and redeclare."""


def redact(url: str) -> str:
    """The URL without its password, fit for a log line or an error message."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f'{parts.username}:***@{parts.hostname}' + (f':{parts.port}' if parts.port else '')
    return urlunsplit(parts._replace(netloc=netloc))


def describe(error: BaseException) -> str:
    """One line about an error; pika's often have an empty str() and the cause in args."""
    text = str(error) or ', '.join(repr(arg) for arg in error.args)
    return f'{type(error).__name__}: {text}' if text else type(error).__name__


def check_reachable(url: str) -> None:
    """Connect once and leave: BusUnavailable with one line naming CRM_AMQP_URL if that fails."""
    try:
        parameters = pika.URLParameters(url)
        parameters.socket_timeout = parameters.blocked_connection_timeout = 5
        _close_quietly(BlockingConnection(parameters))
    except (AMQPConnectionError, AMQPChannelError, OSError, ValueError) as error:
        raise BusUnavailable(f'CRM_AMQP_URL={redact(url)}: cannot use RabbitMQ ({describe(error)})') from None


def _close_quietly(connection: BlockingConnection | None) -> None:
    if connection is None:
        return
    try:
        if connection.is_open:
            connection.close()
    except Exception as error:  # already broken: nothing to close politely
        log.debug('closing a RabbitMQ connection: %s', describe(error))


_Pending = tuple[Basic.Deliver, BasicProperties, bytes]


class _DemotePikaErrors(logging.Filter):
    """pika logs each lost connection at ERROR several times over (EOF, connection_lost, unexpected
    close...), from inside its I/O loop. Every such failure also reaches the bus as an exception, which
    it handles and reports once at WARNING; so pika's own records go down to INFO. A broker restart must
    not read like a bug (and the NiceGUI test fixtures fail a test on any ERROR record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.ERROR:
            return True
        record.levelno, record.levelname = logging.INFO, 'INFO'
        return logging.getLogger(record.name).isEnabledFor(logging.INFO)


_PIKA_CONNECTION_LOGGERS = (
    'pika.connection',
    'pika.adapters.base_connection',
    'pika.adapters.blocking_connection',
    'pika.adapters.utils.io_services_utils',
    'pika.adapters.utils.connection_workflow',
    'pika.adapters.utils.selector_ioloop_adapter',
)
_demote_filter = _DemotePikaErrors()


def _demote_pika_connection_errors() -> None:
    for name in _PIKA_CONNECTION_LOGGERS:
        logger = logging.getLogger(name)
        if _demote_filter not in logger.filters:
            logger.addFilter(_demote_filter)


class RabbitBus:
    """The EventBus on RabbitMQ: durable events in, commands out, a fanout for UI notifications."""

    def __init__(
        self,
        url: str,
        *,
        prefetch: int = 200,
        max_batch: int = 200,
        reconnect_max_s: float = 10.0,
        consume_events: bool = True,
        names: QueueNames | None = None,
        retry_delay_s: float = 0.5,
        publish_retry_s: float = 5.0,
    ) -> None:
        _demote_pika_connection_errors()
        self.url = url
        self.names = names or QueueNames()
        self._params = pika.URLParameters(url)
        if self._params.blocked_connection_timeout is None:
            # a broker under a resource alarm blocks publishers; fail instead of hanging forever
            self._params.blocked_connection_timeout = 30
        self._prefetch = prefetch
        self._max_batch = max_batch
        self._reconnect_max_s = reconnect_max_s
        self._consume_events = consume_events
        self._retry_delay_s = retry_delay_s
        self._publish_retry_s = publish_retry_s

        self._on_event: EventHandler | None = None
        self._on_ui: UiHandler | None = None
        self._command_handlers: list[CommandHandler] = []
        self._handlers_lock = threading.Lock()

        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._commands_ready = threading.Event()

        # consumer-thread state; other threads only read self._connection to wake it up
        self._connection: BlockingConnection | None = None
        self._pending: list[_Pending] = []
        self._commands_queue: str | None = None
        self._cancelled = False
        self._failures = 0
        self._last_keepalive = 0.0

        self._origin = f'crm-{uuid.uuid4()}'  # marks this process's UI notifications
        self._publish_lock = threading.Lock()
        self._pub_connection: BlockingConnection | None = None
        self._pub_channel: BlockingChannel | None = None

    # -- the port ---------------------------------------------------------------------------------

    def start(self, on_event: EventHandler, on_ui: UiHandler) -> None:
        """Declare the topology and start consuming; returns once the consumer is connected."""
        if self._thread is not None:
            raise RuntimeError('RabbitBus already started')
        self._on_event, self._on_ui = on_event, on_ui
        self._stopping.clear()
        self._ready.clear()
        self._start_error = None
        try:
            with self._publish_lock:
                self._publisher_channel()  # connects and declares
        except BROKER_ERRORS as error:
            raise self._unreachable(error) from error
        thread = threading.Thread(target=self._run, name='crm-rabbitmq', daemon=True)
        thread.start()
        started = self._ready.wait(START_TIMEOUT_S)
        if not started or self._start_error is not None:
            self._stopping.set()
            thread.join(timeout=5)
            with self._publish_lock:
                self._close_publisher()
            failure = self._start_error or TimeoutError(f'no consumer connection in {START_TIMEOUT_S:.0f} s')
            raise self._unreachable(failure) from failure
        self._thread = thread

    def stop(self) -> None:
        self._stopping.set()
        self._wake()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
            if thread.is_alive():
                log.warning('the RabbitMQ consumer thread did not stop in time (a handler still running?)')
        with self._publish_lock:
            self._close_publisher()

    def publish_event(self, routing_key: str, body: dict[str, Any]) -> None:
        self.publish_raw_event(routing_key, encode(body))

    def publish_raw_event(self, routing_key: str, body: bytes) -> None:
        """Publish any bytes as an event (tests and benchmarks send invalid ones too)."""
        properties = BasicProperties(delivery_mode=PERSISTENT, content_type=JSON)
        self._publish(self.names.events_exchange, routing_key, body, properties)

    def publish_command(self, routing_key: str, body: dict[str, Any]) -> None:
        properties = BasicProperties(delivery_mode=PERSISTENT, content_type=JSON)
        self._publish(self.names.commands_exchange, routing_key, encode(body), properties)

    def publish_ui(self, body: dict[str, Any]) -> None:
        """This process's tabs hear it at once; the fanout carries it to the other processes.

        The copy that comes back through this process's own queue is recognised by its origin and
        dropped: a screen pop does not wait for a broker round trip to reach the tabs next door.
        """
        self._deliver_ui(body)
        properties = BasicProperties(content_type=JSON, app_id=self._origin)
        self._publish(self.names.ui_exchange, '', encode(body), properties)

    def healthy(self) -> bool:
        """Started, and the consumer connection is open (it is None while reconnecting); reads two
        references the consumer thread owns, touches no socket."""
        thread, connection = self._thread, self._connection
        return thread is not None and thread.is_alive() and connection is not None and connection.is_open

    def subscribe_commands(self, handler: CommandHandler) -> None:
        """Hear every command; after start, returns once the consumer has its commands queue."""
        with self._handlers_lock:
            self._command_handlers.append(handler)
        if self._thread is None or self._thread is threading.current_thread():
            return  # set up at start, or at the consumer's next turn
        self._wake()
        if not self._commands_ready.wait(5):
            log.warning('commands subscription pending: the RabbitMQ consumer is not connected')

    # -- helpers for tests, benchmarks and operators -------------------------------------------------

    def purge_events(self) -> int:
        """Drop every ready message of the events queue; returns how many there were."""
        with self._publish_lock:
            return self._with_publisher(
                lambda ch: ch.queue_purge(self.names.events_queue).method.message_count
            )

    def dead_letters(self, limit: int = 100) -> list[tuple[bytes, dict[str, Any]]]:
        """Take up to ``limit`` messages off the dead-letter queue: (body, headers) each."""

        def take(channel: BlockingChannel) -> list[tuple[bytes, dict[str, Any]]]:
            taken: list[tuple[bytes, dict[str, Any]]] = []
            last_tag = None
            while len(taken) < limit:
                method, properties, body = channel.basic_get(self.names.dead_letter_queue)
                if method is None:
                    break
                last_tag = method.delivery_tag
                taken.append((body, dict(properties.headers or {})))
            if last_tag is not None:
                channel.basic_ack(last_tag, multiple=True)
            return taken

        with self._publish_lock:
            return self._with_publisher(take)

    # -- publishing (any thread) ---------------------------------------------------------------------

    def _publish(self, exchange: str, routing_key: str, body: bytes, properties: BasicProperties) -> None:
        with self._publish_lock:
            self._with_publisher(lambda ch: ch.basic_publish(exchange, routing_key, body, properties))

    def _with_publisher(self, action: Callable[[BlockingChannel], Any]) -> Any:
        """Run ``action`` on the publisher channel, reconnecting for a few seconds if the link broke.

        The caller holds the publish lock. A retried publish may duplicate a message whose confirm was
        lost with the connection; consumers are idempotent.
        """
        deadline = time.monotonic() + self._publish_retry_s
        delay = 0.1
        while True:
            try:
                return action(self._publisher_channel())
            except (*BROKER_ERRORS, NackError) as error:
                self._close_publisher()
                if time.monotonic() + delay > deadline:
                    raise BusUnavailable(
                        f'RabbitMQ at {redact(self.url)} did not take the message: {describe(error)}'
                    ) from error
                log.warning('RabbitMQ publisher: %s; reconnecting in %.1f s', describe(error), delay)
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def _publisher_channel(self) -> BlockingChannel:
        if self._pub_channel is not None and self._pub_channel.is_open:
            return self._pub_channel
        self._close_publisher()
        connection = BlockingConnection(self._params)
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            self._declare(channel)
        except BaseException:
            _close_quietly(connection)
            raise
        self._pub_connection, self._pub_channel = connection, channel
        return channel

    def _close_publisher(self) -> None:
        connection, self._pub_connection, self._pub_channel = self._pub_connection, None, None
        _close_quietly(connection)

    def _keep_publisher_alive(self) -> None:
        """Service the idle publisher connection so that heartbeats flow (called by the consumer)."""
        now = time.monotonic()
        if now - self._last_keepalive < KEEPALIVE_S or not self._publish_lock.acquire(blocking=False):
            return
        self._last_keepalive = now
        try:
            if self._pub_connection is not None and self._pub_connection.is_open:
                self._pub_connection.process_data_events(time_limit=0)
        except BROKER_ERRORS as error:
            log.warning('RabbitMQ publisher: %s; it reconnects on the next publish', describe(error))
            self._close_publisher()
        finally:
            self._publish_lock.release()

    # -- topology ------------------------------------------------------------------------------------

    def _declare(self, channel: BlockingChannel) -> None:
        names = self.names
        channel.exchange_declare(names.events_exchange, 'topic', durable=True)
        channel.exchange_declare(names.commands_exchange, 'topic', durable=True)
        channel.exchange_declare(names.ui_exchange, 'fanout', durable=True)
        channel.queue_declare(names.events_queue, durable=True)
        for key in names.event_keys:
            channel.queue_bind(names.events_queue, names.events_exchange, routing_key=key)
        channel.queue_declare(names.dead_letter_queue, durable=True)

    @staticmethod
    def _private_queue(channel: BlockingChannel, exchange: str, routing_key: str | None) -> str:
        """A server-named queue that lives as long as this connection."""
        queue: str = channel.queue_declare('', exclusive=True, auto_delete=True).method.queue
        channel.queue_bind(queue, exchange, routing_key=routing_key)
        return queue

    def _unreachable(self, error: BaseException) -> BusUnavailable:
        return BusUnavailable(f'CRM_AMQP_URL={redact(self.url)}: cannot use RabbitMQ ({describe(error)})')

    # -- the consumer thread -------------------------------------------------------------------------

    def _wake(self) -> None:
        connection = self._connection
        if connection is None:
            return
        try:
            connection.add_callback_threadsafe(lambda: None)
        except Exception as error:  # closing or closed: the loop notices by itself
            log.debug('could not wake the RabbitMQ consumer: %s', describe(error))

    def _run(self) -> None:
        delay = 0.2
        while not self._stopping.is_set():
            connection: BlockingConnection | None = None
            try:
                connection = BlockingConnection(self._params)
                self._serve(connection)
                return  # stopping
            except Exception as error:
                if not self._ready.is_set():  # the first connection: start() reports it
                    self._start_error = error
                    self._ready.set()
                    return
                if self._stopping.is_set():
                    return
                if self._connection is not None:  # it had been consuming: start the backoff over
                    delay = 0.2
                if isinstance(error, (*BROKER_ERRORS, _ConsumerCancelled)):
                    log.warning('RabbitMQ consumer: %s; reconnecting in %.1f s', describe(error), delay)
                else:
                    log.exception('RabbitMQ consumer failed unexpectedly; reconnecting in %.1f s', delay)
            finally:
                self._connection = None
                self._pending.clear()
                self._commands_ready.clear()
                _close_quietly(connection)
            self._stopping.wait(delay)
            delay = min(delay * 2, self._reconnect_max_s)

    def _serve(self, connection: BlockingConnection) -> None:
        """Consume on one connection until stopped; raises when the connection or a channel breaks."""
        channel = connection.channel()
        self._declare(channel)
        dead_channel = connection.channel()
        dead_channel.confirm_delivery()
        channel.basic_qos(prefetch_count=self._prefetch)
        channel.add_on_cancel_callback(self._on_consumer_cancelled)
        self._cancelled = False
        ui_queue = self._private_queue(channel, self.names.ui_exchange, None)
        channel.basic_consume(ui_queue, self._on_ui_message, auto_ack=True)
        if self._consume_events:
            channel.basic_consume(self.names.events_queue, self._on_event_message)
        self._commands_queue = None
        self._subscribe_commands(channel)
        self._connection = connection
        if self._ready.is_set():
            log.warning('RabbitMQ consumer reconnected to %s', redact(self.url))
        self._ready.set()

        while not self._stopping.is_set():
            self._subscribe_commands(channel)
            connection.process_data_events(time_limit=POLL_S)
            while self._pending and not self._stopping.is_set():
                self._drain(connection)
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                self._handle(connection, channel, dead_channel, batch)
            if self._cancelled:
                raise _ConsumerCancelled('the broker cancelled a consumer')
            self._keep_publisher_alive()

    def _subscribe_commands(self, channel: BlockingChannel) -> None:
        if self._commands_queue is not None or not self._command_handlers:
            return
        queue = self._private_queue(channel, self.names.commands_exchange, '#')
        channel.basic_consume(queue, self._on_command_message, auto_ack=True)
        self._commands_queue = queue
        self._commands_ready.set()

    def _drain(self, connection: BlockingConnection) -> None:
        """Take in what has already arrived, without waiting, so that it is handled as one batch."""
        while len(self._pending) < self._max_batch:
            before = len(self._pending)
            connection.process_data_events(time_limit=0)
            if len(self._pending) == before:
                return

    def _handle(
        self,
        connection: BlockingConnection,
        channel: BlockingChannel,
        dead_channel: BlockingChannel,
        batch: list[_Pending],
    ) -> None:
        assert self._on_event is not None
        deliveries = [Delivery(method.routing_key, body) for method, _, body in batch]
        last_tag = batch[-1][0].delivery_tag
        try:
            results = self._on_event(deliveries)
            if len(results) != len(deliveries):
                raise ValueError(f'the event handler returned {len(results)} results for {len(deliveries)}')
        except Exception:
            self._failures += 1
            delay = min(self._retry_delay_s * 2 ** (self._failures - 1), self._reconnect_max_s)
            log.warning(
                'event handler failed on a batch of %d (first %s); redelivering in %.1f s',
                len(batch),
                deliveries[0].routing_key,
                delay,
                exc_info=True,
            )
            if self._pause(connection, delay):
                return  # stopping: closing the connection puts the batch back
            channel.basic_nack(last_tag, multiple=True, requeue=True)
            return
        self._failures = 0
        for (method, properties, body), reason in zip(batch, results, strict=True):
            if reason is None:
                continue
            log.warning('dead-lettered %s: %s', method.routing_key, reason)
            headers = {'x-dead-reason': reason, 'x-original-routing-key': method.routing_key}
            dead_properties = BasicProperties(
                delivery_mode=PERSISTENT, content_type=properties.content_type, headers=headers
            )
            # confirmed before the ack below, so a crash in between duplicates rather than loses
            dead_channel.basic_publish('', self.names.dead_letter_queue, body, dead_properties)
        channel.basic_ack(last_tag, multiple=True)

    def _pause(self, connection: BlockingConnection, seconds: float) -> bool:
        """Wait while keeping the connection serviced; True if asked to stop meanwhile."""
        deadline = time.monotonic() + seconds
        while not self._stopping.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            connection.process_data_events(time_limit=min(POLL_S, remaining))
        return True

    # pika callbacks: they run inside process_data_events on the consumer thread

    def _on_event_message(
        self, _channel: BlockingChannel, method: Basic.Deliver, properties: BasicProperties, body: bytes
    ) -> None:
        self._pending.append((method, properties, body))

    def _on_ui_message(
        self, _channel: BlockingChannel, _method: Basic.Deliver, properties: BasicProperties, body: bytes
    ) -> None:
        if properties.app_id == self._origin:  # delivered here already, when it was published
            return
        message = _json_object(body, 'UI notification')
        if message is not None:
            self._deliver_ui(message)

    def _deliver_ui(self, message: dict[str, Any]) -> None:
        if self._on_ui is None:
            return
        try:
            self._on_ui(message)
        except Exception:
            log.exception('UI notification handler failed')

    def _on_command_message(
        self, _channel: BlockingChannel, method: Basic.Deliver, _properties: BasicProperties, body: bytes
    ) -> None:
        message = _json_object(body, f'command {method.routing_key}')
        if message is None:
            return
        with self._handlers_lock:
            handlers = list(self._command_handlers)
        for handler in handlers:
            try:
                handler(method.routing_key, message)
            except Exception:
                log.exception('command handler failed for %s', method.routing_key)

    def _on_consumer_cancelled(self, _frame: Any) -> None:
        self._cancelled = True


def _json_object(body: bytes, what: str) -> dict[str, Any] | None:
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError too; nested too deep
        log.warning('dropped a %s of %d bytes that is not JSON', what, len(body))  # no personal data
        return None
    if not isinstance(message, dict):
        log.warning('dropped a %s of %d bytes that is not a JSON object', what, len(body))
        return None
    return message
