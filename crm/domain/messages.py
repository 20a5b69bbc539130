"""Outgoing messages: template kinds, what a message is for (230-FZ), its states and their Russian labels."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class MessageChannel(StrEnum):
    SMS = 'sms'
    EMAIL = 'email'


MESSAGE_CHANNEL_LABELS = {MessageChannel.SMS: 'SMS', MessageChannel.EMAIL: 'E-mail'}

# «Вид шаблона»: the kinds templates are grouped by. ``account_password`` templates get ``password``.
TEMPLATE_KINDS: dict[str, str] = {
    'payment_reminder': 'Напоминание о платеже',
    'overdue': 'Просрочка',
    'promise': 'Обещание оплаты',
    'requisites': 'Реквизиты',
    'account_password': 'Пароль ЛК',
    'chat_answer': 'Ответ в чат',
    'other': 'Прочее',
}
PASSWORD_KIND = 'account_password'


class Purpose(StrEnum):
    """What a message is for, which decides whether the 230-FZ message limits count it.

    Only messages about the debt that the creditor starts count (``COLLECTION``: from the card or a
    mailing to a borrower with overdue debt). A reminder to a borrower without overdue debt is a
    ``SERVICE`` message; the personal-account password and replies inside a chat the borrower started
    are not collection contacts either: recorded, not limited.
    """

    COLLECTION = 'collection'
    SERVICE = 'service'
    PASSWORD = 'password'
    REPLY = 'reply'


class OutboxStatus(StrEnum):
    QUEUED = 'queued'  # waiting for its moment (``not_before``), possibly held by the law
    SENDING = 'sending'  # claimed by a dispatcher (a lease: if it dies, the row is due again)
    SENT = 'sent'  # the gateway accepted it
    DELIVERED = 'delivered'  # the gateway reported it delivered (SMS)
    FAILED = 'failed'  # refused by the gateway, or out of attempts
    EXPIRED = 'expired'  # its moment passed before it could go
    REFUSED = 'refused'  # refused by the law (a legal status, or no allowed moment before it expired)
    CANCELLED = 'cancelled'  # its mailing was cancelled before it went
    PAUSED = 'paused'  # its mailing is paused: queued again when it is resumed, never claimed meanwhile


OUTBOX_STATUS_LABELS: dict[str, str] = {
    OutboxStatus.QUEUED: 'В очереди',
    OutboxStatus.SENDING: 'Отправляется',
    OutboxStatus.SENT: 'Отправлено',
    OutboxStatus.DELIVERED: 'Доставлено',
    OutboxStatus.FAILED: 'Ошибка',
    OutboxStatus.EXPIRED: 'Истёк срок',
    OutboxStatus.REFUSED: 'Запрещено 230-ФЗ',
    OutboxStatus.CANCELLED: 'Отменено',
    OutboxStatus.PAUSED: 'Рассылка на паузе',
}
WAITING = frozenset({OutboxStatus.QUEUED, OutboxStatus.SENDING, OutboxStatus.PAUSED})
FINAL = frozenset(
    {
        OutboxStatus.DELIVERED,
        OutboxStatus.FAILED,
        OutboxStatus.EXPIRED,
        OutboxStatus.REFUSED,
        OutboxStatus.CANCELLED,
    }
)
# Not counted by the 230-FZ ledger: these never reached the borrower.
NOT_SENT = frozenset(
    {OutboxStatus.FAILED, OutboxStatus.EXPIRED, OutboxStatus.REFUSED, OutboxStatus.CANCELLED}
)

PASSWORD_MASK = '••••••••'


@dataclass(frozen=True)
class Creditor:
    """Who the messages are from: every message to a debtor names it and gives its contact phone."""

    name: str
    phone: str
    payment_url: str


def names_the_creditor(text: str, creditor: Creditor) -> str | None:
    """None if the text names the creditor and gives its contact phone, else what is missing (Russian).

    The phone is found by its digits, whatever the spaces, dashes or brackets between them, and with
    8 or +7 in front alike.
    """
    missing = []
    if creditor.name.casefold() not in text.casefold():
        missing.append(f'наименование кредитора («{creditor.name}»)')
    phone = _national(creditor.phone)
    if phone and phone not in _national(text, keep_all=True):
        missing.append(f'контактный телефон ({creditor.phone})')
    if not missing:
        return None
    return 'В сообщении должник должен видеть ' + ' и '.join(missing) + ' (230-ФЗ, с 01.09.2025)'


def _national(text: str, *, keep_all: bool = False) -> str:
    """Digits with a leading 8 or 7 of an 11-digit number dropped; every run of digits, if keep_all."""
    runs = re.findall(r'[\d\s()\-+]+', text) if keep_all else [text]
    out = []
    for run in runs:
        number = re.sub(r'\D', '', run)
        if len(number) == 11 and number[0] in '78':
            number = number[1:]
        out.append(number)
    return '|'.join(out)
