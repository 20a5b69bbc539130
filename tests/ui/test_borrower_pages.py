from urllib.parse import quote

from nicegui import ui
from nicegui.testing import User
from sqlalchemy import func, select

from crm.db.demo import DEMO_USERS
from crm.db.models import AuditEntry, Borrower, BorrowerPhone, Loan, Product, ProductSale
from crm.db.models import User as UserRow
from crm.domain import formatting as fmt
from crm.domain.identifiers import format_phone
from tests.ui.conftest import WAIT, log_in, until


def own_overdue_borrower(sessions, login: str = 'operator1') -> tuple[Borrower, str]:
    with sessions() as session:
        borrower = session.scalars(
            select(Borrower)
            .join(UserRow, UserRow.id == Borrower.assigned_operator_id)
            .where(UserRow.login == login, Borrower.days_past_due > 0, Borrower.archived.is_(False))
            .order_by(Borrower.id)
        ).first()
        phone = session.scalar(select(BorrowerPhone.phone).where(BorrowerPhone.borrower_id == borrower.id))
        return borrower, phone


async def test_operator_list_shows_own_borrowers_with_debt(user: User, sessions) -> None:
    await log_in(user, 'operator1', 'operator')
    await user.should_see('Мои заёмщики', retries=WAIT)
    (table,) = user.find(ui.table).elements
    with sessions() as session:
        own = session.scalar(
            select(func.count())
            .select_from(Borrower)
            .join(UserRow, UserRow.id == Borrower.assigned_operator_id)
            .where(UserRow.login == 'operator1', Borrower.archived.is_(False))
        )
    assert table.pagination['rowsNumber'] == own
    assert len(table.rows) == 25
    assert table.rows[0]['days_past_due'] >= table.rows[-1]['days_past_due']  # most overdue first
    assert all(row['total_debt'].endswith('₽') for row in table.rows)
    await user.should_see(f'Всего: {own}', retries=WAIT)


async def test_list_pages_and_sorts_on_the_server(user: User) -> None:
    await log_in(user, 'operator2', 'operator')
    await user.should_see('Мои заёмщики', retries=WAIT)
    (table,) = user.find(ui.table).elements
    first_page = [row['id'] for row in table.rows]
    request = {'page': 2, 'rowsPerPage': 25, 'sortBy': 'days_past_due', 'descending': True}
    user.find(ui.table).trigger('request', {'pagination': request})
    await until(lambda: table.pagination['page'] == 2)
    assert not set(first_page) & {row['id'] for row in table.rows}
    request = {'page': 1, 'rowsPerPage': 50, 'sortBy': 'name', 'descending': False}
    user.find(ui.table).trigger('request', {'pagination': request})
    await until(lambda: table.pagination['rowsPerPage'] == 50)
    names = [row['full_name'] for row in table.rows]
    assert len(names) == 50 and names == sorted(names, key=lambda n: n.lower().replace('ё', 'е'))


async def test_overdue_filter_on_the_list(user: User) -> None:
    await log_in(user, 'operator3', 'operator')
    await user.should_see('Мои заёмщики', retries=WAIT)
    (table,) = user.find(ui.table).elements
    total = table.pagination['rowsNumber']
    user.find('Только с просрочкой').click()
    await until(lambda: table.pagination['rowsNumber'] < total)
    assert table.rows and all(row['days_past_due'] > 0 for row in table.rows)


async def test_supervisor_sees_everyone_with_an_operator_filter(user: User) -> None:
    await log_in(user, 'supervisor', 'supervisor')
    await user.should_see('Заёмщики', retries=WAIT)
    await user.should_see('Сотрудник', retries=WAIT)
    (table,) = user.find(ui.table).elements
    assert len({row['operator'] for row in table.rows}) > 1
    demo_names = {full_name for login, _, _, full_name, _ in DEMO_USERS if login.startswith('operator')}
    shown = {row['operator'] for row in table.rows} - {'—'}
    assert shown and shown <= demo_names  # full names, not logins
    (column,) = [c for c in table.columns if c['name'] == 'operator']
    assert 'crm-wrap' in column['classes']  # a long name wraps instead of being cut off


