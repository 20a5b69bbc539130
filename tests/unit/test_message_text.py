"""A message's text: the creditor and its phone in it (230-FZ); templates checked on the sample borrower."""

from __future__ import annotations

import pytest

from crm.domain.errors import ServiceError
from crm.domain.messages import Creditor, names_the_creditor
from crm.services.message_text import (
    SAMPLE_PASSWORD,
    VARIABLES,
    check_template,
    render_text,
    sample_variables,
    variables_in,
)

CREDITOR = Creditor('ООО МКК «Демо Займ»', '8 800 555-35-35', 'https://pay.example/')
SIGNED = '{{ creditor_name }}, {{ contact_phone }}'


@pytest.mark.parametrize(
    'text',
    [
        'Оплатите долг. ООО МКК «Демо Займ», 8 800 555-35-35',
        'ооо мкк «демо займ» напоминает: звоните +7 (800) 555-35-35',
        'ООО МКК «ДЕМО ЗАЙМ». Тел. 88005553535',
        'Тел.: 8-800-555-3535 — ООО МКК «Демо Займ»',
        'ООО МКК «Демо Займ»\n+78005553535',
    ],
)
def test_the_creditor_is_named_whatever_the_phones_form(text: str) -> None:
    assert names_the_creditor(text, CREDITOR) is None


def test_a_missing_phone_is_named() -> None:
    missing = names_the_creditor('ООО МКК «Демо Займ» напоминает о платеже', CREDITOR)
    assert missing is not None
    assert 'контактный телефон (8 800 555-35-35)' in missing
    assert 'наименование' not in missing
    assert '230-ФЗ' in missing


def test_a_missing_name_is_named() -> None:
    missing = names_the_creditor('Позвоните 8 800 555-35-35', CREDITOR)
    assert missing is not None
    assert 'наименование кредитора («ООО МКК «Демо Займ»»)' in missing
    assert 'телефон' not in missing


def test_both_missing_are_named_together() -> None:
    missing = names_the_creditor('Оплатите долг', CREDITOR)
    assert missing is not None
    assert 'наименование кредитора' in missing and 'контактный телефон' in missing


@pytest.mark.parametrize('other', ['8 800 555-35-36', '8 495 555-35-35', '555-35-35'])
def test_another_number_is_not_the_creditors_phone(other: str) -> None:
    missing = names_the_creditor(f'ООО МКК «Демо Займ», {other}', CREDITOR)
    assert missing is not None and 'контактный телефон' in missing


def test_a_template_renders_against_the_sample_borrower() -> None:
    rendered = check_template(
        'overdue', 'Долг {{ overdue_amount }}', '{{ name }}, оплатите. ' + SIGNED, CREDITOR
    )
    assert rendered.subject == 'Долг 5 200,00 ₽'
    assert rendered.text == 'Иван Петрович, оплатите. ООО МКК «Демо Займ», 8 800 555-35-35'


def test_the_sample_borrower_has_every_variable() -> None:
    assert set(sample_variables(CREDITOR)) == set(VARIABLES)
    body = ' '.join(f'{{{{ {name} }}}}' for name in VARIABLES)
    assert SAMPLE_PASSWORD in check_template('account_password', None, body, CREDITOR).text


@pytest.mark.parametrize(
    ('body', 'message'),
    [
        ('{{ bogus }} ' + SIGNED, 'Текст шаблона: неизвестная переменная «bogus»'),
        ('{{ name ' + SIGNED, 'Текст шаблона: ошибка в шаблоне'),
        ('{% if name %}без конца ' + SIGNED, 'Текст шаблона: ошибка в шаблоне'),
        ('{{ password }} ' + SIGNED, 'переменной «password»'),  # only «Пароль ЛК» templates get it
        ('{{ "".__class__.__mro__ }} ' + SIGNED, 'Текст шаблона: ошибка в шаблоне'),  # the sandbox
        ('Оплатите долг. {{ creditor_name }}', 'контактный телефон'),
        ('{{ name.foo }} ' + SIGNED, 'Текст шаблона: у переменной нет поля «foo»'),
        ('{{ 1 / 0 }} ' + SIGNED, 'Текст шаблона: ошибка при подстановке значений'),
        ('{{ name(1) }} ' + SIGNED, 'Текст шаблона: ошибка при подстановке значений'),
        ('{{ range(10 ** 9) | list }} ' + SIGNED, 'Текст шаблона: ошибка при подстановке значений'),
    ],
)
def test_bad_templates_are_refused_with_the_field_named(body: str, message: str) -> None:
    with pytest.raises(ServiceError, match=message):
        check_template('overdue', None, body, CREDITOR)


def test_a_bad_subject_names_the_subject() -> None:
    with pytest.raises(ServiceError, match=r'^Тема: неизвестная переменная «nope»'):
        check_template('overdue', '{{ nope }}', SIGNED, CREDITOR)


def test_a_missing_value_is_named_with_what_it_is() -> None:
    with pytest.raises(ServiceError, match='у заёмщика нет значения переменной «promise_date»'):
        render_text('{{ promise_date }}', {'name': 'Иван'})


def test_variables_in_lists_what_a_text_names() -> None:
    assert variables_in('{{ name }} {% if promise_amount %}{{ promise_amount }}{% endif %}') == {
        'name',
        'promise_amount',
    }
    with pytest.raises(ServiceError, match=r'^Тема: ошибка в шаблоне'):
        variables_in('{{ name', field='Тема')
