"""Borrowers and users with known identifiers, made for one test and unique across the run."""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crm.db.models import Borrower, BorrowerPhone, Loan, User, UserGroup
from crm.domain import Role
from crm.domain.identifiers import inn_with_check_digits, name_key, snils_check_digits
from crm.domain.passwords import hash_password
from tests.conftest import TEST_NOW

_counter = itertools.count(1)
_PASSWORD_HASHES: dict[str, str] = {}


def unique() -> int:
    return next(_counter)


def make_user(
    sessions: sessionmaker[Session], *, role: Role = Role.OPERATOR, password: str = 'secret'
) -> User:
    n = unique()
    if password not in _PASSWORD_HASHES:
        _PASSWORD_HASHES[password] = hash_password(password)
    with sessions.begin() as session:
        user = User(
            login=f'test_user_{n}',
            email=f'test_user_{n}@lender.example',
            full_name=f'Тестовый Пользователь {n}',
            password_hash=_PASSWORD_HASHES[password],
            role=role,
            active=True,
            extension=f'9{n:03d}',
            created_at=TEST_NOW,
        )
        session.add(user)
    return user


def make_operator_led_by(sessions: sessionmaker[Session], supervisor_login: str = 'supervisor') -> User:
    """A new operator in the group the supervisor leads (the demo's ``supervisor`` by default): on their
    «Мониторинг»."""
    operator = make_user(sessions, role=Role.OPERATOR)
    with sessions.begin() as session:
        supervisor_id = session.scalar(select(User.id).where(User.login == supervisor_login))
        group_id = session.scalar(select(UserGroup.id).where(UserGroup.supervisor_id == supervisor_id))
        session.get_one(User, operator.id).group_id = group_id
    return operator


def make_borrower(
    sessions: sessionmaker[Session],
    *,
    last: str = 'Тестов',
    first: str = 'Тест',
    middle: str | None = 'Тестович',
    phones: tuple[str, ...] = (),
    operator_id: int | None = None,
    archived: bool = False,
    overdue: Decimal = Decimal(0),
    days_past_due: int = 0,
) -> Borrower:
    """A borrower with unique PIN, passport, INN and SNILS derived from a run-wide counter."""
    n = unique()
    snils9 = f'{500_000_000 + n:09d}'
    with sessions.begin() as session:
        borrower = Borrower(
            pin=f'{9_000_000_000 + n}',
            last_name=last,
            first_name=first,
            middle_name=middle,
            search_name=name_key(' '.join(p for p in (last, first, middle) if p)),
            birth_date=date(1989, 9, 9),
            inn=inn_with_check_digits(f'{7_700_000_000 + n:010d}'),
            snils=snils9 + snils_check_digits(snils9),
            passport=f'{9900_000000 + n:010d}',
            city='Москва',
            timezone='Europe/Moscow',
            address='129085, Москва, пр-кт Мира, д. 99, кв. 1',
            employer='Пенсионер',
            monthly_payment=Decimal('70000'),
            assigned_operator_id=operator_id,
            archived=archived,
            total_debt=overdue,
            overdue_amount=overdue,
            days_past_due=days_past_due,
            created_at=TEST_NOW,
            phones=[BorrowerPhone(phone=p, kind='mobile', is_primary=i == 0) for i, p in enumerate(phones)],
            loans=[
                Loan(
                    number=f'T{n:07d}',
                    product='ILS ГлавПотреб',
                    amount=Decimal('30000'),
                    term_days=30,
                    rate=Decimal('0.8'),
                    issued_on=date(2026, 9, 1),
                    due_on=date(2026, 10, 1),
                    state='archived' if archived else 'active',
                    status_code=1200,
                    status_name='Заявление передано на андеррайтинг',
                    principal_outstanding=overdue,
                    total_debt=overdue,
                    overdue_amount=overdue,
                    days_past_due=days_past_due,
                )
            ],
        )
        session.add(borrower)
    return borrower


def unique_phone() -> str:
    return f'7999{unique():07d}'
