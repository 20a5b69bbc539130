"""What a search line means: a name in parts, or an identifier (phone, passport, PIN, INN, SNILS)."""

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


@dataclass(frozen=True)
class Identifier:
    """A digit string and every stored key it could be, by its length."""

    value: str
    pin: str
    passport: str | None = None
    inn: str | None = None
    snils: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class NameParts:
    """Name fragments in any order; one letter is an initial (matches a word's start)."""

    fragments: tuple[str, ...]
    initials: tuple[str, ...]


def parse(query: str) -> Identifier | NameParts:
    text = query.strip()
    if len(text) > MAX_LENGTH:
        raise QueryTooLong(TOO_LONG)
    if len(text.replace(' ', '')) < MIN_LENGTH:
        raise QueryTooShort(TOO_SHORT)
    if _IDENTIFIER.match(text) and any(c.isdigit() for c in text):
        return identifier(digits(text))
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
    return Identifier(value=number, pin=number, **found)
