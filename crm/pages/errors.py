"""Error pages in Russian, inside the normal frame, with a way back; no exception text is ever shown.

NiceGUI's own pages for a missing route (404), a path parameter that does not parse (FastAPI's 422) and
an exception in a page (500) are English and show the exception; these handlers replace them for pages.
The HTTP API under /api/ keeps FastAPI's JSON answers (a field-named 422, a 404 with its detail).
"""

from __future__ import annotations

from fastapi import Request, Response
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from nicegui import Client, app, ui
from nicegui.page import page
from starlette.exceptions import HTTPException

from crm.bootstrap import Services
from crm.domain.actor import Actor
from crm.pages.layout import frame
from crm.pages.live import LiveHub
from crm.pages.session import draw_refusals_with

MAX_ID = 2**63 - 1  # ids are BIGINT at most: a larger number in an address is a page that does not exist

TEXTS = {
    404: ('Страница не найдена', 'Такой страницы нет, или ссылка устарела.'),
    500: (
        'Ошибка на сервере',
        'Не получилось показать страницу. Попробуйте ещё раз; '
        'если ошибка повторится, сообщите администратору.',
    ),
}


def valid_id(value: int) -> bool:
    return 0 < value <= MAX_ID


def error_body(status: int) -> None:
    """What an error page says, and the way back."""
    title, about = TEXTS[404 if status < 500 else 500]
    ui.page_title(f'{title} — Lender CRM')
    with ui.column().classes('w-full items-center gap-3 py-16').mark('error-page'):
        ui.label(str(status)).classes('text-5xl font-light text-gray-400')
        ui.label(title).classes('text-2xl font-semibold')
        ui.label(about).classes('text-gray-600')
        with ui.row().classes('gap-2 pt-2'):
            ui.button('Назад', on_click=lambda: ui.run_javascript('history.back()')).props('outline')
            ui.button('На главную', on_click=lambda: ui.navigate.to('/'))


def not_found() -> None:
    """Inside a page: answer 404 with the Russian page (e.g. an id out of range)."""
    ui.context.client.status_code = 404
    error_body(404)


def register(services: Services, hub: LiveHub) -> None:
    def refusal(actor: Actor, text: str) -> None:
        centred = 'w-full items-center gap-3 py-16'
        with frame(services, hub, actor, 'Нет доступа'), ui.column().classes(centred):
            ui.icon('lock', size='3rem').classes('text-gray-400')
            ui.label(text).classes('text-xl font-semibold')
            ui.button('На главную', on_click=lambda: ui.navigate.to('/'))

    draw_refusals_with(refusal)

    def framed(request: Request, status: int) -> None:
        actor = getattr(request.state, 'actor', None)
        if actor is None:  # before login (the middleware sends those to it) or a bare route
            error_body(status)
            return
        with frame(services, hub, actor, TEXTS[404 if status < 500 else 500][0]):
            error_body(status)

    def page_response(request: Request, status: int) -> Response:
        with Client(page(''), request=request) as client:
            framed(request, status)
        return client.build_response(request, status)

    def is_api(request: Request) -> bool:
        return request.url.path.startswith('/api/')

    async def on_not_found(request: Request, error: Exception) -> Response:
        if isinstance(error, HTTPException) and (is_api(request) or _static(request)):
            return await http_exception_handler(request, error)
        return page_response(request, 404)

    async def on_bad_address(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        if is_api(request):
            return await request_validation_exception_handler(request, error)
        return page_response(request, 404)  # /borrower/abc: no such page

    def on_page_exception(error: Exception) -> None:
        """An exception while a page was built: NiceGUI logs it; the browser gets the Russian page."""
        framed(ui.context.client.request, 500)

    app.add_exception_handler(404, on_not_found)
    app.add_exception_handler(RequestValidationError, on_bad_address)
    app.on_page_exception(on_page_exception)


def _static(request: Request) -> bool:
    """NiceGUI's own files (/_nicegui/…): a missing one is a plain 404, not a page."""
    return request.url.path.startswith('/_nicegui/')
