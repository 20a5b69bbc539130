"""Normal forms of names and identifiers, shared by writes and by search so both agree."""

from __future__ import annotations

import re

_SPACES = re.compile(r'\s+')
_NOT_DIGIT = re.compile(r'\D')


def name_key(text: str) -> str:
    """Lower case, ё→е, single spaces: 'Семёнов  Пётр' -> 'семенов петр'."""
    return _SPACES.sub(' ', text.lower().replace('ё', 'е')).strip()


def digits(text: str) -> str:
    return _NOT_DIGIT.sub('', text)


def phone_key(text: str) -> str | None:
    """A Russian phone in the stored form 7XXXXXXXXXX, or None if it cannot be one.

    Accepts +7 928 000-99-77, 8 (928) 000-99-77, 89280009977 and 9280009977.
    """
    number = digits(text)
    if len(number) == 10:
        return '7' + number
    if len(number) == 11 and number[0] in '78':
        return '7' + number[1:]
    return None


def inn_is_valid(inn: str) -> bool:
    """Check digits of a 10-digit (organisation) or 12-digit (person) INN."""
    if not inn.isdigit() or len(inn) not in (10, 12):
        return False
    values = [int(c) for c in inn]

    def check(weights: list[int]) -> int:
        return sum(w * v for w, v in zip(weights, values, strict=False)) % 11 % 10

    if len(inn) == 10:
        return check([2, 4, 10, 3, 5, 9, 4, 6, 8]) == values[9]
    return (
        check([7, 2, 4, 10, 3, 5, 9, 4, 6, 8]) == values[10]
        and check([3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8]) == values[11]
    )


def inn_with_check_digits(first_ten: str) -> str:
    """Complete the first ten digits of a person's INN with its two check digits."""
    values = [int(c) for c in first_ten]
    d11 = sum(w * v for w, v in zip([7, 2, 4, 10, 3, 5, 9, 4, 6, 8], values, strict=True)) % 11 % 10
    values.append(d11)
    d12 = sum(w * v for w, v in zip([3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8], values, strict=True)) % 11 % 10
    return first_ten + str(d11) + str(d12)


def snils_check_digits(first_nine: str) -> str:
    """The two check digits of a SNILS whose first nine digits are given."""
    total = sum(int(c) * (9 - i) for i, c in enumerate(first_nine))
    if total > 101:
        total %= 101
    return '00' if total in (100, 101) else f'{total:02d}'


def snils_is_valid(snils: str) -> bool:
    number = digits(snils)
    if len(number) != 11:
        return False
    if int(number[:9]) <= 1001998:  # numbers up to 001-001-998 carry no meaningful check
        return True
    return snils_check_digits(number[:9]) == number[9:]


def format_snils(snils: str) -> str:
    """'11223344595' -> '112-233-445 95'."""
    return f'{snils[:3]}-{snils[3:6]}-{snils[6:9]} {snils[9:]}' if len(snils) == 11 else snils


def format_passport(passport: str) -> str:
    """'4510123456' -> '45 10 123456'."""
    return f'{passport[:2]} {passport[2:4]} {passport[4:]}' if len(passport) == 10 else passport


def format_phone(phone: str) -> str:
    """'79280009977' -> '+7 928 000-99-77'."""
    if len(phone) == 11:
        return f'+{phone[0]} {phone[1:4]} {phone[4:7]}-{phone[7:9]}-{phone[9:]}'
    return phone
