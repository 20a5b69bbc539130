"""SQLAlchemy 2 typed models. Normalised search columns are filled by crm.domain.identifiers."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    false,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from crm.db.types import Money, UtcDateTime
from crm.domain.clock import system_clock

NAMING = {
    'ix': 'ix_%(table_name)s_%(column_0_N_name)s',
    'uq': 'uq_%(table_name)s_%(column_0_N_name)s',
    'ck': 'ck_%(table_name)s_%(constraint_name)s',
    'fk': 'fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s',
    'pk': 'pk_%(table_name)s',
}


def utcnow() -> datetime:
    """The default of a timestamp column nobody set: services set theirs from their clock."""
    return system_clock()


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class User(Base):
    __tablename__ = 'users'

    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))  # operator | supervisor | admin
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    extension: Mapped[str | None] = mapped_column(String(16), unique=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # «Пользователи» (crm/services/users.py): the group an operator works in; a reset password must be
    # changed at the next login (the login middleware sends such a user to /password first)
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey('user_groups.id', ondelete='SET NULL', use_alter=True), index=True
    )
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    password_changed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class UserGroup(Base):
    """A group of operators, led by a supervisor (who sees the group on the dashboard)."""

    __tablename__ = 'user_groups'

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    supervisor_id: Mapped[int | None] = mapped_column(ForeignKey('users.id', ondelete='SET NULL'))


class Borrower(Base):
    __tablename__ = 'borrowers'

    id: Mapped[int] = mapped_column(primary_key=True)
    pin: Mapped[str] = mapped_column(String(20), unique=True)
    last_name: Mapped[str] = mapped_column(String(100))
    first_name: Mapped[str] = mapped_column(String(100))
    middle_name: Mapped[str | None] = mapped_column(String(100))
    # lower case, ё→е, single spaces: what name search matches against
    search_name: Mapped[str] = mapped_column(String(310))
    birth_date: Mapped[date] = mapped_column(Date)
    inn: Mapped[str | None] = mapped_column(String(12), index=True)
    snils: Mapped[str | None] = mapped_column(String(11), index=True)  # digits only
    passport: Mapped[str | None] = mapped_column(String(10), index=True)  # series + number, digits only
    passport_issued: Mapped[str | None] = mapped_column(String(300))
    email: Mapped[str | None] = mapped_column(String(254))
    address: Mapped[str | None] = mapped_column(String(300))
    city: Mapped[str] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64))
    employer: Mapped[str | None] = mapped_column(String(200))
    monthly_payment: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    assigned_operator_id: Mapped[int | None] = mapped_column(ForeignKey('users.id'))
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    # denormalised from loans and communications, kept by the services, for sorting the list
    total_debt: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    overdue_amount: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    days_past_due: Mapped[int] = mapped_column(Integer, default=0)
    last_contact_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # legal status (230-FZ): any of these blocks outgoing contact
    contact_refused: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    representative_only: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    bankrupt: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    incapacitated: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    phones: Mapped[list[BorrowerPhone]] = relationship(
        back_populates='borrower', order_by='BorrowerPhone.id', cascade='all, delete-orphan'
    )
    loans: Mapped[list[Loan]] = relationship(back_populates='borrower', cascade='all, delete-orphan')

    @property
    def full_name(self) -> str:
        return ' '.join(p for p in (self.last_name, self.first_name, self.middle_name) if p)

    __table_args__ = (
        Index('ix_borrowers_operator_days_past_due', 'assigned_operator_id', 'days_past_due'),
        Index('ix_borrowers_operator_last_name', 'assigned_operator_id', 'last_name'),
        Index('ix_borrowers_email_lower', func.lower(email)),
        Index('ix_borrowers_search_name_id', 'search_name', 'id'),  # the «Обращения» sort (migration 0011)
    )


class BorrowerPhone(Base):
    __tablename__ = 'borrower_phones'

    id: Mapped[int] = mapped_column(primary_key=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey('borrowers.id', ondelete='CASCADE'), index=True)
    # normalised: 7XXXXXXXXXX; on PostgreSQL also indexed reversed, for its last digits (migration 0004)
    phone: Mapped[str] = mapped_column(String(15), index=True)
    kind: Mapped[str] = mapped_column(String(16), default='mobile')  # mobile | home | work
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)

    borrower: Mapped[Borrower] = relationship(back_populates='phones')


class Loan(Base):
    __tablename__ = 'loans'

    id: Mapped[int] = mapped_column(primary_key=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey('borrowers.id', ondelete='CASCADE'), index=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    product: Mapped[str] = mapped_column(String(100))
    amount: Mapped[Decimal] = mapped_column(Money)
    term_days: Mapped[int] = mapped_column(Integer)
    rate: Mapped[Decimal] = mapped_column(Numeric(6, 3))  # percent per day
    issued_on: Mapped[date] = mapped_column(Date)
    due_on: Mapped[date] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(16))  # active | closed | archived
    status_code: Mapped[int] = mapped_column(Integer)
    status_name: Mapped[str] = mapped_column(String(200))
    principal_outstanding: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    total_debt: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    overdue_amount: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    days_past_due: Mapped[int] = mapped_column(Integer, default=0)
    closed_on: Mapped[date | None] = mapped_column(Date)

    borrower: Mapped[Borrower] = relationship(back_populates='loans')


class CreditApplication(Base):
    """An application for credit made to this company (the own part of the credit history)."""

    __tablename__ = 'credit_applications'

    id: Mapped[int] = mapped_column(primary_key=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey('borrowers.id', ondelete='CASCADE'), index=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    product: Mapped[str] = mapped_column(String(100))
    amount: Mapped[Decimal] = mapped_column(Money)
    term_days: Mapped[int] = mapped_column(Integer)
    applied_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status_code: Mapped[int] = mapped_column(Integer)
    status_name: Mapped[str] = mapped_column(String(200))


class Product(Base):
    """An additional product or service that can be sold to a borrower."""

    __tablename__ = 'products'

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    price: Mapped[Decimal] = mapped_column(Money)  # the fixed price (price_base 'fixed')
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # the price and eligibility rules (crm.domain.products; migration 0009)
    kind: Mapped[str] = mapped_column(String(32), default='service', server_default='service')
    description: Mapped[str] = mapped_column(String(1000), default='', server_default='')
    price_base: Mapped[str] = mapped_column(String(16), default='fixed', server_default='fixed')
    price_percent: Mapped[Decimal | None] = mapped_column(Numeric(7, 3))
    price_min: Mapped[Decimal | None] = mapped_column(Money)
    price_max: Mapped[Decimal | None] = mapped_column(Money)
    allowed_states: Mapped[str] = mapped_column(String(64), default='active', server_default='active')
    dpd_min: Mapped[int | None] = mapped_column(Integer)
    dpd_max: Mapped[int | None] = mapped_column(Integer)
    overdue_min: Mapped[Decimal | None] = mapped_column(Money)
    overdue_max: Mapped[Decimal | None] = mapped_column(Money)
    once_per_loan: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    max_per_loan: Mapped[int | None] = mapped_column(Integer)


class ProductSale(Base):
    __tablename__ = 'product_sales'

    id: Mapped[int] = mapped_column(primary_key=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey('borrowers.id', ondelete='CASCADE'), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey('products.id'))
    operator_id: Mapped[int | None] = mapped_column(ForeignKey('users.id'))
    price: Mapped[Decimal] = mapped_column(Money)
    sold_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    loan_id: Mapped[int | None] = mapped_column(ForeignKey('loans.id', ondelete='CASCADE'), index=True)
    sale_id: Mapped[str] = mapped_column(String(36), unique=True)  # public: the loan system's key
    # pending | confirmed | rejected (the loan system's answer)
    status: Mapped[str] = mapped_column(String(16), default='confirmed', server_default='confirmed')
    reason: Mapped[str | None] = mapped_column(String(500))
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # the command last sent (the sweeper's)
    communication_id: Mapped[int | None] = mapped_column(ForeignKey('communications.id', ondelete='SET NULL'))

    product: Mapped[Product] = relationship()

    __table_args__ = (Index('ix_product_sales_status_sent_at', 'status', 'sent_at'),)


class Communication(Base):
    """One contact with a borrower on any channel, with its result."""

    __tablename__ = 'communications'

    id: Mapped[int] = mapped_column(primary_key=True)
    borrower_id: Mapped[int | None] = mapped_column(ForeignKey('borrowers.id', ondelete='CASCADE'))
    operator_id: Mapped[int | None] = mapped_column(ForeignKey('users.id'))
    # call_in | call_out | sms | email | chat | password | note
    channel: Mapped[str] = mapped_column(String(16))
    direction: Mapped[str] = mapped_column(String(8))  # in | out
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    phone: Mapped[str | None] = mapped_column(String(15))
    result_code: Mapped[str | None] = mapped_column(String(32))
    result_name: Mapped[str | None] = mapped_column(String(100))
    reached: Mapped[bool | None] = mapped_column(Boolean)
    promise_amount: Mapped[Decimal | None] = mapped_column(Money)
    promise_date: Mapped[date | None] = mapped_column(Date)
    comment: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str | None] = mapped_column(Text)
    delivery_status: Mapped[str | None] = mapped_column(String(16))
    duration_s: Mapped[int | None] = mapped_column(Integer)
    recording_url: Mapped[str | None] = mapped_column(String(500))
    call_id: Mapped[str | None] = mapped_column(String(128), index=True)
    callback_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    chat_id: Mapped[str | None] = mapped_column(String(128), index=True)  # the chat's id, for chat messages
    subject: Mapped[str | None] = mapped_column(String(300))  # an e-mail's subject
    # an outgoing message about overdue debt: the 230-FZ ledger counts it (not replies, passwords, inbound)
    collection: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # an administrator hid it from operators and supervisors (kept; admins see it marked; migration 0016)
    hidden_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    hidden_reason: Mapped[str | None] = mapped_column(String(500))
    hidden_by: Mapped[int | None] = mapped_column(ForeignKey('users.id'))

    operator: Mapped[User | None] = relationship(foreign_keys=[operator_id])

    __table_args__ = (Index('ix_communications_borrower_started', 'borrower_id', 'started_at'),)


class Call(Base):
    """A phone call as the PBX knows it, by the PBX's call_id, with its state machine."""

    __tablename__ = 'calls'

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[str] = mapped_column(String(128), unique=True)
    direction: Mapped[str] = mapped_column(String(8))  # in | out
    # ringing | dialing | active | on_hold | transferred | ended
    state: Mapped[str] = mapped_column(String(16))
    number: Mapped[str] = mapped_column(String(32))  # the borrower's side, normalised when possible
    extension: Mapped[str | None] = mapped_column(String(16), index=True)
    operator_id: Mapped[int | None] = mapped_column(ForeignKey('users.id'))
    borrower_id: Mapped[int | None] = mapped_column(ForeignKey('borrowers.id', ondelete='SET NULL'))
    communication_id: Mapped[int | None] = mapped_column(ForeignKey('communications.id', ondelete='SET NULL'))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    duration_s: Mapped[int | None] = mapped_column(Integer)
    recording_url: Mapped[str | None] = mapped_column(String(500))
    transferred_to: Mapped[str | None] = mapped_column(String(16))
    # other borrowers sharing the caller's number, for the operator to switch to
    other_borrower_ids: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (Index('ix_calls_operator_state', 'operator_id', 'state'),)


