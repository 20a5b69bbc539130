"""What a message from the card must pass before it is queued: the borrower, the address, the template,
the text, the law, the password rate. Each refusal is a Russian ``ServiceError``; ``BadMessage`` names
the field it is about (the API answers it with a field-named 422), ``RefusedByLaw`` carries the verdict.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.db.models import Borrower, BorrowerPhone, Communication, MessageTemplate
from crm.domain import formatting as fmt
from crm.domain.contact_rules import Verdict
from crm.domain.errors import NotFound, ServiceError
from crm.domain.identifiers import phone_key
from crm.domain.messages import MESSAGE_CHANNEL_LABELS, PASSWORD_KIND, Creditor, MessageChannel
from crm.domain.sms_text import MAX_PARTS, sms_parts
from crm.services import message_text

PASSWORD_RESETS = 3  # at most this many personal-account passwords per borrower …
PASSWORD_WINDOW = timedelta(minutes=15)  # … within this long
MAX_EMAIL_TEXT = 10_000  # characters of an e-mail's text
MAX_SUBJECT = 300  # the column's size
NO_MOBILE = 'У заёмщика нет мобильного телефона'
NO_EMAIL = 'У заёмщика нет корректного e-mail'

_CONTROL = re.compile(r'[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]')  # control characters but \t \n \r
_EMAIL = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r'@([^\W_]([\w-]{0,61}[^\W_])?\.)+[^\W\d_]{2,63}$'
)


class BadMessage(ServiceError):
    """The message cannot go as it is; ``field``: text, subject, template_id, channel or phone."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class RefusedByLaw(ServiceError):
    """230-FZ forbids the message now: the reason and, if there is one, the next allowed moment."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(law_refusal(verdict))
        self.verdict = verdict


def law_refusal(verdict: Verdict) -> str:
    """«Лимит 230-ФЗ: … Можно будет: 27.11.2026 08:00 МСК», as the call panel says it."""
    reason = verdict.reason or 'Сообщение запрещено 230-ФЗ'
    if verdict.next_allowed_at is not None:
        reason += f'. Можно будет: {fmt.moment(verdict.next_allowed_at)} МСК'
    return reason


# --- the borrower and the address ---------------------------------------------------------------
def borrower(session: Session, borrower_id: int, *, lock: bool = False) -> Borrower:
    """The borrower; ``lock``: the row is locked till the commit, so two sends to one borrower (two
    operators, two tabs) are judged by the ledger one after the other (PostgreSQL; SQLite has one writer).

    Who may send: whoever may open the card — every user (operators take calls from anyone, so
    ``BorrowerService.card`` shows any borrower to any of them).
    """
    statement = select(Borrower).where(Borrower.id == borrower_id)
    found = session.scalars(statement.with_for_update() if lock else statement).first()
    if found is None:
        raise NotFound('Заёмщик не найден')
    return found


def borrower_by_pin(session: Session, pin: str) -> int:
    pin = pin.strip()
    if not pin.isdigit() or len(pin) > 20:  # what no PIN is, PostgreSQL is not asked about (a NUL, say)
        raise NotFound('Заёмщик с таким PIN не найден')
    found = session.scalar(select(Borrower.id).where(Borrower.pin == pin))
    if found is None:
        raise NotFound('Заёмщик с таким PIN не найден')
    return found


def valid_email(address: str | None) -> bool:
    """A plausible address to send to: local@domain.tld, at most 254 characters."""
    if not address:
        return False
    address = address.strip()
    return len(address) <= 254 and _EMAIL.match(address) is not None


def email_of(b: Borrower) -> str | None:
    """The borrower's e-mail if it is one a message can go to."""
    return b.email.strip() if b.email is not None and valid_email(b.email) else None


def email(b: Borrower) -> str:
    address = email_of(b)
    if address is None:
        raise BadMessage(NO_EMAIL, 'channel')
    return address


def mobiles(session: Session, borrower_id: int) -> list[str]:
    """The borrower's mobile phones, the primary one first."""
    return list(
        session.scalars(
            select(BorrowerPhone.phone)
            .where(BorrowerPhone.borrower_id == borrower_id, BorrowerPhone.kind == 'mobile')
            .order_by(BorrowerPhone.is_primary.desc(), BorrowerPhone.id)
        )
    )


def mobile(session: Session, borrower_id: int, wanted: str | None = None) -> str:
    """The number to send to: the given one if it is the borrower's mobile, else the primary mobile."""
    numbers = mobiles(session, borrower_id)
    if not numbers:
        raise BadMessage(NO_MOBILE, 'channel')
    if wanted is None or not wanted.strip():
        return numbers[0]
    number = phone_key(wanted)
    if number not in numbers:
        raise BadMessage('Этот номер не мобильный телефон заёмщика', 'phone')
    return number


