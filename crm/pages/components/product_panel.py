"""The card's «Продукты» tab, its live part: per loan what may be offered at what price with «Оформить»
(a confirmation dialog), the rest with the rule that said no, and the sales with their status.

Drawn after the card, into the empty place the tab's markup leaves for it (``card_markup.product_slot``,
through ``ui.teleport``), as the bureau's part is: a screen pop draws the card exactly as before and the
offers are read a moment later, off the loop. ``refresh`` redraws it: after a sale here, and on
``HistoryChanged`` for the borrower (``Workspace``) — the loan system's answer, a payment that changed
the debt, a sale in another tab. The refusals and the sales are markup (``card_products.html``,
autoescaped); only the offerable products are elements, for their buttons.
"""

from __future__ import annotations

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from nicegui import ui

from crm.bootstrap import Services
from crm.domain import formatting as fmt
from crm.domain.actor import Actor
from crm.domain.errors import ServiceError
from crm.domain.products import SaleStatus
from crm.pages.components.card_markup import TEMPLATES, product_slot
from crm.pages.off_loop import service
from crm.services.product_views import BorrowerProducts, LoanOffers, Offer, SaleView

STATUS_COLORS = {
    SaleStatus.PENDING: 'primary',
    SaleStatus.CONFIRMED: 'positive',
    SaleStatus.REJECTED: 'negative',
}

_ENV = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(['html']),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,
)
_ENV.filters |= {'money': fmt.money, 'moment': fmt.moment}


def render_refused(refused: tuple[Offer, ...]) -> str:
    return _ENV.get_template('card_products.html').render(part='refused', refused=refused)


def render_sales(sales: tuple[SaleView, ...]) -> str:
    colors = {str(status): color for status, color in STATUS_COLORS.items()}
    return _ENV.get_template('card_products.html').render(part='sales', sales=sales, colors=colors)


def loan_line(loan: LoanOffers) -> str:
    """«Займ № 123 · Действующий · просрочка 12 дней · долг 10 000,00 ₽»."""
    parts = [f'Займ № {loan.number}', loan.state_label]
    if loan.days_past_due:
        parts.append(f'просрочка {fmt.days(loan.days_past_due)}')
    parts.append(f'долг {fmt.money(loan.total_debt)}')
    return ' · '.join(parts)


class ProductPanel:
    """The live part of «Продукты» for one drawn card."""

    def __init__(self, services: Services, actor: Actor, borrower_id: int) -> None:
        self.services = services
        self.actor = actor
        self.borrower_id = borrower_id
        self.body: ui.column | None = None
        self._anchor = ui.timer(0.05, self._draw, once=True)

    @property
    def gone(self) -> bool:
        """The card was replaced (another pop, another borrower): its part went with it."""
        if self.body is not None:
            return self.body.is_deleted
        return self._anchor.is_deleted  # (a once-timer is deleted after it ran: only before the draw)

    async def _draw(self) -> None:
        products = await service(self.services.products.offers, self.actor, self.borrower_id)
        if self.gone:  # the card was replaced meanwhile (another pop, another borrower)
            return
        with ui.teleport(f'#{product_slot(self.borrower_id)}'):
            self.body = ui.column().classes('crm-bureau-part gap-2').mark('product-panel')
        self._fill(products)

    async def refresh(self) -> None:
        if self.body is None or self.gone:
            return
        products = await service(self.services.products.offers, self.actor, self.borrower_id)
        if self.gone:
            return
        self._fill(products)

    def _fill(self, products: BorrowerProducts) -> None:
        if self.body is None:
            return
        self.body.clear()
        with self.body:
            ui.label('Что можно предложить').classes('crm-panel-subtitle')
            if not products.loans:
                ui.label('Нет займов, по которым можно оформить продукт').classes('crm-muted')
            for loan in products.loans:
                self._loan(loan)
            ui.html(render_sales(products.sales), sanitize=False)

    def _loan(self, loan: LoanOffers) -> None:
        with ui.column().classes('w-full gap-1').mark(f'loan-offers-{loan.number}'):
            ui.label(loan_line(loan)).classes('text-sm font-medium')
            if not loan.offerable:
                ui.label('Предложить нечего').classes('crm-muted')
            for offer in loan.offerable:
                with ui.row().classes('w-full items-center gap-3 no-wrap'):
                    with ui.column().classes('gap-0 grow'):
                        ui.label(offer.name).classes('text-sm')
                        if offer.description:
                            ui.label(offer.description).classes('crm-small crm-muted')
                    ui.label(fmt.money(offer.price)).classes('text-sm whitespace-nowrap')
                    ui.button(
                        'Оформить', icon='add_shopping_cart', on_click=lambda o=offer: self.confirm(loan, o)
                    ).props('dense no-caps').mark(f'sell-{loan.number}-{offer.code}')
            if loan.refused:
                ui.html(render_refused(loan.refused), sanitize=False)

    def confirm(self, loan: LoanOffers, offer: Offer) -> None:
        """«Оформить …?»: the product, the loan and the price; the sale goes to the loan system."""
        with ui.dialog() as dialog, ui.card().classes('w-[28rem]'):
            ui.label('Оформить продукт?').classes('text-lg font-semibold')
            ui.label(f'{offer.name} по займу {loan.number}')
            ui.label(f'Цена: {fmt.money(offer.price)}').classes('font-medium')
            ui.label('Оформление уйдёт на подтверждение в учётную систему.').classes('text-sm text-gray-600')

            async def sell() -> None:
                dialog.close()
                try:
                    sale = await service(self.services.products.sell, self.actor, loan.loan_id, offer.code)
                except ServiceError as refusal:
                    ui.notify(refusal.message, type='warning', multi_line=True)
                else:
                    ui.notify(f'«{sale.product_name}» оформлен: {sale.status_label.lower()}', type='positive')
                await self.refresh()

            with ui.row().classes('w-full justify-end'):
                ui.button('Отмена', on_click=dialog.close).props('flat')
                ui.button('Оформить', on_click=sell).mark('sell-confirm')
        dialog.open()
