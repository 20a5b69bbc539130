from nicegui import ui
from nicegui.testing import User

from crm.domain import Role
from tests.factories import make_user
from tests.ui.conftest import WAIT, log_in, submit_login


async def test_pages_need_login_and_keep_the_target(user: User, sessions) -> None:
    await log_in(user, 'operator1', 'operator', path='/search?q=%D0%B8%D0%B2')
    await user.should_see('Найдено:', retries=WAIT)
    await user.should_see('Искать в архиве', retries=WAIT)


async def test_wrong_password_gives_one_message(user: User) -> None:
    await log_in(user, 'operator1', 'wrong')
    await user.should_see('Неверный логин или пароль', retries=WAIT)
    await user.should_not_see('Мои заёмщики')


async def test_lockout_message_after_five_failures(user: User, sessions) -> None:
    account = make_user(sessions, role=Role.OPERATOR)
    await log_in(user, account.login, 'wrong')
    await user.should_see('Неверный логин или пароль', retries=WAIT)
    for _ in range(4):
        user.find('Пароль').type('wrong')
        await submit_login(user)
    user.find('Пароль').type('secret')  # the right password is refused while locked
    await submit_login(user)
    await user.should_see('вход блокируется на 15 минут', retries=WAIT)
    await user.should_not_see('Мои заёмщики')


async def test_password_field_hides_the_text_and_has_the_eye(user: User) -> None:
    await user.open('/login')
    (password,) = user.find('Пароль').elements
    assert isinstance(password, ui.input) and password.props['type'] == 'password'
    eyes = [
        e for e in password.descendants() if isinstance(e, ui.icon) and e.props['name'] == 'visibility_off'
    ]
    assert len(eyes) == 1


async def test_logout_ends_the_session(user: User) -> None:
    await log_in(user, 'supervisor', 'supervisor')
    await user.should_see('Заёмщики', retries=WAIT)
    await user.open('/logout')
    await user.should_see('Вход в систему', retries=WAIT)
    await user.open('/')
    await user.should_see('Вход в систему', retries=WAIT)
