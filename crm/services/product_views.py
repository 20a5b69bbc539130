"""What the catalogue and the card's «Продукты» tab show (frozen dataclasses), and the reads behind them.

The rules are the domain's (``crm.domain.products``); this module turns rows into them and back, and
reads, per loan of a borrower, what may be offered at what price and why the rest may not.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm.db.models import Loan, Product, ProductSale, User
from crm.domain import LOAN_STATES
from crm.domain.products import (
    COUNTED,
    PRODUCT_KINDS,
    SALE_STATUS_LABELS,
    Eligibility,
    LoanFacts,
    PriceBase,
    PriceRule,
    ProductDraft,
    ProductRules,
    describe_eligibility,
    states_of,
    states_text,
    verdict,
)

SALES_SHOWN = 50  # the newest sales of a borrower on the card


@dataclass(frozen=True)
class ProductView:
    """One product of the catalogue, as the admin page lists and edits it."""

    id: int
    code: str
    name: str
    kind: str
    kind_label: str
    description: str
    price_base: str
    price: Decimal | None  # fixed price
    percent: Decimal | None
    price_min: Decimal | None
    price_max: Decimal | None
    price_text: str  # «1 490,00 ₽», «7,5% от общей задолженности, от 300,00 ₽»
    states: tuple[str, ...]
    dpd_min: int | None
    dpd_max: int | None
    overdue_min: Decimal | None
    overdue_max: Decimal | None
    once_per_loan: bool
    max_per_loan: int | None
    rules_text: str  # the eligibility rules in one line
    active: bool

    def draft(self) -> ProductDraft:
        """The product as the editor starts from."""
        return ProductDraft(
            code=self.code,
            name=self.name,
            kind=self.kind,
            description=self.description,
            price_base=self.price_base,
            price=self.price,
            percent=self.percent,
            price_min=self.price_min,
            price_max=self.price_max,
            states=self.states,
            dpd_min=self.dpd_min,
            dpd_max=self.dpd_max,
            overdue_min=self.overdue_min,
            overdue_max=self.overdue_max,
            once_per_loan=self.once_per_loan,
            max_per_loan=self.max_per_loan,
            id=self.id,
        )


@dataclass(frozen=True)
class Offer:
    """A product for one loan: its price if it may be offered, else the rule that said no."""

    code: str
    name: str
    description: str
    price: Decimal | None
    reason: str | None

    @property
    def offerable(self) -> bool:
        return self.reason is None


@dataclass(frozen=True)
class LoanOffers:
    loan_id: int
    number: str
    state_label: str
    days_past_due: int
    total_debt: Decimal
    overdue_amount: Decimal
    offerable: tuple[Offer, ...]
    refused: tuple[Offer, ...]


@dataclass(frozen=True)
class SaleView:
    sale_id: str
    loan_number: str | None
    product_code: str
    product_name: str
    price: Decimal
    status: str  # crm.domain.products.SaleStatus
    reason: str | None
    sold_at: datetime
    decided_at: datetime | None
    operator_name: str | None

    @property
    def status_label(self) -> str:
        return SALE_STATUS_LABELS.get(self.status, self.status)


@dataclass(frozen=True)
class BorrowerProducts:
    """The card's «Продукты» tab: the offers per loan (not archived), the sales with their status."""

    borrower_id: int
    loans: tuple[LoanOffers, ...]
    sales: tuple[SaleView, ...]


# --- rows <-> rules -------------------------------------------------------------------------------
def rules_of_row(product: Product) -> ProductRules:
    return ProductRules(
        code=product.code,
        name=product.name,
        kind=product.kind,
        price=PriceRule(
            base=PriceBase(product.price_base),
            fixed=product.price,
            percent=product.price_percent,
            minimum=product.price_min,
            maximum=product.price_max,
        ),
        eligibility=Eligibility(
            states=frozenset(states_of(product.allowed_states)),
            dpd_min=product.dpd_min,
            dpd_max=product.dpd_max,
            overdue_min=product.overdue_min,
            overdue_max=product.overdue_max,
            once_per_loan=product.once_per_loan,
            max_per_loan=product.max_per_loan,
        ),
        active=product.active,
    )


def write_draft(product: Product, draft: ProductDraft) -> None:
    """A checked draft into the row (the code only when the product is new)."""
    product.name = draft.name
    product.kind = draft.kind
    product.description = draft.description
    product.price_base = draft.price_base
    product.price = draft.price or Decimal(0)
    product.price_percent = draft.percent
    product.price_min = draft.price_min
    product.price_max = draft.price_max
    product.allowed_states = states_text(draft.states)
    product.dpd_min = draft.dpd_min
    product.dpd_max = draft.dpd_max
    product.overdue_min = draft.overdue_min
    product.overdue_max = draft.overdue_max
    product.once_per_loan = draft.once_per_loan
    product.max_per_loan = draft.max_per_loan


