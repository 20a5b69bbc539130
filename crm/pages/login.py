"""«Вход в систему»: login or e-mail and password; lockout after repeated failures."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import app, ui

from crm.bootstrap import Services
from crm.domain.errors import LoginFailed
from crm.pages.layout import BRAND_COLOR
from crm.pages.off_loop import service
from crm.pages.route import page
from crm.pages.session import COOKIE, safe_redirect, session_token, set_session_cookie


def register(services: Services) -> None:
    sessions = services.sessions

    @app.get('/login/complete', include_in_schema=False)
    def complete_login(request: Request, ticket: str = '', redirect_to: str = '/') -> RedirectResponse:
        """The browser trades the one-time ticket of a right password for a new session cookie."""
        exchanged = sessions.exchange(ticket, request.cookies.get(COOKIE))
        if exchanged is None:
            return RedirectResponse('/login?' + urlencode({'redirect_to': safe_redirect(redirect_to)}), 303)
        token, _actor = exchanged
        response = RedirectResponse(safe_redirect(redirect_to), 303)
        set_session_cookie(response, request, token, int(sessions.max_age.total_seconds()))
        return response

    @app.get('/logout', include_in_schema=False)
    def logout(request: Request) -> RedirectResponse:
        sessions.end(request.cookies.get(COOKIE))
        response = RedirectResponse('/login', 303)
        response.delete_cookie(COOKIE, path='/')
        return response

    @page('/login')
    async def login_page(redirect_to: str = '/') -> RedirectResponse | None:
        target = safe_redirect(redirect_to)
        if await service(sessions.resolve, session_token()) is not None:
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
            ticket = await service(sessions.begin, actor)
            ui.navigate.to('/login/complete?' + urlencode({'ticket': ticket, 'redirect_to': target}))

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
