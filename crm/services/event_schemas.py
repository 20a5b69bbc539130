"""The events other systems send (SPEC «Integration contracts»), validated the same way for AMQP and HTTP."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from crm.domain.links import web_url

Id = Annotated[str, Field(min_length=1, max_length=128)]
# Events are about now: anything outside these years is a broken clock or a probe, and would not render.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def _moment(value: datetime) -> datetime:
    """Times without a zone are taken as UTC; everything is kept in UTC, within EARLIEST..LATEST."""
    try:
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+05:00 is before the first moment Python can hold in UTC
        raise ValueError('must be between 2000 and 2100') from None
    if not EARLIEST <= value < LATEST:
        raise ValueError('must be between 2000 and 2100')
    return value


def _web_url(value: str | None) -> str | None:
    if value is not None and web_url(value) is None:
        raise ValueError('must be an absolute http(s) URL')
    return value


Moment = Annotated[datetime, AfterValidator(_moment)]
WebUrl = Annotated[str | None, Field(default=None, max_length=500), AfterValidator(_web_url)]


class _Event(BaseModel):
    model_config = ConfigDict(extra='ignore', populate_by_name=True, str_strip_whitespace=True)

    @field_validator('*', mode='after')
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        """A NUL character is no part of any text, and PostgreSQL refuses to store one."""
        if isinstance(value, str) and '\x00' in value:
            raise ValueError('must not contain NUL characters')
        return value


class CallIncoming(_Event):
    call_id: Id
    from_: str = Field(alias='from', min_length=1, max_length=32)
    to_extension: str = Field(min_length=1, max_length=16)
    at: Moment


class CallAnswered(_Event):
    call_id: Id
    at: Moment


class CallEnded(_Event):
    call_id: Id
    at: Moment
    duration_s: int | None = Field(default=None, ge=0, le=86_400)
    recording_url: WebUrl = None


class ChatMessage(_Event):
    chat_id: Id
    from_: str = Field(alias='from', min_length=1, max_length=64)
    text: str = Field(max_length=10_000)
    at: Moment


class SmsStatus(_Event):
    message_id: Id
    status: Literal['delivered', 'failed']
    at: Moment


class PaymentReceived(_Event):
    payment_id: Id
    loan_number: str = Field(min_length=1, max_length=32)
    amount: Decimal = Field(gt=0, max_digits=14, decimal_places=2)
    at: Moment


def _address(value: str) -> str:
    """A bare address (local@domain.tld): no display name, no spaces, one ``@``."""
    local, at, domain = value.rpartition('@')
    if not at or not local or '.' not in domain.strip('.') or _NOT_IN_ADDRESS.search(value):
        raise ValueError('must be an e-mail address')
    return value


_NOT_IN_ADDRESS = re.compile(r'[\s<>(),;:"\[\]]|@.*@')
Address = Annotated[str, Field(min_length=3, max_length=254), AfterValidator(_address)]


class EmailReceived(_Event):
    """An e-mail to the lender's mailbox, as the mail system hands it over."""

    message_id: str = Field(min_length=1, max_length=256)  # the Message-ID, or the mail system's id
    from_: Address = Field(alias='from')
    subject: str = Field(default='', max_length=500)
    text: str = Field(max_length=20_000)
    at: Moment


class SaleDecided(_Event):
    """The loan system's answer to ``product.sale.requested``: confirmed, or rejected with a reason."""

    sale_id: str = Field(min_length=1, max_length=36)
    reason: str | None = Field(default=None, max_length=500)


class QueueStatus(_Event):
    """The PBX's queue now and then: how many callers wait and the longest wait (the dashboard's totals)."""

    queue: str = Field(min_length=1, max_length=64)
    waiting: int = Field(ge=0, le=100_000)
    longest_wait_s: int = Field(ge=0, le=86_400)
    at: Moment


class SaleConfirmed(SaleDecided):
    pass


class SaleRejected(SaleDecided):
    pass


Event = (
    CallIncoming
    | CallAnswered
    | CallEnded
    | ChatMessage
    | EmailReceived
    | SmsStatus
    | PaymentReceived
    | SaleConfirmed
    | SaleRejected
    | QueueStatus
)
EVENT_TYPES: dict[str, type[Event]] = {
    'telephony.call.incoming': CallIncoming,
    'telephony.call.answered': CallAnswered,
    'telephony.call.ended': CallEnded,
    'chat.message.received': ChatMessage,
    'email.received': EmailReceived,
    'sms.status': SmsStatus,
    'loan.payment.received': PaymentReceived,
    'product.sale.confirmed': SaleConfirmed,
    'product.sale.rejected': SaleRejected,
    'telephony.queue.status': QueueStatus,
}


class BadEvent(ValueError):
    """Why an event can never be processed; ``field`` names the offending field when there is one."""

    def __init__(self, reason: str, field: str | None = None, message: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason  # with the field's name, for logs and the dead-letter header
        self.field = field
        self.message = message or reason  # without it, for an API answer that names the field apart


def parse_event(event_type: str, body: dict[str, Any]) -> Event:
    model = EVENT_TYPES.get(event_type)
    if model is None:
        raise BadEvent(f'unknown event type {event_type!r}', 'type')
    try:
        return model.model_validate(body)
    except ValidationError as error:
        first = error.errors()[0]
        field = '.'.join(str(p) for p in first['loc']) or None
        reason = f'{field}: {first["msg"]}' if field else first['msg']
        raise BadEvent(reason, field, first['msg']) from None


def decode_event(routing_key: str, raw: bytes) -> Event:
    """An AMQP delivery: UTF-8 JSON object with the routing key as its type."""
    try:
        body = json.loads(raw.decode('utf-8'))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadEvent(f'body is not UTF-8 JSON: {error}') from None
    except RecursionError:
        raise BadEvent('body is JSON nested too deep') from None
    if not isinstance(body, dict):
        raise BadEvent('body is not a JSON object')
    return parse_event(routing_key, body)


def idempotency_key(event_type: str, event: Event) -> str:
    """One key per event occurrence: a repeat of the same key has no second effect."""
    if isinstance(event, ChatMessage):
        return f'{event_type}:{event.chat_id}:{event.at.isoformat()}:{hash_text(event.text)}'
    if isinstance(event, EmailReceived):
        return email_key(event.message_id)
    if isinstance(event, SmsStatus):
        return sms_status_key(event.message_id, event.status)
    if isinstance(event, PaymentReceived):
        return f'{event_type}:{event.payment_id}'
    if isinstance(event, QueueStatus):  # one snapshot per queue and moment
        return f'{event_type}:{event.queue}:{event.at.isoformat()}'
    if isinstance(event, SaleDecided):  # one answer of each kind per sale: a repeat has no second effect
        return f'{event_type}:{event.sale_id}'
    return f'{event_type}:{event.call_id}'


def sms_status_key(message_id: str, status: str) -> str:
    """The key of a delivery report (the outbox looks up the ones kept for a gateway's id by it)."""
    return f'sms.status:{message_id}:{status}'


def email_key(message_id: str) -> str:
    """``email.received:<message_id>``; an id too long for the key's column goes as its hash."""
    key = f'email.received:{message_id}'
    if len(key) > 200:  # inbound_events.key
        key = f'email.received:sha256:{hashlib.sha256(message_id.encode()).hexdigest()}'
    return key


def hash_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]
