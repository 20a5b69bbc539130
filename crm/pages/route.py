"""``page``: every screen's route, with time to build under load.

NiceGUI gives a page function 3 s (``response_timeout``) and then answers with its own English terminal
error page. On a busy 2-core machine (twenty dashboards opening at once, a burst of pops) a card or a
dashboard may take longer than that to read; the operator is better served by a page that arrives late
than by an error page, so pages here wait up to ``BUILD_S``.
"""

from __future__ import annotations

from nicegui import ui

BUILD_S = 30.0


def page(path: str) -> ui.page:
    return ui.page(path, response_timeout=BUILD_S)