async def test_search_by_phone_opens_the_card(user: User, sessions) -> None:
    borrower, phone = own_overdue_borrower(sessions)
    await log_in(user, 'operator1', 'operator')
    await user.should_see('Мои заёмщики', retries=WAIT)
    user.find('ФИО, телефон, паспорт, PIN, ИНН, СНИЛС').type(format_phone(phone)).trigger('keydown.enter')
    full_name = f'{borrower.last_name} {borrower.first_name} {borrower.middle_name or ""}'.strip()
    await user.should_see(full_name, retries=WAIT)
    await user.should_see(f'PIN: {borrower.pin}', retries=WAIT)
    user.find(full_name).click()
    await user.should_see('Просроченная задолженность', retries=WAIT)
    await user.should_see('История коммуникаций', retries=WAIT)


async def test_too_short_search_gives_a_hint(user: User) -> None:
    await log_in(user, 'operator1', 'operator')
    await user.should_see('Мои заёмщики', retries=WAIT)
    user.find('ФИО, телефон, паспорт, PIN, ИНН, СНИЛС').type('я').trigger('keydown.enter')
    await user.should_see('Введите не менее 2 символов', retries=WAIT)


async def test_nothing_found_says_so(user: User) -> None:
    await log_in(user, 'operator1', 'operator', path='/search?q=' + quote('Ъъъщщщ'))
    await user.should_see('ничего не найдено', retries=WAIT)
    await user.should_see('Искать в архиве', retries=WAIT)


async def test_card_shows_the_debt_in_russian_format_and_is_audited(user: User, sessions) -> None:
    borrower, _ = own_overdue_borrower(sessions, 'operator4')
    await log_in(user, 'operator4', 'operator', path=f'/borrower/{borrower.id}')
    await user.should_see(f'PIN: {borrower.pin}', retries=WAIT)
    await user.should_see(fmt.day(borrower.birth_date), retries=WAIT)
    await user.should_see(fmt.money(borrower.monthly_payment), retries=WAIT)
    await user.should_see('Дней просрочки', retries=WAIT)
    await user.should_see('Займ №', retries=WAIT)
    with sessions() as session:
        viewers = session.scalars(
            select(UserRow.login)
            .join(AuditEntry, AuditEntry.user_id == UserRow.id)
            .where(AuditEntry.borrower_id == borrower.id, AuditEntry.action == 'card.view')
        ).all()
    assert 'operator4' in viewers


async def test_unknown_card_says_not_found(user: User) -> None:
    await log_in(user, 'operator1', 'operator', path='/borrower/999999999')
    await user.should_see('Заёмщик не найден', retries=WAIT)


async def test_card_tabs_hold_loans_credit_history_and_products(user: User, sessions) -> None:
    """The tabs are markup switched by the browser alone (tests/e2e: clicking them); all three are drawn."""
    borrower, _ = own_overdue_borrower(sessions, 'operator2')
    await log_in(user, 'operator2', 'operator', path=f'/borrower/{borrower.id}')
    await user.should_see('Займ №', retries=WAIT)
    (tabs,) = [h for h in user.find(kind=ui.html).elements if 'crm-tabs' in h.content]
    with sessions() as session:
        bought = session.scalars(
            select(Product.name)
            .join(ProductSale, ProductSale.product_id == Product.id)
            .where(ProductSale.borrower_id == borrower.id)
        ).all()
        loans = session.scalars(select(Loan.number).where(Loan.borrower_id == borrower.id)).all()
    assert f'Займы ({len(loans)})' in tabs.content and all(number in tabs.content for number in loans)
    assert 'Кредитная история' in tabs.content and 'Заявки в компании' in tabs.content
    assert f'Продукты ({len(bought)})' in tabs.content
    assert (
        all(name in tabs.content for name in bought)
        or 'Дополнительные продукты не приобретались' in tabs.content
    )
