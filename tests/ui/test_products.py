"""«Продукты и услуги» and the card's «Продукты» tab: an admin adds a product, an operator sells one and
sees the built-in loan system confirm it live."""

from __future__ import annotations

from decimal import Decimal

import pytest
from nicegui import ui
from nicegui.testing import User
from sqlalchemy import select

from crm.db.models import Loan, Product, ProductSale
from crm.domain import Role
from crm.domain.clock import SettableClock
from crm.domain.products import ProductDraft
from crm.integrations.bus import InProcessBus
from crm.services.auth import to_actor
from crm.services.notifier import Notifier
from crm.services.products import ProductService
from tests.conftest import TEST_NOW, set_app_env
from tests.factories import make_borrower, make_user, unique
from tests.ui.conftest import WAIT, log_in, until


@pytest.fixture
def loan_system(app_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The app's built-in loan system on, answering after 1.5 s; requested before ``user`` starts the app."""
    set_app_env(monkeypatch, 'CRM_LOAN_SYSTEM_SIMULATOR', '1')
    set_app_env(monkeypatch, 'CRM_LOAN_SYSTEM_DELAY_S', '1.5')


def sales_part(user: User) -> str:
    """The sales' markup in the «Продукты» tab, or '' while it is not drawn."""
    try:
        shown = user.find(kind=ui.html).elements
    except AssertionError:
        return ''
    found = [h.content for h in shown if 'data-testid="products-sales"' in h.content]
    return found[0] if found else ''


async def test_an_admin_adds_checks_and_retires_a_product(user: User, sessions) -> None:
    code, name = f'ui_{unique()}', f'Тестовая услуга {unique()}'
    await log_in(user, 'admin', 'admin', path='/admin/products')
    await user.should_see('Пролонгация займа', retries=WAIT)  # the demo catalogue
    await user.should_see('не более 5 пролонгаций по займу', retries=WAIT)
    user.find(marker='new-product').click()
    await user.should_see('Новый продукт', retries=WAIT)
    user.find(marker='product-code').type(code)
    user.find(marker='product-name').type(name)
    user.find(marker='product-price').type('12 рублей')
    user.find(marker='product-save').click()
    await user.should_see('Цена: укажите число', retries=WAIT)
    user.find(marker='product-price').clear().type('490')
    user.find(marker='product-dpd-min').type('31')
    user.find(marker='product-dpd-max').type('5')
    user.find(marker='product-save').click()
    await user.should_see('Просрочка, дней: нижняя граница больше верхней', retries=WAIT)
    user.find(marker='product-dpd-max').clear()
    user.find(marker='product-save').click()
    await user.should_see(f'Продукт «{name}» сохранён', retries=WAIT)
    with sessions() as session:
        product = session.scalars(select(Product).where(Product.code == code)).one()
        assert (product.price, product.dpd_min, product.dpd_max, product.active) == (
            Decimal(490),
            31,
            None,
            True,
        )

    await user.should_see(marker=f'product-{code}', retries=WAIT)
    user.find(marker='new-product').click()
    user.find(marker='product-code').type(code)
    user.find(marker='product-name').type('Двойник')
    user.find(marker='product-price').type('1')
    user.find(marker='product-save').click()
    await user.should_see(f'Продукт с кодом «{code}» уже есть', retries=WAIT)

    user.find('Отмена').click()
    user.find(marker=f'product-{code}').click()
    await user.should_see('Снять с продажи', retries=WAIT)
    user.find(marker='product-retire').click()
    await user.should_see(f'Продукт «{name}» снят с продажи', retries=WAIT)
    with sessions() as session:
        assert not session.scalars(select(Product.active).where(Product.code == code)).one()


async def test_operators_cannot_open_the_catalogue(user: User) -> None:
    await log_in(user, 'operator1', 'operator', path='/admin/products')
    await user.should_see('Раздел доступен только администратору', retries=WAIT)
    await user.should_not_see('Новый продукт')


async def test_the_card_sells_a_product_and_sees_it_confirmed(
    loan_system: None, user: User, sessions
) -> None:
    borrower = make_borrower(sessions, last='Продуктов', overdue=Decimal(4000), days_past_due=10)
    clock = SettableClock(TEST_NOW)
    catalogue = ProductService(sessions, InProcessBus(), Notifier(InProcessBus()), clock=clock)
    admin = to_actor(make_user(sessions, role=Role.ADMIN))
    code, name = f'card_{unique()}', f'Консультация {unique()}'
    catalogue.save(admin, ProductDraft(code=code, name=name, price=Decimal('777'), once_per_loan=True))
    with sessions() as session:
        loan = session.scalars(select(Loan).where(Loan.borrower_id == borrower.id)).one()
    await log_in(user, 'operator1', 'operator', path=f'/borrower/{borrower.id}')
    await user.should_see('Займ №', retries=WAIT)
    await user.should_see(marker=f'sell-{loan.number}-{code}', retries=WAIT)
    await user.should_see('Что можно предложить', retries=WAIT)
    await user.should_see('Реструктуризация долга', retries=WAIT)  # a demo product this loan is too early for
    assert 'Оформлений ещё не было' in sales_part(user)

    user.find(marker=f'sell-{loan.number}-{code}').click()
    await user.should_see('Оформить продукт?', retries=WAIT)
    await user.should_see('Цена: 777,00 ₽', retries=WAIT)
    user.find(marker='sell-confirm').click()
    await user.should_see(f'«{name}» оформлен', retries=WAIT)
    await until(lambda: name in sales_part(user) and 'Ожидает подтверждения' in sales_part(user))
    await until(lambda: 'Подтверждена' in sales_part(user))  # the built-in loan system answered, live
    with sessions() as session:
        sale = session.scalars(select(ProductSale).where(ProductSale.borrower_id == borrower.id)).one()
        assert (sale.status, sale.price, sale.loan_id) == ('confirmed', Decimal('777.00'), loan.id)
    await user.should_not_see(marker=f'sell-{loan.number}-{code}', retries=WAIT)  # once per loan
    await user.should_see('Уже оформлено по этому займу', retries=WAIT)
