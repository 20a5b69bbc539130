"""Reading one borrower's card: the audited view, its rows, straight into the card's dataclasses.

A screen pop reads a card while the operator's phone rings, so this read is kept lean: every statement
is built once, here, with its parameters bound at execution (SQLAlchemy neither rebuilds it nor computes
its cache key again), and runs on the session's connection as plain Core rows made straight into the
views — no ORM objects on the way but the borrower itself (its legal flags and the 230-FZ verdict
read it). Built anew per read, these statements cost about a quarter of the read's time.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from sqlalchemy import BindParameter, Column, Select, bindparam, func, select
from sqlalchemy.orm import Session

from crm.db.engine import session_now
from crm.db.models import (
    Borrower,
    BorrowerPhone,
    Communication,
    CreditApplication,
    Loan,
    Product,
    ProductSale,
    Promise,
    User,
)
from crm.domain.errors import NotFound
from crm.services import audit
from crm.services import views as v
from crm.services.compliance import legal_flags
from crm.services.promises import BROKEN_SHOWN, unanswered_break

HISTORY_LIMIT = 50  # newest contacts on the card; the total is shown beside them

_BORROWER: BindParameter[int] = bindparam('borrower_id')


def _columns(view: type, model: type, **others: Column[Any]) -> list[Column[Any]]:
    """The table columns of ``model`` named as the fields of ``view`` (``others`` for the rest), in order."""
    table = model.__table__  # type: ignore[attr-defined]
    return [others[f.name] if f.name in others else table.c[f.name] for f in fields(view)]


def _table(model: type) -> Any:
    return model.__table__  # type: ignore[attr-defined]


_phones, _loans, _applications = _table(BorrowerPhone), _table(Loan), _table(CreditApplication)
_sales, _products, _communications, _users = (
    _table(ProductSale),
    _table(Product),
    _table(Communication),
    _table(User),
)
_promises = _table(Promise)

PHONES: Select[Any] = (
    select(*_columns(v.Phone, BorrowerPhone, number=_phones.c.phone))
    .where(_phones.c.borrower_id == _BORROWER)
    .order_by(_phones.c.id)
)
LOANS: Select[Any] = (
    select(*_columns(v.Loan, Loan))
    .where(_loans.c.borrower_id == _BORROWER)
    .order_by(_loans.c.issued_on.desc(), _loans.c.id.desc())
)
APPLICATIONS: Select[Any] = (
    select(*_columns(v.Application, CreditApplication))
    .where(_applications.c.borrower_id == _BORROWER)
    .order_by(_applications.c.applied_at.desc())
)
PRODUCTS: Select[Any] = (
    select(*_columns(v.ProductBought, ProductSale, name=_products.c.name))
    .join(_products, _products.c.id == _sales.c.product_id)
    .where(_sales.c.borrower_id == _BORROWER)
    .order_by(_sales.c.sold_at.desc())
)
# the promise a contact recorded (a result saved again cancels its first one: the newest counts)
PROMISE_OF_CONTACT = (
    select(_promises.c.status)
    .where(_promises.c.communication_id == _communications.c.id)
    .order_by(_promises.c.id.desc())
    .limit(1)
    .scalar_subquery()
)
HISTORY_ALL: Select[Any] = (
    select(
        *_columns(
            v.CommunicationItem,
            Communication,
            operator_name=_users.c.full_name,
            promise_status=PROMISE_OF_CONTACT,  # type: ignore[arg-type]
        ),
        func.count().over(),  # the total rides along on each row
    )
    .outerjoin(_users, _users.c.id == _communications.c.operator_id)
    .where(_communications.c.borrower_id == _BORROWER)
    .order_by(_communications.c.started_at.desc(), _communications.c.id.desc())
    .limit(HISTORY_LIMIT)
)
# what operators and supervisors see: without what an administrator hid (crm/services/hiding.py)
HISTORY: Select[Any] = HISTORY_ALL.where(_communications.c.hidden_at.is_(None))
# the flag «Нарушено обещание»: the latest broken promise nothing answered since (promises.unanswered_break)
BROKEN_PROMISE: Select[Any] = (
    select(_promises.c.amount, _promises.c.due_on)
    .where(_promises.c.borrower_id == _BORROWER, unanswered_break(_promises, bindparam('since')))
    .order_by(_promises.c.closed_at.desc())
    .limit(1)
)
OPERATOR_NAME: Select[Any] = select(_users.c.full_name).where(_users.c.id == bindparam('user_id'))


def viewed(session: Session, user_id: int, borrower_id: int) -> Borrower:
    """The borrower, with the view written to the audit log in the caller's transaction."""
    borrower = session.get(Borrower, borrower_id)
    if borrower is None:
        raise NotFound('Заёмщик не найден')
    audit.record(session, 'card.view', user_id=user_id, borrower_id=borrower.id)
    return borrower


def card(session: Session, b: Borrower, *, with_hidden: bool = False) -> v.BorrowerCard:
    """Everything the card shows of ``b``, read in the caller's transaction (``with_hidden``: an
    administrator's, hidden records included, marked)."""
    connection = session.connection()
    key = {'borrower_id': b.id}

    def rows(view: type, statement: Select[Any]) -> tuple[Any, ...]:
        return tuple(view(*row) for row in connection.execute(statement, key))

    history, total = history_of(session, b.id, with_hidden=with_hidden)
    operator_name = (
        connection.execute(OPERATOR_NAME, {'user_id': b.assigned_operator_id}).scalar()
        if b.assigned_operator_id
        else None
    )
    return v.BorrowerCard(
        id=b.id,
        pin=b.pin,
        last_name=b.last_name,
        first_name=b.first_name,
        middle_name=b.middle_name,
        birth_date=b.birth_date,
        inn=b.inn,
        snils=b.snils,
        passport=b.passport,
        passport_issued=b.passport_issued,
        email=b.email,
        address=b.address,
        city=b.city,
        timezone=b.timezone,
        employer=b.employer,
        monthly_payment=b.monthly_payment,
        total_debt=b.total_debt,
        overdue_amount=b.overdue_amount,
        days_past_due=b.days_past_due,
        last_contact_at=b.last_contact_at,
        archived=b.archived,
        operator_name=operator_name,
        phones=rows(v.Phone, PHONES),
        loans=rows(v.Loan, LOANS),
        applications=rows(v.Application, APPLICATIONS),
        products=rows(v.ProductBought, PRODUCTS),
        communications=history,
        communications_total=total,
        legal_flags=tuple(legal_flags(b)),
        broken_promise=broken_promise(session, b.id),
    )


def broken_promise(session: Session, borrower_id: int) -> v.BrokenPromise | None:
    """The promise the card flags, if any."""
    since = session_now(session) - BROKEN_SHOWN
    row = session.connection().execute(BROKEN_PROMISE, {'borrower_id': borrower_id, 'since': since}).first()
    return v.BrokenPromise(*row) if row is not None else None


def history_of(
    session: Session, borrower_id: int, *, with_hidden: bool = False
) -> tuple[tuple[v.CommunicationItem, ...], int]:
    """The newest contacts, newest first, and how many there are in all (hidden ones only ``with_hidden``)."""
    statement = HISTORY_ALL if with_hidden else HISTORY
    found = session.connection().execute(statement, {'borrower_id': borrower_id}).all()
    total = found[0][-1] if found else 0
    return tuple(v.CommunicationItem(*row[:-1]) for row in found), total
