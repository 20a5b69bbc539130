"""«Вход в систему»: login or e-mail and password; lockout after repeated failures."""

from __future__ import annotations

from fastapi.responses import RedirectResponse
from nicegui import app, ui

from crm.bootstrap import Services
from crm.domain.errors import LoginFailed
from crm.pages.layout import BRAND_COLOR
from crm.pages.off_loop import service
from crm.pages.session import current_actor, log_in, log_out, safe_redirect


def register(services: Services) -> None:
    @ui.page('/login')
    async def login_page(redirect_to: str = '/') -> RedirectResponse | None:
        target = safe_redirect(redirect_to)
        if app.storage.user.get('user_id') and await current_actor(services.auth):
            return RedirectResponse(target)

        async def submit() -> None:
            error.set_text('')
            button.props('loading')
            try:
                actor = await service(services.auth.authenticate, login.value or '', password.value or '')
            except LoginFailed as failure:
                error.set_text(failure.message)
                password.set_value('')
                return
            finally:
                button.props(remove='loading')
            log_in(actor)
            ui.navigate.to(target)

        ui.page_title('Вход в систему — Lender CRM')
        ui.colors(primary=BRAND_COLOR)
        ui.query('body').classes('bg-slate-100')
        with ui.card().classes('absolute-center w-96 p-8 gap-4'):
            ui.label('Вход в систему').classes('text-2xl font-semibold self-center')
            login = (
                ui.input('Логин/Email').props('outlined autofocus autocomplete=username').classes('w-full')
            )
            with login.add_slot('prepend'):
                ui.icon('person')
            password = ui.input('Пароль', password=True, password_toggle_button=True)
            password.props('outlined autocomplete=current-password').classes('w-full')
            with password.add_slot('prepend'):
                ui.icon('lock')
            error = ui.label('').classes('text-negative text-sm').props('role=alert')
            button = ui.button('Войти', on_click=submit).classes('w-full')
            login.on('keydown.enter', submit)
            password.on('keydown.enter', submit)
        return None

    @ui.page('/logout')
    async def logout_page() -> RedirectResponse:
        actor = await current_actor(services.auth)
        if actor is not None:
            await service(services.auth.logout, actor)
        log_out()
        return RedirectResponse('/login')