class InboundEvent(Base):
    """Every event from outside, by its idempotency key; early ones wait here for their call."""

    __tablename__ = 'inbound_events'

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    type: Mapped[str] = mapped_column(String(64))
    call_id: Mapped[str | None] = mapped_column(String(128), index=True)
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # applied | parked | stored
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ResultCode(Base):
    """The configurable list of contact results."""

    __tablename__ = 'result_codes'

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    reached: Mapped[bool] = mapped_column(Boolean)  # the borrower was spoken to
    needs_promise: Mapped[bool] = mapped_column(Boolean, default=False)
    needs_callback: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class ApiToken(Base):
    """A bearer token for other systems; only its SHA-256 is kept."""

    __tablename__ = 'api_tokens'

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(12))  # shown to tell tokens apart
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(String(16))  # events | lookup
    created_by: Mapped[int | None] = mapped_column(ForeignKey('users.id'))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class WebSession(Base):
    """A browser's login: the cookie holds a random token, the table only its SHA-256.

    A row is made when the password is right, holding a one-time ticket for the browser to exchange
    (over HTTP) for the session cookie; so every login gets a new session, whatever cookie came before.
    """

    __tablename__ = 'web_sessions'

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey('users.id', ondelete='CASCADE'), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class AuditEntry(Base):
    __tablename__ = 'audit_entries'

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    user_id: Mapped[int | None] = mapped_column(ForeignKey('users.id'))
    action: Mapped[str] = mapped_column(String(64))
    borrower_id: Mapped[int | None] = mapped_column(ForeignKey('borrowers.id', ondelete='SET NULL'))
    details: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(String(64))  # the client's (crm.domain.origin)

    # «Журнал действий» filters by period, user, borrower and action, newest first (migration 0013)
    __table_args__ = (
        Index('ix_audit_entries_at_id', 'at', 'id'),
        Index('ix_audit_entries_user_at', 'user_id', 'at', 'id'),
        Index('ix_audit_entries_borrower_at', 'borrower_id', 'at', 'id'),
        Index('ix_audit_entries_action_at', 'action', 'at', 'id'),
        Index('ix_audit_entries_user_action_at', 'user_id', 'action', 'at', 'id'),
    )


