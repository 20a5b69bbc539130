from collections.abc import Callable

from nicegui import ui
from nicegui.testing import User

from tests.factories import make_borrower, unique_phone
from tests.ui.conftest import WAIT, log_in, until
from tests.ui.test_screen_pop import sees


async def test_simulator_rings_an_operator(user: User, create_user: Callable[[], User], sessions) -> None:
    phone = unique_phone()
    make_borrower(sessions, last='Симулированный', phones=(phone,))
    operator = create_user()
    await log_in(operator, 'operator2', 'operator')
    await operator.should_see('Мои заёмщики', retries=WAIT)
    await log_in(user, 'admin', 'admin', path='/admin/pbx')
    await user.should_see('Симулятор АТС', retries=WAIT)
    user.find('Номер звонящего').clear().type(phone)
    (extension,) = user.find(kind=ui.select).elements
    extension.set_value('102')
    user.find('Позвонить').click()
    await until(lambda: sees(operator, 'Симулированный'))
    await until(lambda: sees(user, 'Звонит'))
    user.find('Ответить').click()
    await until(lambda: sees(operator, 'Разговор'))


async def test_admin_makes_and_revokes_an_api_token(user: User) -> None:
    await log_in(user, 'admin', 'admin', path='/admin/tokens')
    await user.should_see('API-токены', retries=WAIT)
    user.find('Система').type('АТС тест')
    user.find('Создать токен').click()
    await user.should_see('Токен «АТС тест» создан', retries=WAIT)
    await user.should_see('Скопируйте его сейчас', retries=WAIT)


async def test_admin_sees_the_result_list(user: User) -> None:
    await log_in(user, 'admin', 'admin', path='/admin/results')
    await user.should_see('Новый результат', retries=WAIT)
    assert any(getattr(e, 'value', None) == 'Обещание оплаты' for e in user.find(kind=ui.input).elements)


async def test_admin_pages_are_closed_to_operators(user: User) -> None:
    await log_in(user, 'operator1', 'operator', path='/admin/tokens')
    await user.should_see('Раздел доступен только администратору', retries=WAIT)
    await user.open('/admin/results')
    await user.should_see('Раздел доступен только администратору', retries=WAIT)
    await user.should_see('Заёмщики')  # inside the normal frame, with its header
    await user.should_see('На главную')


async def test_the_admins_pages_are_one_menu_in_the_header(user: User) -> None:
    await log_in(user, 'admin', 'admin', path='/admin/tokens')
    await user.should_see('API-токены', retries=WAIT)
    user.find('Администрирование').click()
    await user.should_see('Журнал действий', retries=WAIT)
    user.find(marker='admin-menu-admin-audit').click()
    await user.should_see(marker='audit-total', retries=WAIT)
