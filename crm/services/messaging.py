"""Messages from the card: SMS, e-mail and the personal-account password, queued through the outbox.

Every send checks first (``message_checks``: the borrower, the address, the template, the text — not
empty, at most 10 SMS parts, naming the creditor and its phone — and the 230-FZ verdict for messages),
then writes in one transaction the communication and its outbox row (``outbox.queue``) with an audit
entry; after the commit the card's history is told (``HistoryChanged``), so it shows the message
«В очереди» at once. The dispatcher sends it; an e-mail's HTML part is made from its text then.

Purpose (``docs/230-fz.md``): a message to a borrower with overdue debt is a collection message, counted
by the ledger and limited; without overdue debt it is a service message, not counted (legal flags still
forbid it, as they forbid a call). The personal-account password is neither: the borrower asked for it
and it is not about the debt, so it is recorded, not limited, and goes even to a borrower who refused
collection contact. It is never returned, logged or stored in clear: the outbox row keeps it only until
the gateway accepted it, the communication holds a masked text from the start.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from crm.db.models import Borrower
from crm.domain.actor import Actor
from crm.domain.clock import Clock, system_clock
from crm.domain.errors import ServiceError
from crm.domain.identifiers import format_phone
from crm.domain.messages import (
    MESSAGE_CHANNEL_LABELS,
    OUTBOX_STATUS_LABELS,
    PASSWORD_KIND,
    Creditor,
    MessageChannel,
    OutboxStatus,
    Purpose,
)
from crm.domain.notifications import HistoryChanged
from crm.domain.sms_text import SmsParts, sms_parts
from crm.integrations.account import AccountSite, AccountUnavailable
from crm.services import audit, message_text, outbox
from crm.services import message_checks as check
from crm.services.compliance import ComplianceService
from crm.services.message_checks import NO_EMAIL, NO_MOBILE, BadMessage, RefusedByLaw, law_refusal
from crm.services.notifier import Notifier

log = logging.getLogger(__name__)

__all__ = [
    'NO_EMAIL',
    'NO_MOBILE',
    'BadMessage',
    'Composed',
    'MessagingService',
    'Queued',
    'RefusedByLaw',
    'SendingOptions',
]


@dataclass(frozen=True)
class Composed:
    """A template rendered for one borrower: what the dialog puts into «Тема» and «Текст к отправке»."""

    template_id: int
    channel: MessageChannel
    subject: str | None
    text: str
    parts: SmsParts | None  # SMS only


@dataclass(frozen=True)
class Queued:
    """A message in the outbox; ``to`` is for the operator to read (a formatted phone, an address)."""

    outbox_id: int
    channel: MessageChannel
    purpose: Purpose
    to: str
    status: OutboxStatus = OutboxStatus.QUEUED

    @property
    def status_label(self) -> str:
        return OUTBOX_STATUS_LABELS[self.status]


@dataclass(frozen=True)
class SendingOptions:
    """What the card's message dialogs need to know before anything is typed."""

    borrower_id: int
    mobile: str | None  # the primary mobile phone, formatted; None if there is none
    email: str | None  # None if there is no valid e-mail
    collection: bool  # a message now would be a collection message (overdue debt)
    law: str | None  # why an SMS or e-mail would be refused now (230-FZ), None if it may go

    @property
    def password_channels(self) -> tuple[MessageChannel, ...]:
        """The channels the borrower can get a password by (those they have an address for)."""
        has = {MessageChannel.SMS: self.mobile, MessageChannel.EMAIL: self.email}
        return tuple(channel for channel, address in has.items() if address)

    def refusal(self, channel: MessageChannel) -> str | None:
        """Why an SMS / e-mail cannot be sent from the card now, or None."""
        if channel is MessageChannel.SMS and self.mobile is None:
            return NO_MOBILE
        if channel is MessageChannel.EMAIL and self.email is None:
            return NO_EMAIL
        return self.law