class MessageTemplate(Base):
    """An SMS or e-mail template («Шаблоны сообщений»): Jinja2 text over borrower and loan variables."""

    __tablename__ = 'message_templates'

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(8))  # sms | email
    kind: Mapped[str] = mapped_column(String(32))  # crm.domain.messages.TEMPLATE_KINDS
    name: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str | None] = mapped_column(String(300))  # e-mail only
    body: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)  # retired templates are kept, not offered
    updated_by: Mapped[int | None] = mapped_column(ForeignKey('users.id'))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    __table_args__ = (Index('ix_message_templates_channel_kind', 'channel', 'kind'),)


class Mailing(Base):
    """A mass mailing («Рассылки»): a template sent to a segment of borrowers through the outbox."""

    __tablename__ = 'mailings'

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(8))  # sms | email
    template_id: Mapped[int] = mapped_column(ForeignKey('message_templates.id'))
    # the template's text when the mailing was made: what was checked is what goes (migration 0006)
    subject: Mapped[str | None] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default='', server_default='')
    segment: Mapped[str] = mapped_column(Text)  # JSON: crm.services.mailings.Segment
    # scheduled | running | paused | cancelled | done
    status: Mapped[str] = mapped_column(String(16))
    start_at: Mapped[datetime] = mapped_column(UtcDateTime)
    total: Mapped[int] = mapped_column(Integer, default=0)  # borrowers in the segment when it started
    cursor: Mapped[int] = mapped_column(Integer, default=0)  # the last borrower id queued
    no_address: Mapped[int] = mapped_column(Integer, default=0, server_default='0')  # not queued: no address
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # its first batch
    created_by: Mapped[int | None] = mapped_column(ForeignKey('users.id'))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (Index('ix_mailings_status_start_at', 'status', 'start_at'),)


