"""NiceGUI pages: thin, they call services and render what comes back."""

from __future__ import annotations

import asyncio

from nicegui import app, background_tasks

from crm import gc_pacing
from crm.api import routes as api_routes
from crm.bootstrap import Services
from crm.pages import admin, borrower_list, card, login, search
from crm.pages.live import LiveHub
from crm.pages.session import AuthMiddleware


def register_pages(services: Services) -> LiveHub:
    """Pages, the auth middleware, and the bus: it starts with the app and feeds the live hub."""
    hub = LiveHub()
    app.add_middleware(AuthMiddleware)
    api_routes.install(app, services)
    login.register(services)
    for module in (borrower_list, search, card, admin):
        module.register(services, hub)

    async def start_bus() -> None:
        hub.attach_loop(asyncio.get_running_loop())
        await asyncio.to_thread(services.bus.start, services.calls.handle_deliveries, hub.on_ui)
        if services.pbx is not None:
            services.pbx.attach()
        if gc_pacing.take_over_full_collections():
            background_tasks.create(
                gc_pacing.collect_when_quiet(hub.quiet_for), name='full garbage collections'
            )

    async def stop_bus() -> None:
        await asyncio.to_thread(services.bus.stop)
        services.close()

    app.on_startup(start_bus)
    app.on_shutdown(stop_bus)
    return hub
