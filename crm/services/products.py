"""Additional products and services (issue 10 §2): the catalogue, the offers on the card, the sale.

- **The catalogue** («Продукты и услуги», administrators): a product has a price rule and eligibility
  rules (``crm.domain.products``); it is never deleted — sales refer to it — only retired.
- **Offers** (``offers``): per loan of the borrower that is not archived, every active product is
  offerable at its price for that loan, or refused by the first rule that said no.
- **A sale** (``sell``) locks the loan's row, asks the rules again in that transaction (the debt or the
  count may have changed since the card was drawn), and records the sale «Ожидает подтверждения» with a
  «Доп. продукт» communication in the history. After the commit it sends ``product.sale.requested``
  ``{"sale_id","loan_number","product_code","price"}`` on ``crm.commands``.
- **The answer** ``product.sale.confirmed`` / ``product.sale.rejected`` ``{"sale_id","reason"}`` comes
  through the inbound router (one effect per sale and answer: a repeat is dropped by its key). An answer
  for an unknown sale, or one contradicting a sale already decided, is refused with the reason (the bus
  dead-letters it; the API answers 422) and nothing is written. Open cards follow through
  ``HistoryChanged``.
- **The sweeper** (``SaleSweeper``, a worker in every process) sends the command again for pending sales
  whose last command is older than ``resend_after``: a command lost between the commit and the publish
  (or by the loan system) is not lost for good. The loan system dedupes by ``sale_id``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from crm.db.engine import session_now
from crm.db.models import Communication, Loan, Product, ProductSale
from crm.domain import Role
from crm.domain.actor import Actor
from crm.domain.clock import Clock, system_clock
from crm.domain.errors import NotFound, ServiceError
from crm.domain.formatting import money
from crm.domain.notifications import HistoryChanged
from crm.domain.products import SALE_STATUS_LABELS, ProductDraft, SaleStatus, check_draft, verdict
from crm.integrations.bus import EventBus
from crm.services import audit
from crm.services.event_schemas import BadEvent, Event, SaleConfirmed, SaleDecided
from crm.services.inbound import Outcome
from crm.services.notifier import Notifier
from crm.services.periodic import PeriodicWorker
from crm.services.product_views import (
    BorrowerProducts,
    ProductView,
    SaleView,
    borrower_products,
    loan_facts,
    product_view,
    rules_of_row,
    sales_of,
    sold_count,
    write_draft,
)

log = logging.getLogger(__name__)

SALE_REQUESTED = 'product.sale.requested'
SELLERS = (Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN)
CHANNEL = 'product'  # the communication a sale writes: «Доп. продукт» in the history
NO_REASON = 'Причина не указана'

__all__ = ['BorrowerProducts', 'ProductService', 'ProductView', 'SaleSweeper', 'SaleView', 'sale_decided']


def sale_command(sale_id: str, loan_number: str, product_code: str, price: Any) -> dict[str, str]:
    """The body of ``product.sale.requested`` (the price as a decimal string, like payments' amounts)."""
    return {
        'sale_id': sale_id,
        'loan_number': loan_number,
        'product_code': product_code,
        'price': f'{price:.2f}',
    }


class ProductService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        bus: EventBus,
        notifier: Notifier,
        *,
        clock: Clock = system_clock,
    ) -> None:
        self._sessions = sessions
        self._bus = bus
        self._notifier = notifier
        self._clock = clock

    # --- the catalogue --------------------------------------------------------------------------
    def catalogue(self, actor: Actor) -> list[ProductView]:
        """Every product, the active ones first, by name."""
        actor.require(Role.ADMIN, Role.SUPERVISOR)
        with self._sessions() as session:
            products = session.scalars(select(Product).order_by(Product.active.desc(), Product.name)).all()
            return [product_view(p) for p in products]

    def save(self, actor: Actor, draft: ProductDraft) -> ProductView:
        """Create (``draft.id`` None) or change a product after every check; a duplicate code is refused."""
        actor.require(Role.ADMIN)
        clean = check_draft(draft)
        try:
            with self._sessions.begin() as session:
                if clean.id is None:
                    if session.scalar(select(Product.id).where(Product.code == clean.code)) is not None:
                        raise ServiceError(f'Продукт с кодом «{clean.code}» уже есть')
                    product = Product(code=clean.code, active=True)
                    session.add(product)
                else:
                    product = self._product(session, clean.id)
                    if product.code != clean.code:
                        raise ServiceError('Код продукта не меняется: по нему его знает учётная система')
                write_draft(product, clean)
                session.flush()
                audit.record(
                    session,
                    'product.save',
                    user_id=actor.id,
                    product_id=product.id,
                    code=product.code,
                    created=clean.id is None,
                )
                return product_view(product)
        except IntegrityError:  # the same code created by someone else a moment earlier
            raise ServiceError(f'Продукт с кодом «{clean.code}» уже есть') from None

    def retire(self, actor: Actor, product_id: int) -> ProductView:
        """«Снять с продажи»: no longer offered; its sales stay."""
        return self._set_active(actor, product_id, False)

    def restore(self, actor: Actor, product_id: int) -> ProductView:
        """«Вернуть в продажу»."""
        return self._set_active(actor, product_id, True)

    def _set_active(self, actor: Actor, product_id: int, active: bool) -> ProductView:
        actor.require(Role.ADMIN)
        with self._sessions.begin() as session:
            product = self._product(session, product_id)
            if product.active != active:
                product.active = active
                audit.record(
                    session, 'product.active', user_id=actor.id, product_id=product.id, active=active
                )
            return product_view(product)

    @staticmethod
    def _product(session: Session, product_id: int) -> Product:
        product = session.get(Product, product_id, with_for_update=True)
        if product is None:
            raise NotFound('Продукт не найден')
        return product

    # --- the card -------------------------------------------------------------------------------
    def offers(self, actor: Actor, borrower_id: int) -> BorrowerProducts:
        """What may be offered on each of the borrower's loans, and the sales with their status."""
        actor.require(*SELLERS)
        with self._sessions() as session:
            return borrower_products(session, borrower_id)

    def sell(self, actor: Actor, loan_id: int, product_code: str) -> SaleView:
        """Record a sale «Ожидает подтверждения» (the rules asked again under the loan's lock) and ask the
        loan system to confirm it. A refusal is a ServiceError with the rule that said no."""
        actor.require(*SELLERS)
        now = self._clock()
        with self._sessions.begin() as session:
            loan = session.get(Loan, loan_id, with_for_update=True)
            if loan is None:
                raise NotFound('Займ не найден')
            product = session.scalar(select(Product).where(Product.code == product_code))
            if product is None:
                raise NotFound('Продукт не найден')
            said = verdict(rules_of_row(product), loan_facts(loan), sold_count(session, loan.id, product.id))
            if said.reason is not None or said.price is None:
                raise ServiceError(f'«{product.name}» нельзя оформить по займу {loan.number}: {said.reason}')
            sale_id = str(uuid.uuid4())
            note = Communication(
                borrower_id=loan.borrower_id,
                operator_id=actor.id,
                channel=CHANNEL,
                direction='out',
                started_at=now,
                result_code=str(SaleStatus.PENDING),
                result_name=SALE_STATUS_LABELS[SaleStatus.PENDING],
                body=f'{product.name} по займу {loan.number}: {money(said.price)}',
                collection=False,
            )
            session.add(note)
            session.flush()
            session.add(
                ProductSale(
                    borrower_id=loan.borrower_id,
                    product_id=product.id,
                    operator_id=actor.id,
                    price=said.price,
                    sold_at=now,
                    loan_id=loan.id,
                    sale_id=sale_id,
                    status=str(SaleStatus.PENDING),
                    sent_at=now,
                    communication_id=note.id,
                )
            )
            audit.record(
                session,
                'product.sale',
                user_id=actor.id,
                borrower_id=loan.borrower_id,
                sale_id=sale_id,
                loan=loan.number,
                product=product.code,
                price=said.price,
            )
            session.flush()
            (view,) = sales_of(session, loan.borrower_id, sale_id)
            command = sale_command(sale_id, loan.number, product.code, said.price)
            borrower_id = loan.borrower_id
        self._notifier.publish([HistoryChanged(borrower_id)])
        send_command(self._bus, command)
        return view


