"""«Видимость полей», the pure part: each mask, the matrix's defaults, a role's row applied to a card and
drawn (hidden fields absent, masked ones masked with «Показать»)."""

from __future__ import annotations

from datetime import date

from crm.domain.field_visibility import (
    API,
    Field,
    Mode,
    Policy,
    birth_date_shown,
    birth_date_text,
    mask,
    mask_address,
    mask_birth_date,
    mask_email,
    mask_inn,
    mask_passport,
    mask_phone,
    mask_snils,
    mask_text,
)
from crm.pages.components import card_markup
from crm.services.field_visibility import card_for, row_for
from crm.services.views import BorrowerRow
from tests.unit.test_card_markup import NOW, card


def test_each_mask() -> None:
    assert mask_phone('79280009977') == '+7 928 ***-**-77'
    assert mask_passport('6010123212') == '60 ** ***212'
    assert mask_inn('500100732259') == '*********259'
    assert mask_inn('7707083893') == '*******893'
    assert mask_snils('11223344595') == '***-***-**5 95'
    assert mask_email('ivanov@mail.ru') == 'i***@mail.ru'
    assert mask_email('broken') == '***'
    assert mask_address('129085, Москва, пр-кт Мира, д. 99', 'Москва') == 'Москва, ***'
    assert mask_address('где-то', None) == '***'
    assert mask_birth_date(1985) == '**.**.1985'
    assert mask_text('ООО «Ромашка»') == 'ООО ***'
    assert mask(Field.BIRTH_DATE, '1985-03-04') == '**.**.1985'
    assert mask(Field.ADDRESS, 'Ростов, ул. 1', city='Ростов-на-Дону') == 'Ростов-на-Дону, ***'


def test_odd_values_still_lose_all_but_their_tails() -> None:
    assert mask_phone('+1 (555) 123-45-67') == '+* (***) ***-**-67'
    assert mask_passport('123') == '123'  # three digits: nothing before the tail to hide
    assert mask_passport('AB1234567') == 'AB****567'


def test_defaults_operators_see_the_documents_masked_the_others_everything() -> None:
    policy = Policy()
    for field in Field:
        expected = Mode.MASKED if field in (Field.PASSPORT, Field.INN, Field.SNILS) else Mode.VISIBLE
        assert policy.mode('operator', field) is expected, field
        assert policy.mode('supervisor', field) is Mode.VISIBLE
        assert policy.mode('admin', field) is Mode.VISIBLE
        assert policy.mode(API, field) is Mode.VISIBLE
        assert policy.mode('somebody', field) is Mode.HIDDEN  # a role the matrix does not know sees nothing


def test_a_cell_overrides_its_default() -> None:
    policy = Policy({('operator', 'passport'): Mode.VISIBLE, ('admin', 'email'): Mode.HIDDEN})
    assert policy.mode('operator', Field.PASSPORT) is Mode.VISIBLE
    assert policy.mode('admin', Field.EMAIL) is Mode.HIDDEN


def test_a_masked_card_is_masked_and_offers_show() -> None:
    row = Policy({('operator', f.value): Mode.MASKED for f in Field}).of('operator')
    seen = card_for(row, card())
    assert seen.passport == '45 ** ***989' and seen.inn == '*********188' and seen.snils == '***-***-**7 28'
    assert seen.birth_date is None and seen.birth_year == 1985
    assert seen.email == 'p***@example.ru' and seen.address == 'Новочеркасск, ***'
    assert seen.employer == 'ООО ***' and seen.passport_issued == 'ГУ ***'
    assert [p.number for p in seen.phones] == ['+7 928 ***-**-77', '+7 934 ***-**-00']
    assert [p.id for p in seen.phones] == [11, 12]  # still dialled by their rows
    assert [c.phone for c in seen.communications] == ['+7 928 ***-**-77']  # the history's numbers too
    top = card_markup.render(seen, NOW).top
    for clear in (
        '4526832989',
        '45 26 832989',
        '773876166188',
        '136-071-217 28',
        'petr@example.ru',
        '79280009977',
    ):
        assert clear not in top, clear
    assert '**.**.1985' in top and '+7 928 ***-**-77' in top
    for field in (
        'passport',
        'inn',
        'snils',
        'birth_date',
        'email',
        'address',
        'employer',
        'passport_issued',
    ):
        assert f'data-reveal="{field}"' in top, field
    assert 'data-reveal="phones" data-phone="11"' in top and 'data-dial="11"' in top


def test_a_hidden_field_is_not_on_the_card_at_all() -> None:
    row = Policy({('operator', f.value): Mode.HIDDEN for f in Field}).of('operator')
    seen = card_for(row, card())
    assert (seen.passport, seen.inn, seen.snils, seen.email, seen.address, seen.employer) == (None,) * 6
    assert seen.birth_date is None and seen.birth_year is None and seen.phones == ()
    assert [c.phone for c in seen.communications] == [None]
    top = card_markup.render(seen, NOW).top
    for label in ('Паспорт', 'ИНН', 'СНИЛС', 'Дата рождения', 'E-mail', 'Адрес', 'Место работы', 'Кем выдан'):
        assert f'<dt>{label}</dt>' not in top, label
    assert 'data-reveal' not in top and 'data-dial' not in top
    assert '<dt>Город</dt>' in top  # not in the matrix: always shown


def test_a_visible_card_is_the_card() -> None:
    row = Policy({('admin', f.value): Mode.VISIBLE for f in Field}).of('admin')
    seen = card_for(row, card())
    assert (
        seen.passport == '4526832989' and seen.phones == card().phones and seen.birth_date == date(1985, 3, 4)
    )
    top = card_markup.render(seen, NOW).top
    assert '45 26 832989' in top and '136-071-217 28' in top and 'data-reveal' not in top


def test_rows_and_birth_dates() -> None:
    row = BorrowerRow(
        id=1,
        pin='1',
        full_name='Иванов Пётр',
        birth_date=date(1985, 3, 4),
        city='Москва',
        phones=('79280009977',),
        passport='4526832989',
        total_debt=0,  # type: ignore[arg-type]
        overdue_amount=0,  # type: ignore[arg-type]
        days_past_due=0,
        last_contact_at=None,
        operator_login=None,
        archived=False,
        loan=None,
    )
    masked = row_for(Policy().of('operator'), row)
    assert masked.passport == '45 ** ***989' and masked.phones == ('79280009977',)
    assert masked.birth_date == date(1985, 3, 4)
    hidden = row_for(
        Policy({('operator', 'phones'): Mode.HIDDEN, ('operator', 'birth_date'): Mode.MASKED}).of('operator'),
        row,
    )
    assert hidden.phones == () and hidden.birth_date is None and hidden.birth_year == 1985
    assert birth_date_text(hidden.birth_date, hidden.birth_year) == '**.**.1985'
    assert birth_date_text(date(1985, 3, 4), 1985) == '1985-03-04' and birth_date_text(None, None) is None
    assert (
        birth_date_shown(None, 1985) == '**.**.1985'
        and birth_date_shown(date(1985, 3, 4), 1985) == '04.03.1985'
    )
    assert birth_date_shown(None, None) == '—'
