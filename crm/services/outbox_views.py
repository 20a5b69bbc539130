"""«Исходящие сообщения»: what the outbox holds, each message's attempts, and a resend of a failed one.

Administrators and supervisors see every message; only administrators resend. Recipients are shown
partly masked (``+7 928 ***-**-77``, ``iv***@mail.ru``): the list is for seeing what went and what did
not, not a directory of borrowers' contacts. A password message is never resent from here — the outbox
does not keep the password once it went or failed, and a new one needs a new reset from the card.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from crm.db.models import Borrower, Communication, OutboxAttempt, OutboxMessage
from crm.domain import Role
from crm.domain.actor import Actor
from crm.domain.clock import Clock, system_clock
from crm.domain.errors import NotFound, ServiceError
from crm.domain.formatting import OFFICE_TZ
from crm.domain.messages import OUTBOX_STATUS_LABELS, OutboxStatus
from crm.services import audit
from crm.services.notifier import Notifier
from crm.services.outbox import history_changed, masked

PURPOSE_LABELS = {
    'collection': 'Взыскание',
    'service': 'Сервисное',
    'password': 'Пароль ЛК',
    'reply': 'Ответ в чат',
}
OUTCOME_LABELS = {
    'accepted': 'Принято шлюзом',
    'retry': 'Временная ошибка, будет повтор',
    'failed': 'Отказ',
    'held': 'Отложено по 230-ФЗ',
    'refused': 'Запрещено 230-ФЗ',
    'expired': 'Истёк срок',
}
RESENDABLE = frozenset({OutboxStatus.FAILED, OutboxStatus.EXPIRED})
NOT_RESENDABLE = 'Повторно отправить можно только сообщение с ошибкой или с истёкшим сроком'
SECRET_NOT_RESENT = (
    'Пароль ЛК повторно из очереди не отправляется: он не хранится. '
    'Сделайте новый сброс пароля из карточки заёмщика'
)
MAX_PER_PAGE = 200
MAX_PAGE = 1_000_000

_outbox = cast(Table, OutboxMessage.__table__)
_communications = cast(Table, Communication.__table__)


@dataclass(frozen=True)
class OutboxFilters:
    channel: str | None = None
    status: str | None = None
    created_from: date | None = None  # by the office's calendar, inclusive
    created_to: date | None = None


@dataclass(frozen=True)
class OutboxRow:
    id: int
    created_at: datetime
    channel: str
    recipient: str  # partly masked
    borrower_id: int | None
    borrower_name: str | None
    purpose: str
    status: str
    attempts: int
    reason: str | None
    sent_at: datetime | None
    finished_at: datetime | None
    secret: bool
    mailing_id: int | None

    @property
    def status_label(self) -> str:
        return OUTBOX_STATUS_LABELS.get(self.status, self.status)

    @property
    def purpose_label(self) -> str:
        return PURPOSE_LABELS.get(self.purpose, self.purpose)

    @property
    def resendable(self) -> bool:
        return self.status in RESENDABLE and not self.secret


@dataclass(frozen=True)
class OutboxPage:
    items: tuple[OutboxRow, ...]
    total: int
    page: int
    per_page: int
    counts: dict[str, int] = field(default_factory=dict)  # by status, under the filters but the status


@dataclass(frozen=True)
class AttemptRow:
    at: datetime
    outcome: str
    detail: str | None
    duration_ms: int | None

    @property
    def outcome_label(self) -> str:
        return OUTCOME_LABELS.get(self.outcome, self.outcome)


@dataclass(frozen=True)
class OutboxDetail:
    row: OutboxRow
    subject: str | None
    body: str  # a password's text masked, whatever the row holds
    attempts: tuple[AttemptRow, ...]


def mask_recipient(address: str) -> str:
    """``79280009977`` → ``+7 928 ***-**-77``; ``ivanov@mail.ru`` → ``iv***@mail.ru``."""
    if '@' in address:
        local, _, domain = address.rpartition('@')
        return f'{local[:2]}***@{domain}'
    if len(address) == 11 and address.isdigit():
        return f'+{address[0]} {address[1:4]} ***-**-{address[-2:]}'
    return '***' + address[-2:]


class OutboxService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock = system_clock,
        *,
        notifier: Notifier | None = None,
        ttl: timedelta = timedelta(hours=72),
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._notifier = notifier
        self._ttl = ttl

    def list(
        self, actor: Actor, filters: OutboxFilters | None = None, page: int = 1, per_page: int = 50
    ) -> OutboxPage:
        """Newest first, a page at a time; with the counts by status for the same filters."""
        actor.require(Role.ADMIN, Role.SUPERVISOR)
        filters = filters or OutboxFilters()
        per_page = min(max(per_page, 1), MAX_PER_PAGE)
        page = min(max(page, 1), MAX_PAGE)  # an offset the databases can hold, whatever a client asks
        scope = _conditions(filters) + _not_hidden(actor)
        conditions = scope + ([OutboxMessage.status == filters.status] if filters.status else [])
        with self._sessions() as session:
            grouped = select(OutboxMessage.status, func.count()).where(*scope).group_by(OutboxMessage.status)
            counts: dict[str, int] = {status: count for status, count in session.execute(grouped)}
            total = sum(counts.values()) if not filters.status else counts.get(filters.status, 0)
            found = session.execute(
                _rows_query()
                .where(*conditions)
                .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
                .offset((page - 1) * per_page)
                .limit(per_page)
            ).all()
            items = tuple(_row(message, last, first) for message, last, first in found)
        return OutboxPage(items=items, total=total, page=page, per_page=per_page, counts=counts)

    def attempts(self, actor: Actor, message_id: int) -> OutboxDetail:
        """One message with its every attempt (the view is audited: the text is about a borrower)."""
        actor.require(Role.ADMIN, Role.SUPERVISOR)
        with self._sessions.begin() as session:
            found = session.execute(
                _rows_query().where(OutboxMessage.id == message_id, *_not_hidden(actor))
            ).first()
            if found is None:
                raise NotFound('Сообщение не найдено')
            message, last, first = found
            attempts = session.scalars(
                select(OutboxAttempt)
                .where(OutboxAttempt.message_id == message_id)
                .order_by(OutboxAttempt.at, OutboxAttempt.id)
            ).all()
            audit.record(
                session,
                'outbox.view',
                user_id=actor.id,
                borrower_id=message.borrower_id,
                message_id=message_id,
            )
            return OutboxDetail(
                row=_row(message, last, first),
                subject=message.subject,
                body=masked(message.body, message.secret),
                attempts=tuple(AttemptRow(a.at, a.outcome, a.detail, a.duration_ms) for a in attempts),
            )

    def resend(self, actor: Actor, message_id: int) -> OutboxRow:
        """A failed or expired message goes again: queued now, with a fresh expiry and attempts.

        It keeps its key — the gateway dedupes by it, so a message that did go after all is not sent
        twice — unless the gateway accepted it and then reported it undelivered: that one needs a new
        key, or the gateway would take the resend for the same message. Audited.
        """
        actor.require(Role.ADMIN)
        now = self._clock()
        with self._sessions.begin() as session:
            message = session.scalars(
                select(OutboxMessage).where(OutboxMessage.id == message_id).with_for_update()
            ).first()
            if message is None:
                raise NotFound('Сообщение не найдено')
            if message.secret:
                raise ServiceError(SECRET_NOT_RESENT)
            if message.status not in RESENDABLE:
                raise ServiceError(NOT_RESENDABLE)
            previous = message.status
            if message.gateway_id is not None:
                message.key = uuid.uuid4().hex
                message.gateway_id = None
            message.status = OutboxStatus.QUEUED
            message.not_before = now
            message.expires_at = now + self._ttl
            message.attempts = 0
            message.reason = None
            message.finished_at = None
            message.sent_at = None
            if message.communication_id is not None:
                session.execute(
                    update(_communications)
                    .where(_communications.c.id == message.communication_id)
                    .values(delivery_status=OutboxStatus.QUEUED.value, started_at=now)
                )
            audit.record(
                session,
                'outbox.resend',
                user_id=actor.id,
                borrower_id=message.borrower_id,
                message_id=message_id,
                was=previous,
            )
            session.flush()
            found = session.execute(_rows_query().where(OutboxMessage.id == message_id)).one()
            row = _row(*found)
        if self._notifier is not None:
            self._notifier.publish(history_changed([row.borrower_id]))
        return row


def _rows_query() -> Any:
    return select(OutboxMessage, Borrower.last_name, Borrower.first_name).outerjoin(
        Borrower, Borrower.id == OutboxMessage.borrower_id
    )


def _conditions(filters: OutboxFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.channel:
        conditions.append(OutboxMessage.channel == filters.channel)
    if filters.created_from:
        conditions.append(OutboxMessage.created_at >= _office_midnight(filters.created_from))
    if filters.created_to:
        conditions.append(OutboxMessage.created_at < _office_midnight(filters.created_to + timedelta(days=1)))
    return conditions


def _not_hidden(actor: Actor) -> list[ColumnElement[bool]]:
    """A message whose communication an administrator hid is for administrators only."""
    if actor.role == Role.ADMIN:
        return []
    hidden = select(_communications.c.id).where(
        _communications.c.id == OutboxMessage.communication_id, _communications.c.hidden_at.is_not(None)
    )
    return [~hidden.exists()]


def _office_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, OFFICE_TZ).astimezone(UTC)


def _row(message: OutboxMessage, last: str | None, first: str | None) -> OutboxRow:
    return OutboxRow(
        id=message.id,
        created_at=message.created_at,
        channel=message.channel,
        recipient=mask_recipient(message.to_address),
        borrower_id=message.borrower_id,
        borrower_name=f'{last} {first}' if last else None,
        purpose=message.purpose,
        status=message.status,
        attempts=message.attempts,
        reason=message.reason,
        sent_at=message.sent_at,
        finished_at=message.finished_at,
        secret=message.secret,
        mailing_id=message.mailing_id,
    )
