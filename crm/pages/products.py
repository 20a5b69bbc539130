"""«Продукты и услуги» (administrators): the catalogue of additional products, each with its price rule
and the rules of who may be offered it; a product is created, changed, retired and restored here."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation

from nicegui import ui

from crm.bootstrap import Services
from crm.domain import LOAN_STATES, Role
from crm.domain.actor import Actor
from crm.domain.errors import ServiceError
from crm.domain.products import PRICE_BASE_LABELS, PRODUCT_KINDS, PriceBase, ProductDraft
from crm.pages.layout import admin_frame
from crm.pages.live import LiveHub
from crm.pages.off_loop import service
from crm.pages.route import page
from crm.pages.session import page_actor
from crm.services.product_views import ProductView

ABOUT = (
    'Дополнительные продукты и услуги, которые сотрудник предлагает в карточке заёмщика. У продукта — '
    'цена (фиксированная или процент от долга займа, с минимумом и максимумом) и правила: статус займа, '
    'дни просрочки, сумма просрочки, «один раз по займу» и лимит по займу. Продукты не удаляются, а '
    'снимаются с продажи.'
)
_NUMBER = re.compile(r'\d+(?:[.,]\d+)?')


def parse_decimal(text: str | None, field: str) -> Decimal | None:
    """«1 490», «7,5», «» → Decimal or None; anything else is refused naming the field."""
    cleaned = re.sub(r'[\s\u00a0₽%]', '', text or '')
    if not cleaned:
        return None
    if not _NUMBER.fullmatch(cleaned):
        raise ServiceError(f'{field}: укажите число, например 1 490 или 7,5')
    try:
        return Decimal(cleaned.replace(',', '.'))
    except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
        raise ServiceError(f'{field}: укажите число') from None


def parse_int(text: str | None, field: str) -> int | None:
    cleaned = re.sub(r'\s', '', text or '')
    if not cleaned:
        return None
    if not cleaned.isdigit() or len(cleaned) > 6:
        raise ServiceError(f'{field}: укажите целое число не меньше 0')
    return int(cleaned)


def _text(value: object) -> str:
    if value is None:
        return ''
    if isinstance(value, Decimal):
        return f'{value.normalize():f}'.replace('.', ',')
    return str(value)


class Editor:
    """The dialog that creates or changes one product."""

    def __init__(self, services: Services, actor: Actor, on_change: Callable[[], Awaitable[None]]) -> None:
        self._services = services
        self._actor = actor
        self._on_change = on_change
        self._product: ProductView | None = None
        with ui.dialog().props('persistent') as self.dialog, ui.card().classes('w-[48rem] max-w-full'):
            self.title = ui.label().classes('text-lg font-semibold')
            self._form()
            self.error = ui.label().classes('text-negative whitespace-pre-line').mark('product-error')
            self.error.set_visibility(False)
            with ui.row().classes('w-full justify-end gap-2'):
                self.retire_button = ui.button('Снять с продажи', on_click=self.retire, color='negative')
                self.retire_button.props('flat').mark('product-retire')
                self.restore_button = ui.button('Вернуть в продажу', on_click=self.restore).props('flat')
                self.restore_button.mark('product-restore')
                ui.button('Отмена', on_click=self.dialog.close).props('flat')
                ui.button('Сохранить', icon='save', on_click=self.save).mark('product-save')

    def _form(self) -> None:
        with ui.row().classes('w-full gap-4 no-wrap'):
            self.code = ui.input('Код (латиницей)').props('outlined dense maxlength=32').classes('w-48')
            self.code.mark('product-code')
            self.name = ui.input('Название').props('outlined dense maxlength=200').classes('grow')
            self.name.mark('product-name')
            self.kind = ui.select(PRODUCT_KINDS, label='Вид', value='service').props('outlined dense')
            self.kind.classes('w-56').mark('product-kind')
        self.description = ui.textarea('Описание').props('outlined dense autogrow maxlength=1000')
        self.description.classes('w-full')
        with ui.row().classes('w-full gap-4 items-end no-wrap'):
            self.base = ui.select(PRICE_BASE_LABELS, label='Цена', value=PriceBase.FIXED.value)
            self.base.props('outlined dense').classes('w-72').mark('product-base')
            self.price = ui.input('Цена, ₽').props('outlined dense').classes('w-32').mark('product-price')
            self.percent = ui.input('Процент').props('outlined dense').classes('w-28').mark('product-percent')
            self.price_min = ui.input('Не меньше, ₽').props('outlined dense').classes('w-32')
            self.price_max = ui.input('Не больше, ₽').props('outlined dense').classes('w-32')
        fixed = PriceBase.FIXED.value
        self.price.bind_visibility_from(self.base, 'value', backward=lambda v: v == fixed)
        for element in (self.percent, self.price_min, self.price_max):
            element.bind_visibility_from(self.base, 'value', backward=lambda v: v != fixed)
        ui.label('Кому можно предложить').classes('text-sm font-medium mt-2')
        with ui.row().classes('w-full gap-4 items-center'):
            ui.label('Статус займа:').classes('text-sm')
            self.states = {
                state: ui.checkbox(label, value=state == 'active').mark(f'product-state-{state}')
                for state, label in LOAN_STATES.items()
            }
        with ui.row().classes('w-full gap-4 items-end no-wrap'):
            self.dpd_min = ui.input('Просрочка от, дней').props('outlined dense').classes('w-40')
            self.dpd_min.mark('product-dpd-min')
            self.dpd_max = (
                ui.input('до, дней').props('outlined dense').classes('w-28').mark('product-dpd-max')
            )
            self.overdue_min = ui.input('Просрочено от, ₽').props('outlined dense').classes('w-40')
            self.overdue_max = ui.input('до, ₽').props('outlined dense').classes('w-32')
        with ui.row().classes('w-full gap-4 items-end no-wrap'):
            self.once = ui.checkbox('Один раз по займу').mark('product-once')
            self.max_per_loan = ui.input('Не более … по одному займу').props('outlined dense').classes('w-56')
            self.max_per_loan.mark('product-max')

    def open(self, product: ProductView | None) -> None:
        self._product = product
        self.title.set_text(f'Продукт «{product.name}»' if product else 'Новый продукт')
        draft = product.draft() if product else ProductDraft(code='', name='')
        self.code.set_value(draft.code)
        self.code.set_enabled(product is None)  # the loan system knows a product by its code
        self.name.set_value(draft.name)
        self.kind.set_value(draft.kind)
        self.description.set_value(draft.description)
        self.base.set_value(draft.price_base)
        for element, value in (
            (self.price, draft.price),
            (self.percent, draft.percent),
            (self.price_min, draft.price_min),
            (self.price_max, draft.price_max),
            (self.dpd_min, draft.dpd_min),
            (self.dpd_max, draft.dpd_max),
            (self.overdue_min, draft.overdue_min),
            (self.overdue_max, draft.overdue_max),
            (self.max_per_loan, draft.max_per_loan),
        ):
            element.set_value(_text(value))
        for state, box in self.states.items():
            box.set_value(state in draft.states)
        self.once.set_value(draft.once_per_loan)
        self.retire_button.set_visibility(bool(product and product.active))
        self.restore_button.set_visibility(bool(product and not product.active))
        self.error.set_visibility(False)
        self.dialog.open()

    def draft(self) -> ProductDraft:
        """What the form holds; a number that does not parse is refused naming its field."""
        return ProductDraft(
            code=self.code.value or '',
            name=self.name.value or '',
            kind=self.kind.value or 'service',
            description=self.description.value or '',
            price_base=self.base.value or PriceBase.FIXED.value,
            price=parse_decimal(self.price.value, 'Цена'),
            percent=parse_decimal(self.percent.value, 'Процент'),
            price_min=parse_decimal(self.price_min.value, 'Цена не меньше'),
            price_max=parse_decimal(self.price_max.value, 'Цена не больше'),
            states=tuple(state for state, box in self.states.items() if box.value),
            dpd_min=parse_int(self.dpd_min.value, 'Просрочка от'),
            dpd_max=parse_int(self.dpd_max.value, 'Просрочка до'),
            overdue_min=parse_decimal(self.overdue_min.value, 'Просрочено от'),
            overdue_max=parse_decimal(self.overdue_max.value, 'Просрочено до'),
            once_per_loan=bool(self.once.value),
            max_per_loan=parse_int(self.max_per_loan.value, 'Не более … по одному займу'),
            id=self._product.id if self._product else None,
        )

    async def _run(self, action: Callable[[], Awaitable[ProductView]], done: str) -> None:
        """A service call; a refusal stays in the dialog (and in a notification)."""
        try:
            product = await action()
        except ServiceError as error:
            self.error.set_text(error.message)
            self.error.set_visibility(True)
            ui.notify(error.message, type='warning', multi_line=True)
            return
        ui.notify(f'Продукт «{product.name}» {done}', type='positive')
        self.dialog.close()
        await self._on_change()

    async def save(self) -> None:
        async def saving() -> ProductView:
            return await service(self._services.products.save, self._actor, self.draft())

        await self._run(saving, 'сохранён')

    async def retire(self) -> None:
        if self._product is not None:
            product_id = self._product.id
            await self._run(
                lambda: service(self._services.products.retire, self._actor, product_id), 'снят с продажи'
            )

    async def restore(self) -> None:
        if self._product is not None:
            product_id = self._product.id
            await self._run(
                lambda: service(self._services.products.restore, self._actor, product_id), 'снова в продаже'
            )


def product_row(product: ProductView, edit: Callable[[ProductView], None]) -> None:
    with ui.item(on_click=lambda: edit(product)).props('clickable').mark(f'product-{product.code}'):
        with ui.item_section():
            ui.label(product.name).classes('font-medium')
            ui.label(f'{product.code} · {product.kind_label}').classes('text-xs text-gray-600')
        with ui.item_section():
            ui.label(product.price_text).classes('text-sm')
            ui.label(product.rules_text).classes('text-xs text-gray-600')
        with ui.item_section().props('side'):
            if product.active:
                ui.badge('В продаже', color='positive')
            else:
                ui.badge('Снят с продажи', color='grey')


def register(services: Services, hub: LiveHub) -> None:
    @page('/admin/products')
    async def products_page() -> None:
        actor = page_actor(Role.ADMIN)
        if actor is None:
            return

        @ui.refreshable
        async def table() -> None:
            products = await service(services.products.catalogue, actor)
            if not products:
                ui.label('Продуктов нет').classes('text-gray-600')
                return
            with ui.list().props('bordered separator').classes('w-full bg-white rounded'):
                for product in products:
                    product_row(product, editor.open)

        with admin_frame(services, hub, actor, 'Продукты и услуги', ABOUT) as workspace:
            editor = Editor(services, actor, table.refresh)
            with ui.row().classes('w-full justify-end'):
                ui.button('Новый продукт', icon='add', on_click=lambda: editor.open(None)).mark('new-product')
            await table()
        await workspace.start()
