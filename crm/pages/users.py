"""«Пользователи» (/admin/users, administrators): the users with filters, a new user, edit, block and
unblock, password reset (the new one shown once), lifting the lock after wrong passwords; and the groups
with their supervisors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from nicegui import ui

from crm.bootstrap import Services
from crm.domain import ROLE_LABELS, Role
from crm.domain import formatting as fmt
from crm.domain.actor import Actor
from crm.pages.layout import admin_frame
from crm.pages.live import LiveHub
from crm.pages.off_loop import attempt, service
from crm.pages.route import page
from crm.pages.session import page_actor
from crm.services.user_groups import GroupRow
from crm.services.users import STATUS_LABELS, NewPassword, UserDraft, UserRow

ALL = ''
STATUS_COLORS = {'active': 'positive', 'blocked': 'grey', 'locked': 'warning'}
Refresh = Callable[[], Awaitable[None]]


def register(services: Services, hub: LiveHub) -> None:
    @page('/admin/users')
    async def users_page() -> None:
        actor = page_actor(Role.ADMIN)
        if actor is None:
            return
        groups: list[GroupRow] = await service(services.user_groups.groups, actor)

        async def refresh() -> None:
            groups[:] = await service(services.user_groups.groups, actor)
            group_filter.set_options(
                {0: 'Все группы'} | {g.id: g.name for g in groups}, value=group_filter.value
            )
            await table.refresh()
            await group_list.refresh()

        @ui.refreshable
        async def table() -> None:
            rows = await service(
                services.users.users,
                actor,
                role=Role(role_filter.value) if role_filter.value else None,
                group_id=group_filter.value or None,
                status=status_filter.value or None,
            )
            if not rows:
                ui.label('Пользователей с такими условиями нет').classes('text-gray-600')
                return
            with ui.list().props('bordered separator').classes('w-full bg-white'):
                for row in rows:
                    user_line(services, actor, row, groups, refresh)

        @ui.refreshable
        async def group_list() -> None:
            supervisors = await service(services.users.users, actor, role=Role.SUPERVISOR, status='active')
            group_section(services, actor, groups, supervisors, refresh)

        about = (
            'Пароль, заданный администратором (при создании и сбросе), пользователь меняет при первом '
            'входе. Блокировка сразу завершает все сеансы пользователя. Все изменения записываются в '
            'журнал действий.'
        )
        with admin_frame(services, hub, actor, 'Пользователи', about) as workspace:
            with ui.row().classes('items-end gap-4'):
                role_filter = ui.select({ALL: 'Все роли'} | dict(ROLE_LABELS), value=ALL, label='Роль')
                group_filter = ui.select(
                    {0: 'Все группы'} | {g.id: g.name for g in groups}, value=0, label='Группа'
                )
                status_filter = ui.select({ALL: 'Все'} | STATUS_LABELS, value=ALL, label='Состояние')
                for element in (role_filter, group_filter, status_filter):
                    element.props('outlined dense').classes('w-56').on_value_change(table.refresh)
                ui.button(
                    'Новый пользователь',
                    icon='person_add',
                    on_click=lambda: user_dialog(services, actor, None, groups, refresh),
                ).mark('user-new')
            await table()
            ui.label('Группы').classes('text-lg font-semibold mt-4')
            await group_list()
        await workspace.start()


def user_line(
    services: Services, actor: Actor, row: UserRow, groups: list[GroupRow], refresh: Refresh
) -> None:
    async def act(action: Callable[[Actor, int], UserRow], done: str) -> None:
        if await attempt(action, actor, row.id) is not None:
            ui.notify(done, type='positive')
            await refresh()

    with ui.item(), ui.item_section(), ui.row().classes('items-center gap-4 w-full'):
        with ui.column().classes('gap-0 w-64'):
            ui.label(row.full_name).classes('font-medium')
            ui.label(row.login).classes('text-xs text-gray-600')
        ui.label(ROLE_LABELS[row.role]).classes('text-sm w-40')
        ui.label(row.group_name or '—').classes('text-sm w-40')
        ui.label(f'доб. {row.extension}' if row.extension else '—').classes('text-sm w-20')
        ui.label(row.email or '—').classes('text-sm w-56 truncate')
        badge = ui.badge(row.status_label, color=STATUS_COLORS[row.status])
        if row.status == 'locked' and row.locked_until:
            badge.tooltip(f'до {fmt.moment(row.locked_until)}')
        if row.must_change_password:
            ui.badge('сменит пароль', color='info').props('outline')
        ui.space()
        ui.button('Изменить', on_click=lambda: user_dialog(services, actor, row, groups, refresh)).props(
            'flat dense'
        )
        if row.status == 'blocked':
            ui.button(
                'Разблокировать', on_click=lambda: act(services.users.unblock, 'Пользователь разблокирован')
            ).mark(f'unblock-{row.login}')
        else:
            ui.button(
                'Заблокировать', on_click=lambda: act(services.users.block, 'Пользователь заблокирован')
            ).props('flat dense color=negative').mark(f'block-{row.login}')
        if row.status == 'locked':
            ui.button(
                'Снять блокировку входа',
                on_click=lambda: act(services.users.unlock, 'Блокировка входа снята'),
            ).props('flat dense').mark(f'unlock-{row.login}')
        ui.button('Сбросить пароль', on_click=lambda: reset_dialog(services, actor, row, refresh)).props(
            'flat dense'
        ).mark(f'reset-{row.login}')


def stable_dialog() -> ui.dialog:
    """A dialog outside the list: the list is redrawn after an action, which would delete one inside it."""
    with ui.context.client.layout:
        return ui.dialog()


def user_dialog(
    services: Services, actor: Actor, row: UserRow | None, groups: list[GroupRow], refresh: Refresh
) -> None:
    """«Новый пользователь» (row None) or the edit of one."""

    async def save() -> None:
        draft = UserDraft(
            login.value or '',
            full_name.value or '',
            Role(role.value),
            email.value or None,
            extension.value or None,
            group.value or None,
        )
        if row is None:
            created = await attempt(services.users.create, actor, draft, password.value or None)
            if created is None:
                return
            dialog.close()
            show_password(created, 'Пользователь создан')
        else:
            if await attempt(services.users.edit, actor, row.id, draft) is None:
                return
            dialog.close()
            ui.notify('Изменения сохранены', type='positive')
        await refresh()

    with stable_dialog() as dialog, ui.card().classes('w-[32rem] gap-2'):
        ui.label('Новый пользователь' if row is None else f'Пользователь {row.login}').classes(
            'text-lg font-semibold'
        )
        login = ui.input('Логин', value=row.login if row else '').props('outlined dense').classes('w-full')
        full_name = (
            ui.input('ФИО', value=row.full_name if row else '').props('outlined dense').classes('w-full')
        )
        email = (
            ui.input('E-mail', value=(row.email or '') if row else '')
            .props('outlined dense')
            .classes('w-full')
        )
        extension = ui.input('Внутренний номер', value=(row.extension or '') if row else '')
        extension.props('outlined dense').classes('w-full')
        role = ui.select(dict(ROLE_LABELS), value=row.role if row else Role.OPERATOR, label='Роль')
        role.props('outlined dense').classes('w-full')
        group = ui.select(
            {0: 'Без группы'} | {g.id: g.name for g in groups},
            value=(row.group_id or 0) if row else 0,
            label='Группа',
        )
        group.props('outlined dense').classes('w-full')
        if row is None:
            password = ui.input('Пароль (пусто — сгенерировать)', password=True, password_toggle_button=True)
            password.props('outlined dense autocomplete=new-password').classes('w-full')
            ui.label('Пользователь сменит его при первом входе').classes('text-xs text-gray-600')
        with ui.row().classes('w-full justify-end'):
            ui.button('Отмена', on_click=dialog.close).props('flat')
            ui.button('Создать' if row is None else 'Сохранить', on_click=save).mark('user-save')
    dialog.open()


def reset_dialog(services: Services, actor: Actor, row: UserRow, refresh: Refresh) -> None:
    async def reset() -> None:
        done = await attempt(services.users.reset_password, actor, row.id, typed.value or None)
        if done is None:
            return
        dialog.close()
        show_password(done, 'Пароль сброшен')
        await refresh()

    with stable_dialog() as dialog, ui.card().classes('w-[32rem] gap-2'):
        ui.label(f'Сброс пароля: {row.full_name}').classes('text-lg font-semibold')
        ui.label(
            'Сеансы пользователя завершатся, при следующем входе он сменит пароль. Оставьте поле пустым, '
            'чтобы пароль сгенерировался.'
        ).classes('text-sm')
        typed = ui.input('Новый пароль', password=True, password_toggle_button=True)
        typed.props('outlined dense autocomplete=new-password').classes('w-full')
        with ui.row().classes('w-full justify-end'):
            ui.button('Отмена', on_click=dialog.close).props('flat')
            ui.button('Сбросить пароль', on_click=reset, color='negative').mark('reset-confirm')
    dialog.open()


def show_password(done: NewPassword, title: str) -> None:
    """The password, once: it is stored only hashed."""
    with stable_dialog() as dialog, ui.card().classes('w-[32rem] gap-2'):
        ui.label(f'{title}: {done.user.full_name}').classes('text-lg font-semibold')
        if done.generated:
            ui.label('Временный пароль показывается один раз: передайте его пользователю.').classes('text-sm')
            ui.input('Временный пароль', value=done.password).props('readonly outlined').classes(
                'w-full font-mono'
            )
        else:
            ui.label('Пароль задан. Пользователь сменит его при первом входе.').classes('text-sm')
        ui.button('Готово', on_click=dialog.close)
    dialog.open()


def group_section(
    services: Services, actor: Actor, groups: list[GroupRow], supervisors: list[UserRow], refresh: Refresh
) -> None:
    leaders = {0: 'Без руководителя'} | {s.id: s.full_name for s in supervisors}

    async def create() -> None:
        if await attempt(services.user_groups.create_group, actor, new_name.value or '') is not None:
            ui.notify('Группа создана', type='positive')
            await refresh()

    async def save(group: GroupRow, name: str, leader: int) -> None:
        if await attempt(services.user_groups.rename_group, actor, group.id, name) is None:
            return
        if await attempt(services.user_groups.set_supervisor, actor, group.id, leader or None) is None:
            return
        ui.notify(f'Группа «{name.strip()}» сохранена', type='positive')
        await refresh()

    with ui.card().classes('w-full gap-2'):
        for group in groups:
            with ui.row().classes('items-center gap-4'):
                name = ui.input('Название', value=group.name).props('outlined dense').classes('w-64')
                options = leaders | (
                    {group.supervisor_id: group.supervisor_name or ''} if group.supervisor_id else {}
                )
                leader = ui.select(options, value=group.supervisor_id or 0, label='Руководитель группы')
                leader.props('outlined dense').classes('w-64')
                ui.label(f'сотрудников: {group.members}').classes('text-sm text-gray-600')
                ui.button(
                    'Сохранить', on_click=lambda g=group, n=name, s=leader: save(g, n.value or '', s.value)
                ).props('flat dense')
        with ui.row().classes('items-center gap-4'):
            new_name = ui.input('Новая группа').props('outlined dense').classes('w-64')
            ui.button('Создать группу', icon='group_add', on_click=create).props('flat')
