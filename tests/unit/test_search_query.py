import pytest

from crm.domain.errors import QueryTooShort
from crm.domain.search_query import Email, Identifier, NameParts, parse


@pytest.mark.parametrize('text', ['+7 928 000-99-77', '89280009977', '9280009977', '8 (928) 000-99-77'])
def test_phone_in_any_format_becomes_the_stored_form(text: str) -> None:
    parsed = parse(text)
    assert isinstance(parsed, Identifier)
    assert parsed.phone == '79280009977'


def test_ten_digits_may_be_passport_pin_inn_or_phone() -> None:
    parsed = parse('4510 123456')
    assert isinstance(parsed, Identifier)
    assert (parsed.passport, parsed.pin, parsed.inn, parsed.phone) == (
        '4510123456',
        '4510123456',
        '4510123456',
        '74510123456',
    )


def test_snils_with_dashes_is_eleven_digits() -> None:
    parsed = parse('112-233-445 95')
    assert isinstance(parsed, Identifier)
    assert parsed.snils == '11223344595'
    assert parsed.phone is None  # does not start with 7 or 8


def test_twelve_digits_is_a_person_inn() -> None:
    parsed = parse('500100732259')
    assert isinstance(parsed, Identifier) and parsed.inn == '500100732259' and parsed.phone is None


def test_name_is_normalised_and_split_into_fragments_and_initials() -> None:
    parsed = parse('  Семёнов   Пётр  И. ')
    assert parsed == NameParts(fragments=('семенов', 'петр'), initials=('и',))


@pytest.mark.parametrize('text', ['', ' ', 'а', '7', ' и ', 'и.'])
def test_empty_or_one_letter_is_refused_with_a_hint(text: str) -> None:
    with pytest.raises(QueryTooShort, match='не менее 2 символов'):
        parse(text)


def test_like_wildcards_are_plain_text() -> None:
    parsed = parse('ив%_ан')
    assert isinstance(parsed, NameParts)
    assert parsed.fragments == ('ив', 'ан')


def test_an_email_is_a_key_of_its_own() -> None:
    assert parse(' Ivan.Petrov@Mail.RU ') == Email('ivan.petrov@mail.ru')


def test_a_few_digits_may_be_the_end_of_a_phone_a_pin_or_a_loan_number() -> None:
    parsed = parse('000-99-77')
    assert isinstance(parsed, Identifier)
    assert (parsed.phone_tail, parsed.loan_number, parsed.pin) == ('0009977', '0009977', '0009977')
    assert parse('99').phone_tail is None  # too few digits to mean a phone


def test_letters_and_digits_together_are_a_loan_number() -> None:
    parsed = parse('зм-7441271')
    assert isinstance(parsed, Identifier) and parsed.loan_number == 'ЗМ-7441271'
    assert isinstance(parse('Иванов Пётр'), NameParts)


def test_control_characters_are_spaces() -> None:
    """A NUL from a probe never reaches the database (PostgreSQL refuses it in text); a tab separates."""
    assert parse('\x00ivanov@mail.ru') == parse('ivanov@mail.ru')
    assert parse('Иванов\tИван') == parse('Иванов Иван')
    with pytest.raises(QueryTooShort):
        parse('@\x00')