class OutboxMessage(Base):
    """An SMS or e-mail to send, written in the transaction that recorded its communication.

    The dispatcher claims due rows (``FOR UPDATE SKIP LOCKED``, by ``not_before, created_at``) and leases
    them by moving ``not_before`` on; ``key`` goes to the gateway, so a resend after a crash is one SMS.
    """

    __tablename__ = 'outbox_messages'

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(8))  # sms | email
    purpose: Mapped[str] = mapped_column(String(16))  # collection | service | password | reply
    # queued | sending | sent | delivered | failed | expired | refused | cancelled
    status: Mapped[str] = mapped_column(String(16))
    borrower_id: Mapped[int | None] = mapped_column(ForeignKey('borrowers.id', ondelete='SET NULL'))
    communication_id: Mapped[int | None] = mapped_column(ForeignKey('communications.id', ondelete='SET NULL'))
    mailing_id: Mapped[int | None] = mapped_column(ForeignKey('mailings.id'))
    operator_id: Mapped[int | None] = mapped_column(ForeignKey('users.id'))
    to_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str | None] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    secret: Mapped[bool] = mapped_column(Boolean, default=False)  # masked once the gateway accepted it
    not_before: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    gateway_id: Mapped[str | None] = mapped_column(String(128), index=True)
    reason: Mapped[str | None] = mapped_column(Text)  # why it failed, waits or was refused (Russian)
    rule: Mapped[str | None] = mapped_column(String(32))  # the 230-FZ rule that held or refused it
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # delivered, failed, expired …

    __table_args__ = (
        Index('ix_outbox_messages_due', 'status', 'not_before', 'created_at'),
        Index('ix_outbox_messages_created', 'created_at'),
        # a mailing queues a borrower once, whichever process queued the batch (migration 0006)
        Index('uq_outbox_messages_mailing_borrower', 'mailing_id', 'borrower_id', unique=True),
    )


