"""NiceGUI pages: thin, they call services and render what comes back. This module only registers them."""

from __future__ import annotations

from nicegui import Client, app

from crm.bootstrap import Services
from crm.pages import (
    admin,
    audit,
    borrower_list,
    card,
    chats,
    errors,
    field_visibility,
    login,
    mailings,
    monitoring,
    outbox,
    password,
    portfolio,
    products,
    requests,
    search,
    templates,
    users,
)
from crm.pages.element_cycles import release_deleted_elements
from crm.pages.headers import SecurityHeaders
from crm.pages.live import LiveHub
from crm.pages.session import AuthMiddleware


def register_pages(services: Services, hub: LiveHub) -> None:
    """Every page, behind the login middleware; pages with a live area register their tabs in ``hub``."""
    release_deleted_elements()
    app.add_middleware(AuthMiddleware, sessions=services.sessions)
    app.add_middleware(SecurityHeaders)
    services.metrics.gauge('crm_ui_clients', 'Browser tabs connected to this process', _connected_tabs)
    login.register(services)
    errors.register(services, hub)
    pages = (borrower_list, search, card, admin, templates, chats, mailings, outbox, products, requests)
    for module in (*pages, audit, password, users, monitoring, portfolio, field_visibility):
        module.register(services, hub)


def _connected_tabs() -> int:
    """NiceGUI clients with a live websocket (a copy of the values: read off the loop)."""
    return sum(1 for client in list(Client.instances.values()) if client.has_socket_connection)