def product_view(product: Product) -> ProductView:
    rules = rules_of_row(product)
    fixed = rules.price.base is PriceBase.FIXED
    return ProductView(
        id=product.id,
        code=product.code,
        name=product.name,
        kind=product.kind,
        kind_label=PRODUCT_KINDS.get(product.kind, product.kind),
        description=product.description,
        price_base=product.price_base,
        price=product.price if fixed else None,
        percent=product.price_percent,
        price_min=product.price_min,
        price_max=product.price_max,
        price_text=rules.price.describe(),
        states=states_of(product.allowed_states),
        dpd_min=product.dpd_min,
        dpd_max=product.dpd_max,
        overdue_min=product.overdue_min,
        overdue_max=product.overdue_max,
        once_per_loan=product.once_per_loan,
        max_per_loan=product.max_per_loan,
        rules_text=describe_eligibility(rules.eligibility, product.kind),
        active=product.active,
    )


def loan_facts(loan: Loan) -> LoanFacts:
    return LoanFacts(
        state=loan.state,
        days_past_due=loan.days_past_due,
        overdue_amount=loan.overdue_amount,
        total_debt=loan.total_debt,
        principal_outstanding=loan.principal_outstanding,
    )


def sold_count(session: Session, loan_id: int, product_id: int) -> int:
    """The sales of a product on a loan that count for its limits (pending or confirmed)."""
    return (
        session.scalar(
            select(func.count())
            .select_from(ProductSale)
            .where(
                ProductSale.loan_id == loan_id,
                ProductSale.product_id == product_id,
                ProductSale.status.in_([str(s) for s in COUNTED]),
            )
        )
        or 0
    )


# --- the card's tab -------------------------------------------------------------------------------
def borrower_products(session: Session, borrower_id: int) -> BorrowerProducts:
    """Per loan that is not archived (the newest first): every active product, offerable or not."""
    loans = session.scalars(
        select(Loan)
        .where(Loan.borrower_id == borrower_id, Loan.state != 'archived')
        .order_by(Loan.issued_on.desc(), Loan.id.desc())
    ).all()
    products = session.scalars(select(Product).where(Product.active.is_(True)).order_by(Product.name)).all()
    counts: Counter[tuple[int | None, int]] = Counter()
    if loans:
        rows = session.execute(
            select(ProductSale.loan_id, ProductSale.product_id, func.count())
            .where(
                ProductSale.loan_id.in_([loan.id for loan in loans]),
                ProductSale.status.in_([str(s) for s in COUNTED]),
            )
            .group_by(ProductSale.loan_id, ProductSale.product_id)
        )
        counts.update({(loan_id, product_id): n for loan_id, product_id, n in rows})
    rules = [(product, rules_of_row(product)) for product in products]
    return BorrowerProducts(
        borrower_id=borrower_id,
        loans=tuple(_loan_offers(loan, rules, counts) for loan in loans),
        sales=tuple(sales_of(session, borrower_id)),
    )


def _loan_offers(
    loan: Loan, rules: Sequence[tuple[Product, ProductRules]], counts: Counter[tuple[int | None, int]]
) -> LoanOffers:
    facts = loan_facts(loan)
    offers = []
    for product, product_rules in rules:
        said = verdict(product_rules, facts, counts[(loan.id, product.id)])
        offers.append(Offer(product.code, product.name, product.description, said.price, said.reason))
    return LoanOffers(
        loan_id=loan.id,
        number=loan.number,
        state_label=LOAN_STATES.get(loan.state, loan.state),
        days_past_due=loan.days_past_due,
        total_debt=loan.total_debt,
        overdue_amount=loan.overdue_amount,
        offerable=tuple(o for o in offers if o.offerable),
        refused=tuple(o for o in offers if not o.offerable),
    )


def sales_of(session: Session, borrower_id: int, sale_id: str | None = None) -> list[SaleView]:
    """The borrower's sales, the newest first (or the one ``sale_id``)."""
    query = (
        select(ProductSale, Product.code, Product.name, Loan.number, User.full_name)
        .join(Product, Product.id == ProductSale.product_id)
        .outerjoin(Loan, Loan.id == ProductSale.loan_id)
        .outerjoin(User, User.id == ProductSale.operator_id)
        .where(ProductSale.borrower_id == borrower_id)
        .order_by(ProductSale.sold_at.desc(), ProductSale.id.desc())
        .limit(SALES_SHOWN)
    )
    if sale_id is not None:
        query = query.where(ProductSale.sale_id == sale_id)
    return [_sale_view(*row) for row in session.execute(query)]


def _sale_view(sale: ProductSale, code: str, name: str, number: str | None, operator: str | None) -> SaleView:
    return SaleView(
        sale_id=sale.sale_id,
        loan_number=number,
        product_code=code,
        product_name=name,
        price=sale.price,
        status=sale.status,
        reason=sale.reason,
        sold_at=sale.sold_at,
        decided_at=sale.decided_at,
        operator_name=operator,
    )