class OutboxAttempt(Base):
    """Every try to hand a message to its gateway, and what came of it."""

    __tablename__ = 'outbox_attempts'

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey('outbox_messages.id', ondelete='CASCADE'), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    outcome: Mapped[str] = mapped_column(String(16))  # accepted | retry | failed | held | refused | expired
    detail: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None] = mapped_column(Integer)


class SendRate(Base):
    """A token bucket per channel, shared by every process: the cluster's rate limit."""

    __tablename__ = 'send_rates'

    channel: Mapped[str] = mapped_column(String(8), primary_key=True)
    tokens: Mapped[float] = mapped_column(Numeric(12, 3, asdecimal=False))
    refilled_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Chat(Base):
    """A chat conversation by the chat system's id; an unknown sender's waits for an operator to link it."""

    __tablename__ = 'chats'

    id: Mapped[int] = mapped_column(primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(128), unique=True)
    borrower_id: Mapped[int | None] = mapped_column(
        ForeignKey('borrowers.id', ondelete='SET NULL'), index=True
    )
    sender: Mapped[str] = mapped_column(String(64))  # as the chat system gave it: a phone or a PIN
    unread: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_message_at: Mapped[datetime] = mapped_column(UtcDateTime)


class BureauReport(Base):
    """A credit-bureau report as it came (its wire JSON), kept so the card shows it without asking again."""

    __tablename__ = 'bureau_reports'

    id: Mapped[int] = mapped_column(primary_key=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey('borrowers.id', ondelete='CASCADE'))
    taken_at: Mapped[datetime] = mapped_column(UtcDateTime)  # when the CRM got it
    generated_at: Mapped[datetime] = mapped_column(UtcDateTime)  # when the bureau made it
    report: Mapped[str] = mapped_column(Text)
    requested_by: Mapped[int | None] = mapped_column(ForeignKey('users.id'))

    __table_args__ = (Index('ix_bureau_reports_borrower_id_taken_at', 'borrower_id', 'taken_at'),)


class Consent(Base):
    """A borrower's consent on record (``kind`` 'bureau': to ask the credit bureau about them)."""

    __tablename__ = 'consents'

    id: Mapped[int] = mapped_column(primary_key=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey('borrowers.id', ondelete='CASCADE'))
    kind: Mapped[str] = mapped_column(String(32))
    given_at: Mapped[datetime] = mapped_column(UtcDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey('users.id'))
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (Index('ix_consents_borrower_id_kind_given_at', 'borrower_id', 'kind', 'given_at'),)


