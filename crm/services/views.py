"""Plain frozen views that services return; pages render them and never see ORM rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from crm.domain.contact_rules import LegalFlag


@dataclass(frozen=True)
class LoanBrief:
    number: str
    product: str
    state: str
    status_code: int
    status_name: str
    overdue_amount: Decimal
    days_past_due: int


@dataclass(frozen=True)
class BorrowerRow:
    """A line of the borrower list or of search results."""

    id: int
    pin: str
    full_name: str
    birth_date: date | None  # None: hidden or masked for the reader's role (crm/services/field_visibility.py)
    city: str
    phones: tuple[str, ...]  # masked ones as '+7 928 ***-**-77'
    passport: str | None
    total_debt: Decimal
    overdue_amount: Decimal
    days_past_due: int
    last_contact_at: datetime | None
    operator_login: str | None
    archived: bool
    loan: LoanBrief | None  # the most recent loan
    loans: tuple[LoanBrief, ...] = ()  # newest first
    broken_promise: bool = False  # the flag «Нарушено обещание» (promises.unanswered_break); the list only
    operator_name: str | None = None  # the assigned operator's full name, as the list shows it
    birth_year: int | None = None  # what a masked birth date still shows


@dataclass(frozen=True)
class Page:
    items: tuple[BorrowerRow, ...]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


@dataclass(frozen=True)
class SearchResult:
    items: tuple[BorrowerRow, ...]
    more: bool  # more matches exist than shown


@dataclass(frozen=True)
class Loan:
    id: int
    number: str
    product: str
    amount: Decimal
    term_days: int
    rate: Decimal
    issued_on: date
    due_on: date
    state: str
    status_code: int
    status_name: str
    principal_outstanding: Decimal
    total_debt: Decimal
    overdue_amount: Decimal
    days_past_due: int
    closed_on: date | None


@dataclass(frozen=True)
class Application:
    number: str
    product: str
    amount: Decimal
    term_days: int
    applied_at: datetime
    status_code: int
    status_name: str


@dataclass(frozen=True)
class ProductBought:
    name: str
    price: Decimal
    sold_at: datetime


@dataclass(frozen=True)
class Phone:
    number: str  # masked ('+7 928 ***-**-77') when the reader's role sees phones masked
    kind: str
    is_primary: bool
    id: int = 0  # the phone's row: what the card dials by, so a masked number still dials


@dataclass(frozen=True)
class CommunicationItem:
    id: int
    channel: str
    direction: str
    started_at: datetime
    ended_at: datetime | None
    operator_name: str | None
    phone: str | None
    result_code: str | None
    result_name: str | None
    promise_amount: Decimal | None
    promise_date: date | None
    comment: str | None
    body: str | None
    delivery_status: str | None
    duration_s: int | None
    recording_url: str | None = None
    callback_at: datetime | None = None
    promise_status: str | None = None  # what became of the promise this contact recorded (PromiseStatus)
    subject: str | None = None  # an e-mail's
    hidden_at: datetime | None = None  # an administrator hid it from operators (only admins get such items)
    hidden_reason: str | None = None


@dataclass(frozen=True)
class BrokenPromise:
    """A broken promise the card flags (``promises.unanswered_break``)."""

    amount: Decimal
    due_on: date


@dataclass(frozen=True)
class BorrowerCard:
    id: int
    pin: str
    last_name: str
    first_name: str
    middle_name: str | None
    birth_date: date | None  # None: hidden or masked for the reader's role (birth_year, masked)
    inn: str | None
    snils: str | None
    passport: str | None
    passport_issued: str | None
    email: str | None
    address: str | None
    city: str
    timezone: str
    employer: str | None
    monthly_payment: Decimal
    total_debt: Decimal
    overdue_amount: Decimal
    days_past_due: int
    last_contact_at: datetime | None
    archived: bool
    operator_name: str | None
    phones: tuple[Phone, ...]
    loans: tuple[Loan, ...]  # newest first
    applications: tuple[Application, ...]
    products: tuple[ProductBought, ...]
    communications: tuple[CommunicationItem, ...]  # newest first
    communications_total: int
    legal_flags: tuple[LegalFlag, ...] = ()
    broken_promise: BrokenPromise | None = None  # the flag «Нарушено обещание»: the latest such promise
    birth_year: int | None = None  # what a masked birth date still shows
    masked: frozenset[str] = frozenset()  # fields shown masked (field_visibility.Field), with «Показать»
    hidden: frozenset[str] = frozenset()  # fields the reader's role does not see at all

    @property
    def full_name(self) -> str:
        return ' '.join(p for p in (self.last_name, self.first_name, self.middle_name) if p)

    @property
    def current_loan(self) -> Loan | None:
        """The loan the card leads with: the most overdue active one (newest of equals), else the newest."""
        active = [loan for loan in self.loans if loan.state == 'active']
        if active:
            return max(active, key=lambda loan: loan.days_past_due)  # max keeps the first, i.e. the newest
        return self.loans[0] if self.loans else None


# What the borrower list can be sorted by (the service maps each to its column).
SORTS = ('name', 'total_debt', 'overdue_amount', 'days_past_due', 'last_contact_at')


@dataclass(frozen=True)
class ListQuery:
    operator_id: int | None = None  # None: the actor's own for an operator, everyone for the others
    overdue_only: bool = False
    promises: str | None = None  # 'today': a promise due today; 'broken': one broken in the last 30 days
    sort: str = 'days_past_due'
    descending: bool = True
    page: int = 1
    per_page: int = 25
