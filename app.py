"""Lender CRM: read the settings, build the services, register pages and API, serve."""

from __future__ import annotations

import logging
import sys

from nicegui import ui

from crm import bootstrap
from crm.config import Settings
from crm.db.migrate import DatabaseNotReady, check_ready
from crm.integrations.rabbitmq import BusUnavailable, check_reachable
from crm.pages import register_pages


def main() -> None:
    settings = Settings.from_env()
    services = bootstrap.build(settings)
    try:
        check_ready(services.engine)
        if settings.amqp_url:
            check_reachable(settings.amqp_url)
    except (DatabaseNotReady, BusUnavailable) as error:
        print(error, file=sys.stderr)
        sys.exit(2)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    # The event loop shares the interpreter with the bus consumer and the database workers; a thread
    # that wants the GIL waits at most this long (default 5 ms), which bounds how long a screen pop
    # can wait behind a card being loaded for another tab.
    sys.setswitchinterval(0.001)
    register_pages(services)
    ui.run(
        host=settings.host,
        port=settings.port,
        title='Lender CRM',
        language='ru',
        storage_secret=settings.storage_secret(),
        show=False,
        reload=False,
        favicon='💼',
        reconnect_timeout=10,
        fastapi_docs=True,
    )


if __name__ in {'__main__', '__mp_main__'}:
    main()
