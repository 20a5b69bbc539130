"""«Мониторинг»'s charts (ECharts through ``ui.echart``): calls per hour today against yesterday, promises and
collections per hour, operators by state over the day. A chart is sent again only when its data changed,
and at most every ``REDRAW_EVERY_S``: hourly bars need no second-by-second life, and twenty dashboards
redrawing three charts at every tick kept a supervisor's browser busier than the rows it watches.
Without animation for the same reason."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from nicegui import ui

from crm.domain.operator_states import STATE_LABELS, OperatorState
from crm.services.dashboard import Hours

REDRAW_EVERY_S = 15.0
HOURS = [f'{h:02d}' for h in range(24)]
STATE_HEX = {  # the chips' Quasar colours, as ECharts needs them
    OperatorState.OFFLINE: '#9e9e9e',
    OperatorState.READY: '#21ba45',
    OperatorState.RINGING: '#ff8f00',
    OperatorState.TALKING: '#1976d2',
    OperatorState.ON_HOLD: '#7e57c2',
    OperatorState.WRAP_UP: '#0097a7',
    OperatorState.BREAK: '#e65100',
}


def _chart(title: str, series: list[dict[str, Any]], marker: str) -> ui.echart:
    options = {
        'animation': False,
        'title': {'text': title, 'textStyle': {'fontSize': 13}},
        'tooltip': {'trigger': 'axis'},
        'legend': {'bottom': 0},
        'grid': {'top': 40, 'left': 60, 'right': 20, 'bottom': 70},
        'xAxis': {'type': 'category', 'data': HOURS},
        'yAxis': {'type': 'value'},
        'series': series,
    }
    return ui.echart(options).classes('w-full h-64').mark(marker)


class DayCharts:
    def __init__(self) -> None:
        self._shown: dict[str, Any] = {}
        self._drawn_at: datetime | None = None
        with ui.grid(columns=3).classes('w-full gap-4'):
            with ui.card().classes('p-2'):
                self.calls = _chart(
                    'Звонки по часам',
                    [
                        {'name': 'Сегодня', 'type': 'bar', 'data': []},
                        {'name': 'Вчера', 'type': 'line', 'data': []},
                    ],
                    'chart-calls',
                )
            with ui.card().classes('p-2'):
                self.money = _chart(
                    'Обещания и платежи по часам, ₽',
                    [
                        {'name': 'Обещано', 'type': 'bar', 'data': []},
                        {'name': 'Оплачено', 'type': 'bar', 'data': []},
                    ],
                    'chart-money',
                )
            with ui.card().classes('p-2'):
                series = [
                    {
                        'name': STATE_LABELS[s],
                        'type': 'bar',
                        'stack': 'states',
                        'data': [],
                        'color': STATE_HEX[s],
                    }
                    for s in OperatorState
                ]
                self.states = _chart('Операторы по статусам', series, 'chart-states')

    def show(self, hours: Hours, now: datetime) -> None:
        if self._drawn_at is not None and now - self._drawn_at < timedelta(seconds=REDRAW_EVERY_S):
            return
        self._drawn_at = now
        self._set('calls', self.calls, [list(hours.calls_today), list(hours.calls_yesterday)])
        money = [[float(v) for v in hours.promised], [float(v) for v in hours.collected]]
        self._set('money', self.money, money)
        self._set('states', self.states, [list(hours.states.get(s, ())) for s in OperatorState])

    def _set(self, key: str, chart: ui.echart, data: list[list[Any]]) -> None:
        if self._shown.get(key) == data:
            return
        self._shown[key] = data
        for series, values in zip(chart.options['series'], data, strict=True):
            series['data'] = values
        chart.update()
