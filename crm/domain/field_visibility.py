"""«Видимость полей»: which of a borrower's personal fields a role sees hidden, masked or in clear.

Pure: the fields and their Russian labels, the three modes, one mask per field and the ``Policy`` (the
admin's matrix role × field). Services apply it where borrower data leaves them (the card, search, the
list, CSV exports, the HTTP API); a masked value is revealed only by an explicit, audited action.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from crm.domain import ROLE_LABELS as PERSON_ROLES
from crm.domain import Role
from crm.domain.formatting import day


class Mode(StrEnum):
    HIDDEN = 'hidden'
    MASKED = 'masked'
    VISIBLE = 'visible'


MODE_LABELS = {Mode.HIDDEN: 'Скрыто', Mode.MASKED: 'Маска', Mode.VISIBLE: 'Видно'}


class Field(StrEnum):
    PASSPORT = 'passport'
    PASSPORT_ISSUED = 'passport_issued'
    INN = 'inn'
    SNILS = 'snils'
    BIRTH_DATE = 'birth_date'
    ADDRESS = 'address'
    PHONES = 'phones'
    EMAIL = 'email'
    EMPLOYER = 'employer'


FIELD_LABELS = {
    Field.PASSPORT: 'Паспорт',
    Field.PASSPORT_ISSUED: 'Кем выдан паспорт',
    Field.INN: 'ИНН',
    Field.SNILS: 'СНИЛС',
    Field.BIRTH_DATE: 'Дата рождения',
    Field.ADDRESS: 'Адрес',
    Field.PHONES: 'Телефоны',
    Field.EMAIL: 'E-mail',
    Field.EMPLOYER: 'Место работы',
}

# The matrix's rows: the three roles, and the HTTP API (a token is not a person: its own row).
API = 'api'
ROLE_LABELS: Mapping[str, str] = {
    **{role.value: label for role, label in PERSON_ROLES.items()},
    API: 'HTTP API',
}
ROLES = tuple(ROLE_LABELS)

# What a cell without a row means (migration 0015 seeds the same): operators see the documents masked;
# supervisors, admins and the API see everything.
DEFAULTS: Mapping[tuple[str, Field], Mode] = {
    (Role.OPERATOR.value, Field.PASSPORT): Mode.MASKED,
    (Role.OPERATOR.value, Field.INN): Mode.MASKED,
    (Role.OPERATOR.value, Field.SNILS): Mode.MASKED,
}

_DIGIT = re.compile(r'\d')


def _star_digits_but_last(text: str, keep: int) -> str:
    """Every digit a star but the last ``keep`` ones; the rest of the text as it was."""
    total = len(_DIGIT.findall(text))
    seen = 0

    def star(match: re.Match[str]) -> str:
        nonlocal seen
        seen += 1
        return match.group() if seen > total - keep else '*'

    return _DIGIT.sub(star, text)


def mask_phone(phone: str) -> str:
    """'79280009977' -> '+7 928 ***-**-77': the operator and region stay, so the number is recognisable."""
    if len(phone) == 11 and phone.isdigit():
        return f'+{phone[0]} {phone[1:4]} ***-**-{phone[9:]}'
    return _star_digits_but_last(phone, 2)


def mask_passport(passport: str) -> str:
    """'6010123212' -> '60 ** ***212': the region's two digits and the number's last three."""
    if len(passport) == 10 and passport.isdigit():
        return f'{passport[:2]} ** ***{passport[7:]}'
    return _star_digits_but_last(passport, 3)


def mask_inn(inn: str) -> str:
    """'500100732259' -> '*********259'."""
    return _star_digits_but_last(inn, 3)


def mask_snils(snils: str) -> str:
    """'11223344595' -> '***-***-**5 95' (the display form, the last three digits kept)."""
    shown = f'{snils[:3]}-{snils[3:6]}-{snils[6:9]} {snils[9:]}' if len(snils) == 11 else snils
    return _star_digits_but_last(shown, 3)


def mask_email(email: str) -> str:
    """'ivanov@mail.ru' -> 'i***@mail.ru'."""
    name, at, domain = email.partition('@')
    return f'{name[:1]}***@{domain}' if at else '***'


def mask_address(address: str, city: str | None) -> str:
    """The city only: '129085, Москва, пр-кт Мира, д. 99' -> 'Москва, ***'."""
    return f'{city}, ***' if city else '***'


def mask_birth_date(year: int) -> str:
    """The year only: '**.**.1985'."""
    return f'**.**.{year}'


def mask_text(text: str) -> str:
    """A free text (employer, issuing authority): its first word."""
    first = text.split(maxsplit=1)
    return f'{first[0]} ***' if first else '***'


_MASKS = {
    Field.PASSPORT: mask_passport,
    Field.PASSPORT_ISSUED: mask_text,
    Field.INN: mask_inn,
    Field.SNILS: mask_snils,
    Field.PHONES: mask_phone,
    Field.EMAIL: mask_email,
    Field.EMPLOYER: mask_text,
}


def mask(name: Field, value: str, *, city: str | None = None) -> str:
    """The masked form of a text field (birth date: ``mask_birth_date``; address: the city)."""
    if name is Field.ADDRESS:
        return mask_address(value, city)
    if name is Field.BIRTH_DATE:
        return mask_birth_date(date.fromisoformat(value).year)
    return _MASKS[name](value)


@dataclass(frozen=True)
class Policy:
    """The matrix: a mode per (role, field); a missing cell is its default (``DEFAULTS``, else visible)."""

    cells: Mapping[tuple[str, str], Mode] = field(default_factory=dict)
    version: int = 0

    def mode(self, role: str, name: Field) -> Mode:
        found = self.cells.get((role, name))
        if found is not None:
            return found
        return DEFAULTS.get((role, name), Mode.VISIBLE) if role in ROLE_LABELS else Mode.HIDDEN

    def of(self, role: str) -> RoleView:
        return RoleView({name: self.mode(role, name) for name in Field})


@dataclass(frozen=True)
class RoleView:
    """One role's row of the matrix, and the field-by-field application of it."""

    modes: Mapping[Field, Mode]

    def text(self, name: Field, value: str | None, *, city: str | None = None) -> str | None:
        """The value as this role may see it: itself, masked, or None (hidden)."""
        if value is None:
            return None
        mode = self.modes[name]
        if mode is Mode.VISIBLE:
            return value
        return mask(name, value, city=city) if mode is Mode.MASKED else None

    def birth_date(self, value: date) -> tuple[date | None, int | None]:
        """(the date, the year): both when visible, the year only when masked, neither when hidden."""
        mode = self.modes[Field.BIRTH_DATE]
        if mode is Mode.VISIBLE:
            return value, value.year
        return (None, value.year) if mode is Mode.MASKED else (None, None)

    def phones(self, numbers: tuple[str, ...]) -> tuple[str, ...]:
        """Masked numbers (still dialled by their row: see the card), or none at all when hidden."""
        mode = self.modes[Field.PHONES]
        if mode is Mode.VISIBLE:
            return numbers
        return tuple(mask_phone(n) for n in numbers) if mode is Mode.MASKED else ()

    def masked(self) -> frozenset[Field]:
        return frozenset(name for name, mode in self.modes.items() if mode is Mode.MASKED)

    def hidden(self) -> frozenset[Field]:
        return frozenset(name for name, mode in self.modes.items() if mode is Mode.HIDDEN)


def birth_date_text(value: date | None, year: int | None) -> str | None:
    """What a birth date shows after ``RoleView.birth_date``: ISO date, the masked year, or None."""
    if value is not None:
        return value.isoformat()
    return mask_birth_date(year) if year is not None else None


def birth_date_shown(value: date | None, year: int | None) -> str:
    """The birth date as a page shows it: 'ДД.ММ.ГГГГ', the masked year, or '—' when hidden."""
    if value is not None:
        return day(value)
    return mask_birth_date(year) if year is not None else '—'
