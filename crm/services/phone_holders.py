"""Who holds a phone number: the borrowers a call or message from it is about."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm.db.models import Borrower, BorrowerPhone, Loan


@dataclass(frozen=True)
class Holder:
    """A borrower holding a phone number, as far as a screen pop needs to know."""

    id: int
    full_name: str
    last_contact_at: datetime | None


def holders_of(session: Session, numbers: set[str]) -> dict[str, list[Holder]]:
    """Borrowers by phone number: active before archived, the most recent loan first."""
    if not numbers:
        return {}
    latest_loan = select(func.max(Loan.issued_on)).where(Loan.borrower_id == Borrower.id).scalar_subquery()
    rows = session.execute(
        select(
            BorrowerPhone.phone,
            Borrower.id,
            Borrower.last_name,
            Borrower.first_name,
            Borrower.middle_name,
            Borrower.last_contact_at,
        )
        .join(Borrower, Borrower.id == BorrowerPhone.borrower_id)
        .where(BorrowerPhone.phone.in_(numbers))
        .order_by(BorrowerPhone.phone, Borrower.archived, latest_loan.desc().nulls_last(), Borrower.id.desc())
    )
    holders: dict[str, list[Holder]] = {}
    for phone, borrower_id, last, first, middle, last_contact_at in rows:
        found = holders.setdefault(phone, [])
        if all(h.id != borrower_id for h in found):  # the same number stored twice for one borrower
            name = ' '.join(p for p in (last, first, middle) if p)
            found.append(Holder(borrower_id, name, last_contact_at))
    return holders


def first_holder(session: Session, number: str | None) -> int | None:
    """The borrower a call or message from this number is about, if anyone holds it."""
    if not number:
        return None
    found = holders_of(session, {number}).get(number)
    return found[0].id if found else None