class Promise(Base):
    """A borrower's promise to pay: kept when payments reach a share of it by its date and the grace."""

    __tablename__ = 'promises'

    id: Mapped[int] = mapped_column(primary_key=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey('borrowers.id', ondelete='CASCADE'), index=True)
    loan_id: Mapped[int | None] = mapped_column(ForeignKey('loans.id', ondelete='SET NULL'))
    communication_id: Mapped[int | None] = mapped_column(ForeignKey('communications.id', ondelete='SET NULL'))
    operator_id: Mapped[int | None] = mapped_column(ForeignKey('users.id'))
    amount: Mapped[Decimal] = mapped_column(Money)
    due_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))  # open | kept | partly_kept | broken | cancelled
    paid_amount: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        Index('ix_promises_status_due_on', 'status', 'due_on'),
        Index('ix_promises_operator_id_due_on', 'operator_id', 'due_on'),
    )


class Payment(Base):
    """A payment the loan system reported (``loan.payment.received``), once per ``payment_id``."""

    __tablename__ = 'payments'

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[str] = mapped_column(String(128), unique=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey('loans.id', ondelete='CASCADE'), index=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey('borrowers.id', ondelete='CASCADE'), index=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    at: Mapped[datetime] = mapped_column(UtcDateTime)  # when it was paid
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)  # when the CRM got it


class RequestTopic(Base):
    """A topic a request can have (администратор edits the list; retired ones stay on old requests)."""

    __tablename__ = 'request_topics'

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class Request(Base):
    """A borrower's request (обращение): inbound contacts join the borrower's open one.

    ``search_text`` is what full-text search reads (subject, text, the borrower's name, PIN and phones),
    kept by the service when any of them is written; on PostgreSQL a GIN index covers it (migration 0010).
    """

    __tablename__ = 'requests'

    id: Mapped[int] = mapped_column(primary_key=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey('borrowers.id', ondelete='CASCADE'))
    origin: Mapped[str] = mapped_column(String(16))  # contact | broken_promise
    channel: Mapped[str] = mapped_column(String(16))  # call | chat | email | manual | system: how it began
    topic_code: Mapped[str | None] = mapped_column(ForeignKey('request_topics.code'))
    status: Mapped[str] = mapped_column(String(16))  # new | in_progress | waiting | resolved | closed
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey('users.id'))
    subject: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text, default='')
    search_text: Mapped[str] = mapped_column(Text, default='')
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    due_on: Mapped[date] = mapped_column(Date)  # 15 working days after the day it opened
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        # one open request per borrower and origin: what an inbound contact joins
        Index(
            'uq_requests_open_borrower_origin',
            'borrower_id',
            'origin',
            unique=True,
            postgresql_where="status IN ('new', 'in_progress', 'waiting')",
            sqlite_where="status IN ('new', 'in_progress', 'waiting')",
        ),
        Index('ix_requests_borrower_id', 'borrower_id'),
        Index('ix_requests_status_opened_at', 'status', 'opened_at'),
        Index('ix_requests_assignee_id_status', 'assignee_id', 'status'),
        # the «Обращения» page (migration 0011): each sort column with the id after it
        *(
            Index(f'ix_requests_{c}_id', c, 'id')
            for c in ('opened_at', 'updated_at', 'due_on', 'topic_code', 'channel', 'status', 'assignee_id')
        ),
        Index(
            'ix_requests_open_due_on',
            'due_on',
            'id',
            postgresql_where="status IN ('new', 'in_progress', 'waiting')",
            sqlite_where="status IN ('new', 'in_progress', 'waiting')",
        ),
    )


class RequestEvent(Base):
    """A line of a request's history: opened, a contact joined, taken, assigned, status, answer …"""

    __tablename__ = 'request_events'

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey('requests.id', ondelete='CASCADE'))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey('users.id'))  # None: the system
    kind: Mapped[str] = mapped_column(String(16))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey('users.id'))
    communication_id: Mapped[int | None] = mapped_column(ForeignKey('communications.id', ondelete='SET NULL'))
    text: Mapped[str] = mapped_column(Text, default='')

    __table_args__ = (Index('ix_request_events_request_id_at', 'request_id', 'at'),)


