"""«Пользователи» and «Смена пароля» in NiceGUI's user simulation: an admin creates a user, the new user
must change the password before anything else; a reset shows the temporary password once."""

from __future__ import annotations

from collections.abc import Callable

from nicegui import ui
from nicegui.testing import User

from crm.domain import Role
from crm.services.auth import to_actor
from tests.factories import make_user, unique
from tests.ui.conftest import WAIT, log_in, until


def fill(user: User, label: str, value: str) -> None:
    """The input with exactly this label (several labels share words: «Новый пароль», «… ещё раз»)."""
    (element,) = [e for e in user.find(kind=ui.input).elements if e.props.get('label') == label]
    element.set_value(value)


async def test_admin_creates_a_user_who_must_change_the_password_first(
    user: User, create_user: Callable[[], User]
) -> None:
    n = unique()
    login = f'ui_new_{n}'
    await log_in(user, 'admin', 'admin', path='/admin/users')
    await user.should_see('Пользователи', retries=WAIT)
    user.find(marker='user-new').click()
    await user.should_see('Пароль (пусто — сгенерировать)', retries=WAIT)
    fill(user, 'Логин', login)
    fill(user, 'ФИО', f'Новикова Ирина {n}')
    fill(user, 'E-mail', f'{login}@lender.example')
    fill(user, 'Внутренний номер', f'6{n:04d}')
    fill(user, 'Пароль (пусто — сгенерировать)', 'Первый-пароль-1')
    user.find(marker='user-save').click()
    await user.should_see('Пароль задан. Пользователь сменит его при первом входе.', retries=WAIT)
    await user.should_see(f'Новикова Ирина {n}', retries=WAIT)

    newcomer = create_user()
    await log_in(newcomer, login, 'Первый-пароль-1')
    await newcomer.should_see('Смена пароля', retries=WAIT)
    await newcomer.should_see('Пароль задан администратором', retries=WAIT)
    await newcomer.open('/')  # nothing else opens until the password is changed
    await newcomer.should_see('Смена пароля', retries=WAIT)
    fill(newcomer, 'Текущий пароль', 'Первый-пароль-1')
    fill(newcomer, 'Новый пароль', f'{login}-мой-пароль')
    fill(newcomer, 'Новый пароль ещё раз', f'{login}-мой-пароль')
    newcomer.find('Сменить пароль').click()
    await newcomer.should_see('Пароль не должен содержать логин', retries=WAIT)
    fill(newcomer, 'Новый пароль', 'Свой-пароль-2026')
    fill(newcomer, 'Новый пароль ещё раз', 'Свой-пароль-2026')
    newcomer.find('Сменить пароль').click()
    await newcomer.should_see('Мои заёмщики', retries=WAIT)


async def test_a_reset_shows_the_temporary_password_once_and_block_unblock(user: User, sessions) -> None:
    target = make_user(sessions, role=Role.OPERATOR)
    await log_in(user, 'admin', 'admin', path='/admin/users')
    await user.should_see(target.full_name, retries=WAIT)
    user.find(marker=f'reset-{target.login}').click()
    await user.should_see(f'Сброс пароля: {target.full_name}', retries=WAIT)
    user.find(marker='reset-confirm').click()
    await user.should_see('Временный пароль показывается один раз', retries=WAIT)
    (shown,) = [e for e in user.find(kind=ui.input).elements if e.props.get('label') == 'Временный пароль']
    assert len(shown.value) >= 12
    await user.should_see('сменит пароль', retries=WAIT)
    # the list is redrawn after the reset: wait for the target's row to be back before clicking in it
    await until(lambda: _has(user, f'block-{target.login}'))
    user.find(marker=f'block-{target.login}').click()
    await user.should_see('Пользователь заблокирован', retries=WAIT)
    await until(lambda: _has(user, f'unblock-{target.login}'))
    user.find(marker=f'unblock-{target.login}').click()
    await user.should_see('Пользователь разблокирован', retries=WAIT)


def _has(user: User, marker: str) -> bool:
    try:
        user.find(marker=marker)
    except AssertionError:
        return False
    return True


async def test_users_page_is_for_admins_and_anyone_changes_their_own_password(user: User, sessions) -> None:
    operator = make_user(sessions, role=Role.OPERATOR, password='secret')
    await log_in(user, operator.login, 'secret', path='/admin/users')
    await user.should_see('Раздел доступен только администратору', retries=WAIT)
    await user.open('/password')
    await user.should_see('Смена пароля', retries=WAIT)
    await user.should_see('Назад')
    assert not to_actor(operator).must_change_password