def channel(value: MessageChannel | str) -> MessageChannel:
    try:
        return MessageChannel(value)
    except ValueError:
        raise BadMessage('Выберите, как отправить: SMS или E-mail', 'channel') from None


# --- templates -----------------------------------------------------------------------------------
def template(session: Session, template_id: int) -> MessageTemplate:
    found = session.get(MessageTemplate, template_id)
    if found is None or not found.active:
        raise BadMessage('Шаблон не найден или снят с использования', 'template_id')
    return found


def require_template(session: Session, template_id: int | None, to: MessageChannel) -> None:
    """The template a message was made from (recorded in the audit entry) exists and fits the channel."""
    if template_id is None:
        return
    found = template(session, template_id)
    if found.channel != to.value or found.kind == PASSWORD_KIND:
        raise BadMessage(f'Шаблон не для {MESSAGE_CHANNEL_LABELS[to]}', 'template_id')


def password_template(
    session: Session, borrower_id: int, to: MessageChannel, creditor: Creditor
) -> MessageTemplate:
    """The first active «Пароль ЛК» template of the channel, rendered with a stand-in password before the
    site is asked for a real one: the password must be in its text (never in a subject) and the text
    must name the creditor — a template that would fail after the reset is refused before it."""
    found = session.scalars(
        select(MessageTemplate)
        .where(
            MessageTemplate.channel == to.value,
            MessageTemplate.kind == PASSWORD_KIND,
            MessageTemplate.active.is_(True),
        )
        .order_by(MessageTemplate.id)
        .limit(1)
    ).first()
    if found is None:
        raise BadMessage(f'Нет действующего шаблона {MESSAGE_CHANNEL_LABELS[to]} вида «Пароль ЛК»', 'channel')
    probe = message_text.SAMPLE_PASSWORD
    rendered = message_text.render(session, borrower_id, found.subject, found.body, creditor, password=probe)
    if probe not in rendered.text or probe in (rendered.subject or ''):
        raise BadMessage(
            f'В шаблоне «{found.name}» пароль ({{{{ password }}}}) должен быть в тексте и не в теме',
            'channel',
        )
    message_text.require_creditor(rendered, creditor)
    return found


# --- the text ------------------------------------------------------------------------------------
def text(value: str, to: MessageChannel, creditor: Creditor) -> str:
    """The text as it will go: not empty, no control characters, within the size, naming the creditor."""
    value = (value or '').strip()
    if not value:
        raise BadMessage('Введите текст сообщения', 'text')
    if _CONTROL.search(value):
        raise BadMessage('Текст содержит недопустимые (управляющие) символы', 'text')
    if to is MessageChannel.SMS:
        parts = sms_parts(value)
        if parts.too_long:
            raise BadMessage(
                f'Текст SMS не должен быть длиннее {MAX_PARTS} частей, сейчас: {parts.describe()}', 'text'
            )
    elif len(value) > MAX_EMAIL_TEXT:
        raise BadMessage(
            f'Текст письма не должен быть длиннее {MAX_EMAIL_TEXT} символов (сейчас {len(value)})', 'text'
        )
    try:
        message_text.require_creditor(message_text.Rendered(None, value), creditor)
    except ServiceError as error:
        raise BadMessage(error.message, 'text') from None
    return value


def subject(value: str | None) -> str:
    value = (value or '').strip()
    if not value:
        raise BadMessage('Укажите тему письма', 'subject')
    if '\n' in value or '\r' in value or _CONTROL.search(value):
        raise BadMessage('Тема письма — одна строка без управляющих символов', 'subject')
    if len(value) > MAX_SUBJECT:
        raise BadMessage(f'Тема письма не должна быть длиннее {MAX_SUBJECT} символов', 'subject')
    return value


# --- the password's rate -------------------------------------------------------------------------
def require_password_rate(session: Session, borrower_id: int, now: datetime) -> None:
    """At most PASSWORD_RESETS passwords per borrower within PASSWORD_WINDOW (every one counts, sent
    or not: each changed the password at the site)."""
    recent = list(
        session.scalars(
            select(Communication.started_at)
            .where(
                Communication.borrower_id == borrower_id,
                Communication.channel == 'password',
                Communication.started_at > now - PASSWORD_WINDOW,
            )
            .order_by(Communication.started_at.desc())
            .limit(PASSWORD_RESETS)
        )
    )
    if len(recent) < PASSWORD_RESETS:
        return
    again = recent[-1] + PASSWORD_WINDOW
    minutes = int(PASSWORD_WINDOW.total_seconds() // 60)
    raise ServiceError(
        f'Пароль ЛК можно отправить не более {PASSWORD_RESETS} раз за {minutes} минут. '
        f'Можно будет: {fmt.moment(again)} МСК'
    )
