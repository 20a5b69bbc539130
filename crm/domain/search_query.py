"""What a search line means: a name in parts, an e-mail, or an identifier (phone or its last digits,
passport, PIN, INN, SNILS, loan number)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from crm.domain.errors import QueryTooLong, QueryTooShort
from crm.domain.identifiers import digits, name_key

MIN_LENGTH = 2
# Nobody types more to find a person (a full name is some 40 characters); a bound on what a query
# may cost the database, whoever sends it (the search line and the API alike).
MAX_LENGTH = 100
MAX_WORDS = 6
TOO_LONG = f'Слишком длинный запрос: не более {MAX_LENGTH} символов и {MAX_WORDS} слов'
TOO_SHORT = 'Введите не менее 2 символов: часть ФИО, телефон, паспорт, PIN, ИНН или СНИЛС'
# What may separate the digits of an identifier as people type it: +7 (928) 000-99-77, 45 10 123456
_IDENTIFIER = re.compile(r'^[\d\s()+\-.]+$')
_NAME_PART = re.compile(r'[^0-9a-zа-я\-]+')
# A loan number as the loan system writes it: letters and digits, maybe a dash or slash (ЗМ-7441271)
_LOAN_NUMBER = re.compile(r'^(?=.*\d)[0-9A-Za-zА-Яа-яЁё\-/]{4,32}$')
PHONE_TAIL = (4, 9)  # how many last digits of a phone an operator types to find it ('0009977')


@dataclass(frozen=True)
class Identifier:
    """A digit string and every stored key it could be, by its length."""

    value: str
    pin: str
    passport: str | None = None
    inn: str | None = None
    snils: str | None = None
    phone: str | None = None
    phone_tail: str | None = None  # the last digits of a phone
    loan_number: str | None = None


@dataclass(frozen=True)
class Email:
    """An e-mail address, compared without regard to case."""

    address: str


@dataclass(frozen=True)
class NameParts:
    """Name fragments in any order; one letter is an initial (matches a word's start)."""

    fragments: tuple[str, ...]
    initials: tuple[str, ...]


def parse(query: str) -> Identifier | Email | NameParts:
    # control characters (NUL from a probe, a tab pasted from a table) are spaces: no database stores NUL
    text = ''.join(' ' if ord(c) < 32 or 127 <= ord(c) < 160 else c for c in query).strip()
    if len(text) > MAX_LENGTH:
        raise QueryTooLong(TOO_LONG)
    if len(text.replace(' ', '')) < MIN_LENGTH:
        raise QueryTooShort(TOO_SHORT)
    if '@' in text and ' ' not in text:
        return Email(text.lower())
    if _IDENTIFIER.match(text) and any(c.isdigit() for c in text):
        return identifier(digits(text))
    if _LOAN_NUMBER.match(text):
        return Identifier(value=text, pin=text, loan_number=text.upper())
    words = [w.strip('-') for w in _NAME_PART.split(name_key(text).replace('.', ' '))]
    words = [w for w in words if w]
    if len(words) > MAX_WORDS:
        raise QueryTooLong(TOO_LONG)
    fragments = tuple(w for w in words if len(w) > 1)
    initials = tuple(w for w in words if len(w) == 1)
    if not fragments:
        raise QueryTooShort(TOO_SHORT)
    return NameParts(fragments=fragments, initials=initials)


def identifier(number: str) -> Identifier:
    if len(number) < MIN_LENGTH:
        raise QueryTooShort(TOO_SHORT)
    found: dict[str, str] = {}
    if len(number) == 10:  # passport, PIN, a company INN, or a phone without the country code
        found = {'passport': number, 'inn': number, 'phone': '7' + number}
    elif len(number) == 11:  # SNILS, or a phone with 7 / 8 in front
        found = {'snils': number}
        if number[0] in '78':
            found['phone'] = '7' + number[1:]
    elif len(number) == 12:
        found = {'inn': number}
    if PHONE_TAIL[0] <= len(number) <= PHONE_TAIL[1]:
        found['phone_tail'] = number
    return Identifier(value=number, pin=number, loan_number=number, **found)
