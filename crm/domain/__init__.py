"""Reference values shared by services, pages and demo data (codes in English, labels in Russian)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    OPERATOR = 'operator'
    SUPERVISOR = 'supervisor'
    ADMIN = 'admin'


ROLE_LABELS = {
    Role.OPERATOR: 'Сотрудник',
    Role.SUPERVISOR: 'Руководитель группы',
    Role.ADMIN: 'Администратор',
}

CHANNEL_LABELS = {
    'call_in': 'Входящий звонок',
    'call_out': 'Исходящий звонок',
    'sms': 'SMS',
    'email': 'E-mail',
    'chat': 'Чат',
    'password': 'Пароль ЛК',
    'note': 'Заметка',
    'visit': 'Личная встреча',
    'letter': 'Почтовое письмо',
    'call_other': 'Звонок с другого телефона',
    'call_in_other': 'Входящий на другой номер',
    'payment': 'Платёж',
    'product': 'Доп. продукт',
}

# An e-mail the borrower sent (channel 'email', direction 'in'): the card's title, a request's subject.
INBOUND_EMAIL_LABEL = 'Входящее письмо'

# Results of a contact; "reached" tells whether the borrower was actually spoken to.
RESULT_CODES: dict[str, tuple[str, bool]] = {
    'promise': ('Обещание оплаты', True),
    'refusal': ('Отказ от оплаты', True),
    'wrong_number': ('Неверный номер', False),
    'no_answer': ('Не дозвонились', False),
    'callback': ('Перезвонить', True),
    'third_party': ('Третье лицо', False),
    'consultation': ('Консультация', True),
    'paid': ('Оплачено', True),
}

LOAN_STATES = {'active': 'Действующий', 'closed': 'Закрыт', 'archived': 'В архиве'}

# Loan and application statuses of the lender's loan system: code -> name.
LOAN_STATUSES: dict[int, str] = {
    1000: 'Заявление создано',
    1100: 'Заявление на проверке',
    1200: 'Заявление передано на андеррайтинг',
    1300: 'Заявление одобрено',
    1400: 'Заявление отклонено',
    2000: 'Заём выдан',
    2100: 'Платёж по графику',
    3000: 'Просрочка',
    3100: 'Реструктуризация',
    3200: 'Досудебное урегулирование',
    4000: 'Заём погашен',
    4100: 'Заём закрыт досрочно',
    5000: 'Передан в архив',
}


def status_label(code: int, name: str) -> str:
    """'Заявление передано на андеррайтинг (1200)' — the form the seed shows."""
    return f'{name} ({code})'


def overdue_bucket(days_past_due: int) -> str:
    """Collection bucket of a loan by days past due."""
    if days_past_due <= 0:
        return 'В графике'
    if days_past_due <= 5:
        return '1–5 дней'
    if days_past_due <= 30:
        return '6–30 дней'
    if days_past_due <= 90:
        return '31–90 дней'
    return '90+ дней'
