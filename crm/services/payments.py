"""``loan.payment.received``: a payment lowers the loan's debt and counts for the borrower's promises.

Set-wise: a run of payments (the router hands a burst over at once) takes the same few statements as
one. See ``crm.services.promises`` for what a promise is and when a payment counts for it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from crm.db.engine import session_now
from crm.db.models import Borrower, Communication, Loan, Payment
from crm.domain.formatting import money
from crm.domain.notifications import HistoryChanged
from crm.domain.promises import PromiseStatus, last_day, needed
from crm.services.event_schemas import BadEvent, Event, PaymentReceived
from crm.services.inbound import Outcome
from crm.services.promises import DEFAULT_RULES, SET_PROMISE, PromiseRules, office_day, promises_table

_loans = cast(Table, Loan.__table__)
_borrowers = cast(Table, Borrower.__table__)
_payments = cast(Table, Payment.__table__)
_communications = cast(Table, Communication.__table__)
_promises = promises_table

LOWER_LOAN = (
    update(_loans)
    .where(_loans.c.id == bindparam('b_id'))
    .values(total_debt=bindparam('b_total'), overdue_amount=bindparam('b_overdue'))
)
LOWER_BORROWER = (
    update(_borrowers)
    .where(_borrowers.c.id == bindparam('b_id'))
    .values(total_debt=bindparam('b_total'), overdue_amount=bindparam('b_overdue'))
)
REOPENED = (PromiseStatus.OPEN, PromiseStatus.PARTLY_KEPT, PromiseStatus.BROKEN)


# --- loan.payment.received ------------------------------------------------------------------------
def payment_received(
    session: Session, events: Sequence[Event], *, rules: PromiseRules = DEFAULT_RULES
) -> Outcome:
    """A run of payments, set-wise: the same few statements for one payment or a burst."""
    payments = sorted((e for e in events if isinstance(e, PaymentReceived)), key=lambda p: p.at)
    if not payments:
        return Outcome()
    now = session_now(session)
    conn = session.connection()
    numbers = sorted({p.loan_number for p in payments})
    loans = {
        row.number: row
        for row in conn.execute(
            select(
                _loans.c.id,
                _loans.c.number,
                _loans.c.borrower_id,
                _loans.c.total_debt,
                _loans.c.overdue_amount,
            )
            .where(_loans.c.number.in_(numbers))
            .order_by(_loans.c.id)
            .with_for_update()
        )
    }
    unknown = [n for n in numbers if n not in loans]
    if unknown:
        raise BadEvent(f'loan_number: unknown loan {unknown[0]!r}', 'loan_number', 'unknown loan')
    _lower_debts(conn, payments, loans)
    conn.execute(
        insert(_payments),
        [
            {
                'payment_id': p.payment_id,
                'loan_id': loans[p.loan_number].id,
                'borrower_id': loans[p.loan_number].borrower_id,
                'amount': p.amount,
                'at': p.at,
                'received_at': now,
            }
            for p in payments
        ],
    )
    conn.execute(
        insert(_communications),
        [
            {
                'borrower_id': loans[p.loan_number].borrower_id,
                'channel': 'payment',
                'direction': 'in',
                'started_at': p.at,
                'body': f'Платёж {money(p.amount)} по займу {p.loan_number}',
                'collection': False,
            }
            for p in payments
        ],
    )
    touched = {loans[p.loan_number].borrower_id for p in payments}
    _count_for_promises(conn, payments, loans, rules, now)
    return Outcome(notifications=[HistoryChanged(b) for b in sorted(touched)])


def _lower_debts(conn: Connection, payments: Sequence[PaymentReceived], loans: dict[str, Any]) -> None:
    """Each loan's debt down by its payments (overdue first, never below zero); the borrowers' by the same."""
    paid: dict[str, Decimal] = defaultdict(Decimal)
    for p in payments:
        paid[p.loan_number] += p.amount
    loan_rows: list[dict[str, Any]] = []
    by_borrower: dict[int, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for number, amount in paid.items():
        loan = loans[number]
        total = max(loan.total_debt - amount, Decimal(0))
        overdue = max(loan.overdue_amount - amount, Decimal(0))
        loan_rows.append({'b_id': loan.id, 'b_total': total, 'b_overdue': overdue})
        by_borrower[loan.borrower_id][0] += loan.total_debt - total
        by_borrower[loan.borrower_id][1] += loan.overdue_amount - overdue
    conn.execute(LOWER_LOAN, loan_rows)
    borrowers = conn.execute(
        select(_borrowers.c.id, _borrowers.c.total_debt, _borrowers.c.overdue_amount)
        .where(_borrowers.c.id.in_(sorted(by_borrower)))
        .order_by(_borrowers.c.id)
        .with_for_update()
    )
    conn.execute(
        LOWER_BORROWER,
        [
            {
                'b_id': row.id,
                'b_total': max(row.total_debt - by_borrower[row.id][0], Decimal(0)),
                'b_overdue': max(row.overdue_amount - by_borrower[row.id][1], Decimal(0)),
            }
            for row in borrowers
        ],
    )


def _count_for_promises(
    conn: Connection,
    payments: Sequence[PaymentReceived],
    loans: dict[str, Any],
    rules: PromiseRules,
    now: datetime,
) -> None:
    """Add each payment to the promises whose window holds it, oldest promise first; kept ones close."""
    borrower_ids = sorted({loans[p.loan_number].borrower_id for p in payments})
    earliest = office_day(payments[0].at) - timedelta(days=rules.grace_days)
    p_ = _promises.c
    rows = conn.execute(
        select(
            p_.id, p_.borrower_id, p_.loan_id, p_.amount, p_.due_on, p_.status, p_.paid_amount, p_.created_at
        )
        .where(p_.borrower_id.in_(borrower_ids), p_.status.in_(REOPENED), p_.due_on >= earliest)
        .order_by(p_.borrower_id, p_.due_on, p_.id)
        .with_for_update()
    ).all()
    if not rows:
        return
    state = {row.id: [row.paid_amount, row.status] for row in rows}
    by_borrower: dict[int, list[Any]] = defaultdict(list)
    for row in rows:
        by_borrower[row.borrower_id].append(row)
    for payment in payments:
        loan = loans[payment.loan_number]
        day = office_day(payment.at)
        matching = [
            row
            for row in by_borrower[loan.borrower_id]
            if row.loan_id in (None, loan.id)
            and row.created_at <= payment.at
            and day <= last_day(row.due_on, rules.grace_days)
        ]
        left = payment.amount
        for index, row in enumerate(matching):  # fills the earliest first; the last takes what is left
            last = index == len(matching) - 1
            taken = left if last else min(left, max(row.amount - state[row.id][0], Decimal(0)))
            state[row.id][0] += taken
            left -= taken
    changes = []
    for row in rows:
        paid, status = state[row.id]
        if paid == row.paid_amount:
            continue
        if paid >= needed(row.amount, rules.share):
            status = PromiseStatus.KEPT
        elif status == PromiseStatus.BROKEN:
            status = PromiseStatus.PARTLY_KEPT
        closed = None if status == PromiseStatus.OPEN else now
        changes.append({'b_id': row.id, 'b_status': str(status), 'b_paid': paid, 'b_closed': closed})
    if changes:
        conn.execute(SET_PROMISE, changes)