def send_command(bus: EventBus, command: dict[str, str]) -> bool:
    """Publish one ``product.sale.requested``; a failure is left to the sweeper (the sale is committed)."""
    try:
        bus.publish_command(SALE_REQUESTED, command)
    except Exception as error:
        log.warning('sale %s: command not sent, the sweeper will: %s', command['sale_id'], error)
        return False
    return True


# --- the loan system's answer ----------------------------------------------------------------------
def sale_decided(session: Session, events: Sequence[Event]) -> Outcome:
    """``product.sale.confirmed`` / ``product.sale.rejected``: the pending sale takes the answer."""
    outcome = Outcome()
    for event in events:
        if not isinstance(event, SaleDecided):
            continue
        status = SaleStatus.CONFIRMED if isinstance(event, SaleConfirmed) else SaleStatus.REJECTED
        sale = session.scalar(
            select(ProductSale).where(ProductSale.sale_id == event.sale_id).with_for_update()
        )
        if sale is None:
            raise BadEvent(f'sale_id: unknown sale {event.sale_id!r}', 'sale_id', 'unknown sale')
        if sale.status == status:  # the same answer under another key cannot happen; kept harmless
            continue
        if sale.status != SaleStatus.PENDING:
            raise BadEvent(
                f'sale_id: sale {event.sale_id!r} is already {sale.status}; {status} not applied',
                'sale_id',
                f'sale already {sale.status}',
            )
        reason = event.reason or (NO_REASON if status is SaleStatus.REJECTED else None)
        sale.status, sale.reason, sale.decided_at = str(status), reason, session_now(session)
        if sale.communication_id is not None:
            session.execute(
                update(Communication)
                .where(Communication.id == sale.communication_id)
                .values(result_code=str(status), result_name=SALE_STATUS_LABELS[status], comment=reason)
            )
        outcome.notifications.append(HistoryChanged(sale.borrower_id))
    return outcome


