"""Demo message templates: one SMS of every kind and the e-mails an operator sends most.

They name the creditor and its phone through ``{{ creditor_name }}`` and ``{{ contact_phone }}``, so they
hold for whatever CRM_CREDITOR_NAME / CRM_CREDITOR_PHONE say; the SMS ones fit in two UCS-2 parts for the
sample borrower. ``tests/unit/test_demo_templates.py`` checks each one the way the editor would save it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from crm.db.models import MessageTemplate, User
from crm.domain import Role
from crm.domain.clock import Clock
from crm.domain.formatting import OFFICE_TZ

_SIGNED = '{{ creditor_name }}, {{ contact_phone }}'


class DemoTemplate(NamedTuple):
    channel: str
    kind: str
    name: str
    subject: str | None
    body: str


DEMO_TEMPLATES: tuple[DemoTemplate, ...] = (
    DemoTemplate(
        'sms',
        'payment_reminder',
        'Платёж через 3 дня',
        None,
        '{{ name }}, напоминаем: платёж {{ monthly_payment }} по займу № {{ loan_number }} '
        f'до {{{{ due_date }}}}. {_SIGNED}',
    ),
    DemoTemplate(
        'sms',
        'overdue',
        'Просрочка: сумма и ссылка на оплату',
        None,
        'Просрочка по займу № {{ loan_number }}: {{ overdue_amount }}. '
        f'Оплатите: {{{{ payment_link }}}} {_SIGNED}',
    ),
    DemoTemplate(
        'sms',
        'overdue',
        'Просрочка: просьба перезвонить',
        None,
        '{{ name }}, не можем дозвониться до вас по займу № {{ loan_number }}. '
        'Перезвоните: {{ contact_phone }}. {{ creditor_name }}',
    ),
    DemoTemplate(
        'sms',
        'promise',
        'Подтверждение обещания оплаты',
        None,
        '{{ name }}, ждём оплату {{ promise_amount }} до {{ promise_date }}, как договорились. '
        f'{_SIGNED}',
    ),
    DemoTemplate(
        'sms',
        'requisites',
        'Ссылка на оплату',
        None,
        f'Оплата займа № {{{{ loan_number }}}} онлайн: {{{{ payment_link }}}} {_SIGNED}',
    ),
    DemoTemplate(
        'sms',
        'account_password',
        'Пароль ЛК',
        None,
        'Пароль от личного кабинета: {{ password }}. Никому его не сообщайте. ' + _SIGNED,
    ),
    DemoTemplate(
        'sms',
        'chat_answer',
        'Ответ в чат: сумма долга',
        None,
        'Долг по займу № {{ loan_number }}: {{ total_debt }}, из них просрочено {{ overdue_amount }}. '
        + _SIGNED,
    ),
    DemoTemplate(
        'sms',
        'chat_answer',
        'Ответ в чат: как оплатить',
        None,
        f'Оплатить можно картой по ссылке {{{{ payment_link }}}} или в личном кабинете. {_SIGNED}',
    ),
    DemoTemplate(
        'email',
        'overdue',
        'Уведомление о просроченной задолженности',
        'Просроченная задолженность по займу № {{ loan_number }}',
        'Здравствуйте, {{ name }}!\n\n'
        'По договору займа № {{ loan_number }} просрочен платёж: {{ days_past_due }} дн., '
        'просроченная задолженность {{ overdue_amount }}, общая задолженность {{ total_debt }}.\n\n'
        'Просим погасить просроченную задолженность или связаться с нами, чтобы обсудить удобный '
        'график: {{ contact_phone }}.\n\nОплатить онлайн: {{ payment_link }}\n\n'
        'С уважением,\n{{ creditor_name }}',
    ),
    DemoTemplate(
        'email',
        'requisites',
        'Реквизиты для оплаты',
        'Реквизиты для оплаты займа № {{ loan_number }}',
        'Здравствуйте, {{ name }}!\n\n'
        'Оплатить заём № {{ loan_number }} можно онлайн по ссылке {{ payment_link }} '
        'или переводом из любого банка.\n\n'
        'Получатель: {{ creditor_name }}\n'
        'Назначение платежа: погашение займа № {{ loan_number }}, {{ full_name }}\n'
        'Ежемесячный платёж: {{ monthly_payment }}, дата платежа: {{ due_date }}.\n\n'
        'Вопросы по оплате: {{ contact_phone }}.\n\n'
        'С уважением,\n{{ creditor_name }}',
    ),
    DemoTemplate(
        'email',
        'account_password',
        'Пароль ЛК',
        'Новый пароль от личного кабинета',
        'Здравствуйте, {{ name }}!\n\n'
        'Ваш новый пароль от личного кабинета: {{ password }}\n\n'
        'Никому его не сообщайте, сотрудники его не спрашивают. Если вы не просили новый пароль, '
        'позвоните нам: {{ contact_phone }}.\n\n'
        'С уважением,\n{{ creditor_name }}',
    ),
)


def seed_templates(session: Session, today: date) -> int:
    """Add the demo templates, written by the demo administrator a month before ``today``."""
    admin_id = session.scalar(select(User.id).where(User.role == Role.ADMIN.value).order_by(User.id).limit(1))
    written = datetime.combine(today - timedelta(days=30), time(7, 0), tzinfo=UTC)
    session.add_all(
        MessageTemplate(
            channel=t.channel,
            kind=t.kind,
            name=t.name,
            subject=t.subject,
            body=t.body,
            active=True,
            updated_by=admin_id,
            updated_at=written,
        )
        for t in DEMO_TEMPLATES
    )
    session.flush()
    return len(DEMO_TEMPLATES)


def seed_missing_templates(sessions: sessionmaker[Session], clock: Clock) -> int:
    """A demo database filled before there were templates gets them; one with any template is left as is."""
    with sessions.begin() as session:
        if session.scalar(select(func.count()).select_from(MessageTemplate)):
            return 0
        return seed_templates(session, clock().astimezone(OFFICE_TZ).date())
