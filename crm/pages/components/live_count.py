"""A header count («Чаты», «Обращения»): a badge hidden at 0, changed through ``run_method``.

Every element update makes NiceGUI redraw the whole page from its root in the browser; these counts
change at every new chat or request, in every open tab, so they change without one (``live_count.js``).
"""

from __future__ import annotations

from nicegui import ui


class LiveCount(ui.element, component='live_count.js'):
    def __init__(self, color: str) -> None:
        super().__init__()
        self._props.update(count=0, color=color)
        self.count = 0  # what the browser was last told

    def show(self, count: int) -> None:
        if count != self.count:
            self.count = count
            self.run_method('set', count)
