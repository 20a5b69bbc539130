"""NiceGUI pages: thin, they call services and render what comes back."""

from __future__ import annotations

from nicegui import app

from crm.bootstrap import Services
from crm.pages import borrower_list, card, login, search
from crm.pages.session import AuthMiddleware


def register_pages(services: Services) -> None:
    app.add_middleware(AuthMiddleware)
    login.register(services)
    borrower_list.register(services)
    search.register(services)
    card.register(services)
    app.on_shutdown(services.close)
