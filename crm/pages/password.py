"""«Смена пароля» (/password): any user changes their own password; a user whose password an
administrator set or reset is sent here by the login middleware before anything else."""

from __future__ import annotations

from nicegui import ui

from crm.bootstrap import Services
from crm.domain.password_policy import describe
from crm.pages.layout import BRAND_COLOR
from crm.pages.live import LiveHub
from crm.pages.off_loop import attempt
from crm.pages.route import page
from crm.pages.session import PASSWORD_PATH, page_actor, safe_redirect


def register(services: Services, hub: LiveHub) -> None:
    @page(PASSWORD_PATH)
    async def password_page(redirect_to: str = '/') -> None:
        actor = page_actor()
        if actor is None:
            return
        target = safe_redirect(redirect_to)
        if target.startswith(PASSWORD_PATH):
            target = '/'

        async def submit() -> None:
            error.set_text('')
            if (new.value or '') != (again.value or ''):
                error.set_text('Новый пароль и его повтор не совпадают')
                return
            button.props('loading')
            try:
                changed = await attempt(
                    services.users.change_own_password, actor, current.value or '', new.value or ''
                )
            finally:
                button.props(remove='loading')
            if changed is None:
                return
            ui.notify('Пароль изменён', type='positive')
            ui.navigate.to(target)

        ui.page_title('Смена пароля — Lender CRM')
        ui.colors(primary=BRAND_COLOR)
        ui.query('body').classes('bg-slate-100')
        with ui.card().classes('absolute-center w-[28rem] p-8 gap-4'):
            ui.label('Смена пароля').classes('text-2xl font-semibold self-center')
            if actor.must_change_password:
                ui.label(
                    'Пароль задан администратором: придумайте свой, прежде чем продолжить работу.'
                ).classes('text-sm text-warning')
            ui.label(f'{actor.full_name} ({actor.login})').classes('text-sm text-gray-600')
            current = ui.input('Текущий пароль', password=True, password_toggle_button=True)
            current.props('outlined autofocus autocomplete=current-password').classes('w-full')
            new = ui.input('Новый пароль', password=True, password_toggle_button=True)
            new.props('outlined autocomplete=new-password').classes('w-full')
            again = ui.input('Новый пароль ещё раз', password=True, password_toggle_button=True)
            again.props('outlined autocomplete=new-password').classes('w-full')
            ui.label(describe(services.users.min_password_length)).classes('text-xs text-gray-600')
            error = ui.label('').classes('text-negative text-sm').props('role=alert')
            button = ui.button('Сменить пароль', on_click=submit).classes('w-full')
            again.on('keydown.enter', submit)
            with ui.row().classes('w-full justify-between'):
                if not actor.must_change_password:
                    ui.link('Назад', target).classes('text-sm')
                ui.link('Выйти', '/logout').classes('text-sm')
