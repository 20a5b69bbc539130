"""Lender CRM: read the settings, build the system, register pages and API, serve."""

from __future__ import annotations

import asyncio
import logging
import sys

from nicegui import app, background_tasks, ui

from crm import bootstrap, gc_pacing
from crm.api import routes as api_routes
from crm.config import Settings
from crm.db.migrate import DatabaseNotReady
from crm.integrations.rabbitmq import BusUnavailable
from crm.log_privacy import keep_personal_data_out_of_logs
from crm.pages import register_pages
from crm.pages.live import LiveHub

RECONNECT_S = 30.0


def serve(system: bootstrap.System, hub: LiveHub) -> None:
    """Tie the system's lifecycle to the web server's: it starts and stops with it."""

    async def start() -> None:
        hub.attach_loop(asyncio.get_running_loop())
        await asyncio.to_thread(system.start, hub.on_ui, hub.watches)
        if gc_pacing.take_over_full_collections():
            background_tasks.create(
                gc_pacing.collect_when_quiet(hub.quiet_for), name='full garbage collections'
            )

    async def stop() -> None:
        await asyncio.to_thread(hub.close)  # a card still being read must not outlive the database
        await asyncio.to_thread(system.stop)

    app.on_startup(start)
    app.on_shutdown(stop)


def main() -> None:
    settings = Settings.from_env()
    system = bootstrap.build(settings)
    try:
        system.check_ready()
    except (DatabaseNotReady, BusUnavailable) as error:
        print(error, file=sys.stderr)
        sys.exit(2)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    keep_personal_data_out_of_logs()
    # The event loop shares the interpreter with the bus consumer and the database workers; a thread
    # that wants the GIL waits at most this long (default 5 ms), which bounds how long a screen pop
    # can wait behind a card being loaded for another tab.
    sys.setswitchinterval(0.001)
    hub = LiveHub()
    api_routes.install(app, system.services)
    register_pages(system.services, hub)
    serve(system, hub)
    ui.run(
        host=settings.host,
        port=settings.port,
        title='Lender CRM',
        language='ru',
        storage_secret=settings.storage_secret(),
        show=False,
        reload=False,
        favicon='💼',
        # NiceGUI derives the socket's ping from this: every 0.8× (24 s), answered within 0.4× (12 s). At
        # 10 s a tab that could not answer within 4 s — a browser or a process busy for a moment — was cut
        # and reloaded; a page is also kept this long for a tab that comes back
        reconnect_timeout=RECONNECT_S,
        fastapi_docs=True,
    )


if __name__ in {'__main__', '__mp_main__'}:
    main()