# --- the sweeper -------------------------------------------------------------------------------------
class SaleSweeper(PeriodicWorker):
    """Sends ``product.sale.requested`` again for pending sales whose last command is older than
    ``resend_after``. Any number of processes: rows are claimed with SKIP LOCKED and stamped before the
    publish, which happens after the commit."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        bus: EventBus,
        *,
        clock: Clock = system_clock,
        resend_after: timedelta = timedelta(minutes=1),
        interval: float = 15.0,
        batch_size: int = 200,
    ) -> None:
        super().__init__(name='product-sales', interval=interval)
        self._sessions = sessions
        self._bus = bus
        self._clock = clock
        self.resend_after = resend_after
        self.batch_size = batch_size
        self._started = False

    def _round(self) -> int:
        """The first round waits one interval: what this process sells just now was sent just now."""
        if not self._started:
            self._started = True
            return 0
        return self.run_once()

    def run_once(self) -> int:
        """Re-send one batch; how many commands were sent."""
        now = self._clock()
        due = now - self.resend_after
        with self._sessions.begin() as session:
            rows = session.execute(
                select(ProductSale.id, ProductSale.sale_id, ProductSale.price, Loan.number, Product.code)
                .join(Loan, Loan.id == ProductSale.loan_id)
                .join(Product, Product.id == ProductSale.product_id)
                .where(
                    ProductSale.status == str(SaleStatus.PENDING),
                    or_(ProductSale.sent_at.is_(None), ProductSale.sent_at <= due),
                )
                .order_by(ProductSale.sent_at, ProductSale.id)
                .limit(self.batch_size)
                .with_for_update(skip_locked=True, of=ProductSale)
            ).all()
            if rows:
                session.execute(
                    update(ProductSale).where(ProductSale.id.in_([r.id for r in rows])).values(sent_at=now)
                )
        sent = sum(send_command(self._bus, sale_command(r.sale_id, r.number, r.code, r.price)) for r in rows)
        if rows:
            log.info('product sales: %d of %d pending commands sent again', sent, len(rows))
        return sent