class MessagingService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        compliance: ComplianceService,
        account: AccountSite,
        creditor: Creditor,
        notifier: Notifier,
        *,
        ttl: timedelta = timedelta(hours=72),
        clock: Clock = system_clock,
    ) -> None:
        self._sessions = sessions
        self._compliance = compliance
        self._account = account
        self._creditor = creditor
        self._notifier = notifier
        self._ttl = ttl
        self._clock = clock

    # --- what the dialogs show ------------------------------------------------------------------
    def options(self, actor: Actor, borrower_id: int) -> SendingOptions:
        """The borrower's addresses and whether the law lets a message from the card go now."""
        with self._sessions() as session:
            borrower = check.borrower(session, borrower_id)
            mobiles = check.mobiles(session, borrower.id)
            verdict = self._compliance.outgoing_message_in(session, borrower, now=self._clock())
            return SendingOptions(
                borrower_id=borrower.id,
                mobile=format_phone(mobiles[0]) if mobiles else None,
                email=check.email_of(borrower),
                collection=borrower.days_past_due > 0,
                law=None if verdict.allowed else law_refusal(verdict),
            )

    def compose(self, actor: Actor, borrower_id: int, template_id: int) -> Composed:
        """The template rendered for this borrower (an error in it is a refusal, never a blank)."""
        with self._sessions() as session:
            borrower = check.borrower(session, borrower_id)
            template = check.template(session, template_id)
            if template.kind == PASSWORD_KIND:
                raise BadMessage('Пароль ЛК отправляется кнопкой «Отправить пароль ЛК»', 'template_id')
            try:
                rendered = message_text.render(
                    session, borrower.id, template.subject, template.body, self._creditor
                )
            except ServiceError as error:  # a variable this borrower has no value for
                raise BadMessage(error.message, 'template_id') from None
        channel = MessageChannel(template.channel)
        parts = sms_parts(rendered.text) if channel is MessageChannel.SMS else None
        return Composed(template.id, channel, rendered.subject, rendered.text, parts)

    # --- sending --------------------------------------------------------------------------------
    def send_sms(
        self,
        actor: Actor,
        borrower_id: int,
        text: str,
        *,
        template_id: int | None = None,
        phone: str | None = None,
    ) -> Queued:
        """An SMS from the card (the operator may have edited the template's text)."""
        text = check.text(text, MessageChannel.SMS, self._creditor)
        now = self._clock()
        with self._sessions.begin() as session:
            borrower = check.borrower(session, borrower_id, lock=True)
            check.require_template(session, template_id, MessageChannel.SMS)
            to = check.mobile(session, borrower.id, phone)
            purpose = self._law(session, borrower, now)
            message = outbox.NewMessage(
                MessageChannel.SMS, purpose, to, text, borrower_id=borrower.id, operator_id=_user(actor)
            )
            queued = self._queue(session, actor, borrower, message, now, template_id=template_id)
        self._notifier.publish([HistoryChanged(borrower_id)])
        return queued

    def send_email(
        self, actor: Actor, borrower_id: int, subject: str, text: str, *, template_id: int | None = None
    ) -> Queued:
        """An e-mail from the card."""
        subject = check.subject(subject)
        text = check.text(text, MessageChannel.EMAIL, self._creditor)
        now = self._clock()
        with self._sessions.begin() as session:
            borrower = check.borrower(session, borrower_id, lock=True)
            check.require_template(session, template_id, MessageChannel.EMAIL)
            to = check.email(borrower)
            purpose = self._law(session, borrower, now)
            message = outbox.NewMessage(
                MessageChannel.EMAIL,
                purpose,
                to,
                text,
                subject=subject,
                borrower_id=borrower.id,
                operator_id=_user(actor),
            )
            queued = self._queue(session, actor, borrower, message, now, template_id=template_id)
        self._notifier.publish([HistoryChanged(borrower_id)])
        return queued

    def send_password(self, actor: Actor, borrower_id: int, channel: MessageChannel | str) -> Queued:
        """A new personal-account password to the borrower by SMS or e-mail. The site is asked for it
        only after the rate and the template passed; the password goes into the outbox row alone."""
        channel = check.channel(channel)
        now = self._clock()
        reset = False  # once the site has changed the password, a failure must say so
        try:
            with self._sessions.begin() as session:
                borrower = check.borrower(session, borrower_id, lock=True)
                to = (
                    check.mobile(session, borrower.id)
                    if channel is MessageChannel.SMS
                    else check.email(borrower)
                )
                check.require_password_rate(session, borrower.id, now)
                template = check.password_template(session, borrower.id, channel, self._creditor)
                password = self._new_password(borrower.pin)
                reset = True
                rendered = message_text.render(
                    session, borrower.id, template.subject, template.body, self._creditor, password=password
                )
                message = outbox.NewMessage(
                    channel,
                    Purpose.PASSWORD,
                    to,
                    rendered.text,
                    subject=rendered.subject,
                    borrower_id=borrower.id,
                    operator_id=_user(actor),
                    secret=True,
                )
                queued = self._queue(session, actor, borrower, message, now, template_id=template.id)
        except (SQLAlchemyError, ServiceError) as error:
            if not reset:
                raise
            log.error(  # the error's text could quote the message: only its kind is logged
                'personal-account password of borrower %s was reset but not queued (%s)',
                borrower_id,
                type(error).__name__,
            )
            raise ServiceError(
                'Пароль на сайте ЛК сменён, но сообщение с ним не удалось поставить в очередь. '
                'Отправьте пароль ещё раз.'
            ) from None
        self._notifier.publish([HistoryChanged(borrower_id)])
        return queued

    def send(
        self,
        actor: Actor,
        pin: str,
        channel: MessageChannel | str,
        text: str | None,
        *,
        subject: str | None = None,
        template_id: int | None = None,
    ) -> Queued:
        """An SMS or e-mail from another system (the HTTP API): to the borrower with this PIN, the text
        given or, without one, the template's text (and subject) rendered for the borrower."""
        channel = check.channel(channel)
        with self._sessions() as session:
            borrower_id = check.borrower_by_pin(session, pin)
        if text is None:
            if template_id is None:
                raise BadMessage('Укажите текст сообщения или шаблон', 'text')
            composed = self.compose(actor, borrower_id, template_id)
            if composed.channel is not channel:
                raise BadMessage(f'Шаблон не для {MESSAGE_CHANNEL_LABELS[channel]}', 'template_id')
            text, subject = composed.text, subject or composed.subject
        if channel is MessageChannel.SMS:
            return self.send_sms(actor, borrower_id, text, template_id=template_id)
        return self.send_email(actor, borrower_id, subject or '', text, template_id=template_id)

    # --- the steps ------------------------------------------------------------------------------
    def _law(self, session: Session, borrower: Borrower, now: datetime) -> Purpose:
        """The message's purpose, if 230-FZ lets it go now."""
        verdict = self._compliance.outgoing_message_in(session, borrower, now=now)
        if not verdict.allowed:
            raise RefusedByLaw(verdict)
        return Purpose.COLLECTION if borrower.days_past_due > 0 else Purpose.SERVICE

    def _queue(
        self,
        session: Session,
        actor: Actor,
        borrower: Borrower,
        message: outbox.NewMessage,
        now: datetime,
        *,
        template_id: int | None,
    ) -> Queued:
        """The communication, its outbox row and the audit entry, in the caller's transaction."""
        outbox_id = outbox.queue(session, message, now=now, ttl=self._ttl)
        details: dict[str, object] = {'outbox_id': outbox_id, 'template_id': template_id}
        if message.secret:
            details['channel'] = message.channel.value
        elif message.channel is MessageChannel.SMS:
            details['parts'] = sms_parts(message.body).parts
        if _user(actor) is None:
            details['by'] = actor.login
        action = 'message.password' if message.secret else f'message.{message.channel.value}'
        audit.record(session, action, user_id=_user(actor), borrower_id=borrower.id, **details)
        if message.purpose is not Purpose.PASSWORD:
            borrower.last_contact_at = max(filter(None, [borrower.last_contact_at, now]))
        shown = format_phone(message.to) if message.channel is MessageChannel.SMS else message.to
        return Queued(outbox_id, message.channel, message.purpose, shown)

    def _new_password(self, pin: str) -> str:
        try:
            return self._account.reset_password(pin)
        except AccountUnavailable as error:
            log.warning('personal-account site did not reset a password: %s', error.reason)
            raise ServiceError(
                'Сайт личного кабинета не ответил: пароль не сменён и не отправлен. Попробуйте позже.'
            ) from None


def _user(actor: Actor) -> int | None:
    """The user behind the actor; an API token's actor (id 0) is no user."""
    return actor.id if actor.id > 0 else None
