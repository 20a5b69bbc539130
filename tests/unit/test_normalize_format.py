from datetime import UTC, date, datetime
from decimal import Decimal

from crm.domain import formatting as fmt
from crm.domain.identifiers import (
    format_passport,
    format_phone,
    format_snils,
    inn_is_valid,
    inn_with_check_digits,
    name_key,
    phone_key,
    snils_check_digits,
    snils_is_valid,
)
from tests.conftest import TEST_NOW


def test_name_key_folds_case_yo_and_spaces() -> None:
    assert name_key('  СемЁнов   Пётр ') == 'семенов петр'


def test_phone_key() -> None:
    assert phone_key('+7 (928) 000-99-77') == '79280009977'
    assert phone_key('8 928 000 99 77') == '79280009977'
    assert phone_key('12345') is None


def test_inn_check_digits() -> None:
    assert inn_is_valid('500100732259')
    assert inn_is_valid('7830002293')
    assert not inn_is_valid('500100732258')
    assert inn_with_check_digits('5001007322') == '500100732259'


def test_snils_check_digits() -> None:
    assert snils_check_digits('112233445') == '95'
    assert snils_is_valid('112-233-445 95')
    assert not snils_is_valid('112-233-445 96')


def test_display_formats() -> None:
    assert format_snils('11223344595') == '112-233-445 95'
    assert format_passport('4510123456') == '45 10 123456'
    assert format_phone('79280009977') == '+7 928 000-99-77'


def test_money_and_dates_in_russian_format() -> None:
    assert fmt.money(Decimal('70000')) == '70 000,00 ₽'
    assert fmt.money(Decimal('1234567.5')) == '1 234 567,50 ₽'
    assert fmt.day(date(1989, 9, 9)) == '09.09.1989'
    assert fmt.moment(datetime(2026, 11, 26, 9, 5, tzinfo=UTC)) == '26.11.2026 12:05'
    assert fmt.days(1) == '1 день' and fmt.days(3) == '3 дня' and fmt.days(11) == '11 дней'
    assert fmt.percent(Decimal('0.800')) == '0,8%'


def test_borrower_local_time_with_offset() -> None:
    now = TEST_NOW  # 12:00 in Moscow
    assert fmt.local_time('Asia/Yekaterinburg', now) == '14:00 (UTC+5)'
    assert fmt.local_time('Europe/Kaliningrad', now) == '11:00 (UTC+2)'
