"""The text of a message: a template rendered in a Jinja2 sandbox over one borrower's variables.

``StrictUndefined``: a variable the template names and the borrower lacks is an error, never a blank in
a sent message. ``check_template`` renders against a sample borrower when a template is saved (so an
unknown variable or broken syntax is refused then); ``render`` renders for a real borrower when a
message is made, and ``require_creditor`` checks the result names the creditor and its phone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, UndefinedError, meta
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.db.models import Borrower, Communication, Loan
from crm.domain import formatting as fmt
from crm.domain.errors import NotFound, ServiceError
from crm.domain.messages import PASSWORD_KIND, Creditor, names_the_creditor

_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)

# The variables of every template, as the template editor lists them.
VARIABLES: dict[str, str] = {
    'name': 'Имя и отчество («Иван Петрович»)',
    'full_name': 'ФИО полностью',
    'last_name': 'Фамилия',
    'first_name': 'Имя',
    'middle_name': 'Отчество (пусто, если нет)',
    'pin': 'PIN заёмщика',
    'loan_number': 'Номер займа',
    'total_debt': 'Общая задолженность («12 345,00 ₽»)',
    'overdue_amount': 'Просроченная задолженность',
    'monthly_payment': 'Ежемесячный платёж',
    'days_past_due': 'Дней просрочки',
    'due_date': 'Дата платежа по займу',
    'payment_link': 'Ссылка на оплату',
    'creditor_name': 'Наименование кредитора',
    'contact_phone': 'Контактный телефон кредитора',
    'promise_amount': 'Сумма последнего обещания оплаты (только если оно есть)',
    'promise_date': 'Дата последнего обещания оплаты (только если оно есть)',
    'password': 'Новый пароль ЛК (только в шаблонах вида «Пароль ЛК»)',
}
SAMPLE_PASSWORD = 'Ab3dE5gH7k'


@dataclass(frozen=True)
class Rendered:
    subject: str | None
    text: str


def variables_of(session: Session, borrower: Borrower, creditor: Creditor) -> dict[str, Any]:
    """Everything a template may name about this borrower (the newest active loan's figures)."""
    loan = session.scalar(
        select(Loan)
        .where(Loan.borrower_id == borrower.id)
        .order_by((Loan.state == 'active').desc(), Loan.issued_on.desc(), Loan.id.desc())
        .limit(1)
    )
    promise = session.execute(
        select(Communication.promise_amount, Communication.promise_date)
        .where(Communication.borrower_id == borrower.id, Communication.promise_amount.is_not(None))
        .order_by(Communication.started_at.desc())
        .limit(1)
    ).first()
    values: dict[str, Any] = {
        'name': ' '.join(p for p in (borrower.first_name, borrower.middle_name) if p),
        'full_name': borrower.full_name,
        'last_name': borrower.last_name,
        'first_name': borrower.first_name,
        'middle_name': borrower.middle_name or '',
        'pin': borrower.pin,
        'total_debt': fmt.money(borrower.total_debt),
        'overdue_amount': fmt.money(borrower.overdue_amount),
        'monthly_payment': fmt.money(borrower.monthly_payment),
        'days_past_due': borrower.days_past_due,
        'creditor_name': creditor.name,
        'contact_phone': creditor.phone,
        'payment_link': creditor.payment_url,
    }
    if loan is not None:
        values |= {'loan_number': loan.number, 'due_date': fmt.day(loan.due_on)}
    if promise is not None:
        values |= {'promise_amount': fmt.money(promise[0]), 'promise_date': fmt.day(promise[1])}
    return values


def sample_variables(creditor: Creditor) -> dict[str, Any]:
    """A made-up borrower with every variable, for checking a template at save time and previews."""
    return {
        'name': 'Иван Петрович',
        'full_name': 'Иванов Иван Петрович',
        'last_name': 'Иванов',
        'first_name': 'Иван',
        'middle_name': 'Петрович',
        'pin': '1000001',
        'loan_number': 'DZ-000001',
        'total_debt': fmt.money(Decimal('15400')),
        'overdue_amount': fmt.money(Decimal('5200')),
        'monthly_payment': fmt.money(Decimal('3100')),
        'days_past_due': 12,
        'due_date': fmt.day(date(2026, 12, 15)),
        'payment_link': creditor.payment_url,
        'creditor_name': creditor.name,
        'contact_phone': creditor.phone,
        'promise_amount': fmt.money(Decimal('5200')),
        'promise_date': fmt.day(date(2026, 12, 20)),
        'password': SAMPLE_PASSWORD,
    }


def render_text(source: str, values: dict[str, Any], *, field: str = 'Текст') -> str:
    """One template text; a Russian ServiceError naming the field for broken syntax or a missing variable."""
    return render_compiled(compile_text(source, field=field), values, field=field)


def compile_text(source: str, *, field: str = 'Текст') -> Template:
    """A template text compiled once, for rendering it for many borrowers (a mailing's batch)."""
    try:
        return _ENV.from_string(source)
    except TemplateError as error:
        raise ServiceError(f'{field}: {_syntax(error)}') from None


def render_compiled(template: Template, values: dict[str, Any], *, field: str = 'Текст') -> str:
    """``render_text`` of a compiled text: the same result and the same Russian errors."""
    try:
        return template.render(values).strip()
    except UndefinedError as error:
        raise ServiceError(f'{field}: {_undefined(error)}') from None
    except TemplateError as error:
        raise ServiceError(f'{field}: {_syntax(error)}') from None
    except (ArithmeticError, LookupError, TypeError, ValueError) as error:  # {{ 1/0 }}, {{ name(1) }}
        raise ServiceError(f'{field}: ошибка при подстановке значений: {error}') from None


def variables_in(source: str, *, field: str = 'Текст') -> frozenset[str]:
    """The variables a template text names (a Russian ServiceError naming the field for broken syntax)."""
    try:
        return frozenset(meta.find_undeclared_variables(_ENV.parse(source)))
    except TemplateError as error:
        raise ServiceError(f'{field}: {_syntax(error)}') from None


def _syntax(error: TemplateError) -> str:
    line = getattr(error, 'lineno', None)
    where = f' (строка {line})' if line else ''
    return f'ошибка в шаблоне{where}: {error.message or error}'


def _undefined(error: UndefinedError) -> str:
    message = str(error.message or error)
    if 'has no attribute' in message:  # {{ name.foo }}: "'str object' has no attribute 'foo'"
        return f'у переменной нет поля «{message.rsplit(chr(39), 2)[-2]}»'
    name = message.split("'")[1] if message.count("'") >= 2 else message
    if name in VARIABLES:
        return f'у заёмщика нет значения переменной «{name}» ({VARIABLES[name]})'
    return f'неизвестная переменная «{name}»'


def check_template(kind: str, subject: str | None, body: str, creditor: Creditor) -> Rendered:
    """Render against the sample borrower: broken syntax, an unknown variable, or a text that does not
    name the creditor is refused (what a template is saved with)."""
    values = sample_variables(creditor)
    if kind != PASSWORD_KIND:
        values.pop('password')
    rendered = Rendered(
        render_text(subject, values, field='Тема') if subject is not None else None,
        render_text(body, values, field='Текст шаблона'),
    )
    require_creditor(rendered, creditor)
    return rendered


def render(
    session: Session,
    borrower_id: int,
    subject: str | None,
    body: str,
    creditor: Creditor,
    *,
    password: str | None = None,
) -> Rendered:
    """The message for a real borrower; ``password`` only for a personal-account password message."""
    borrower = session.get(Borrower, borrower_id)
    if borrower is None:
        raise NotFound('Заёмщик не найден')
    values = variables_of(session, borrower, creditor)
    if password is not None:
        values['password'] = password
    rendered = Rendered(
        render_text(subject, values, field='Тема') if subject is not None else None,
        render_text(body, values),
    )
    return rendered


def require_creditor(rendered: Rendered, creditor: Creditor) -> None:
    """Every message to a debtor names the creditor and gives a contact phone, in its text."""
    missing = names_the_creditor(rendered.text, creditor)
    if missing is not None:
        raise ServiceError(missing)