class OperatorStateRow(Base):
    """Every operator's state now (crm/domain/operator_states.py): one row each, locked to change it."""

    __tablename__ = 'operator_states'

    user_id: Mapped[int] = mapped_column(ForeignKey('users.id', ondelete='CASCADE'), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(32))
    since: Mapped[datetime] = mapped_column(UtcDateTime)
    call_id: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # a tab of the operator's, last

    __table_args__ = (Index('ix_operator_states_state_since', 'state', 'since'),)


class OperatorStateChange(Base):
    """The history of operator states: time in state and operators by state over the day."""

    __tablename__ = 'operator_state_changes'

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey('users.id', ondelete='CASCADE'))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    from_state: Mapped[str | None] = mapped_column(String(16))  # None: the operator's first state
    to_state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(32))
    call_id: Mapped[str | None] = mapped_column(String(64))
    by_user_id: Mapped[int | None] = mapped_column(ForeignKey('users.id'))  # None: the operator or the system

    __table_args__ = (
        Index('ix_operator_state_changes_at', 'at'),  # a day's changes, all operators (the chart)
        Index('ix_operator_state_changes_user_id_at', 'user_id', 'at'),  # one operator's day
    )


class PortfolioMove(Base):
    """A borrower moved from one operator to another by a portfolio operation (crm/services/portfolios.py).

    The operation's one audit entry names ``operation_id`` and its counts; these rows are the trail per
    borrower.
    """

    __tablename__ = 'portfolio_moves'

    id: Mapped[int] = mapped_column(primary_key=True)
    operation_id: Mapped[str] = mapped_column(String(32), index=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey('borrowers.id', ondelete='CASCADE'))
    from_operator_id: Mapped[int | None] = mapped_column(Integer)
    to_operator_id: Mapped[int | None] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    by_user_id: Mapped[int | None] = mapped_column(ForeignKey('users.id'))

    __table_args__ = (Index('ix_portfolio_moves_borrower_id_at', 'borrower_id', 'at'),)


class ErasureAct(Base):
    """The act of erasing a borrower's personal data on request (crm/services/erasure.py).

    The procedure: docs/personal-data.md.
    """

    __tablename__ = 'erasure_acts'

    id: Mapped[int] = mapped_column(primary_key=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey('borrowers.id', ondelete='CASCADE'), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    by_user_id: Mapped[int | None] = mapped_column(ForeignKey('users.id'))
    reason: Mapped[str] = mapped_column(Text)
    reference: Mapped[str] = mapped_column(String(200))  # the request's number or date
    legal_basis: Mapped[str | None] = mapped_column(Text)  # stated when erased despite an active loan
    erased: Mapped[str] = mapped_column(Text)  # JSON: what was erased, by table and field, with counts


class FieldVisibility(Base):
    """«Видимость полей»: one cell of the matrix role × borrower field (crm/domain/field_visibility.py)."""

    __tablename__ = 'field_visibility'

    role: Mapped[str] = mapped_column(String(16), primary_key=True)
    field: Mapped[str] = mapped_column(String(32), primary_key=True)
    mode: Mapped[str] = mapped_column(String(16))  # hidden | masked | visible


class FieldVisibilityVersion(Base):
    """The matrix's one version row, bumped by every save: each process re-reads the matrix on a new one."""

    __tablename__ = 'field_visibility_version'

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey('users.id', ondelete='SET NULL'))


class DashboardThreshold(Base):
    """«Мониторинг»: an administrator's colour thresholds of one operator state, in seconds
    (crm/services/dashboard_thresholds.py); a state with no row keeps CRM_DASHBOARD_THRESHOLDS."""

    __tablename__ = 'dashboard_thresholds'

    state: Mapped[str] = mapped_column(String(32), primary_key=True)
    warn_after: Mapped[int] = mapped_column(Integer)
    alert_after: Mapped[int] = mapped_column(Integer)
    critical_after: Mapped[int] = mapped_column(Integer)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey('users.id'))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
