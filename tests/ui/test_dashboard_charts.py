"""«Мониторинг»'s charts: drawn from the figures' hours at once, then at most every REDRAW_EVERY_S (a tick
every 2 s must not redraw twenty browsers' charts), and without animation."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from nicegui import ui
from nicegui.testing import User

from crm.domain import Role
from crm.domain.operator_states import OperatorState
from crm.pages.components.dashboard_charts import REDRAW_EVERY_S, DayCharts
from crm.services.dashboard import Hours
from tests.conftest import TEST_NOW
from tests.factories import make_user
from tests.ui.conftest import log_in, until
from tests.ui.test_screen_pop import panel_says


def hours(calls_at_ten: int) -> Hours:
    calls = tuple(calls_at_ten if h == 10 else 0 for h in range(24))
    zero = tuple(0 for _ in range(24))
    money = tuple(Decimal('1500.50') if h == 10 else Decimal(0) for h in range(24))
    states = {OperatorState.READY: tuple(3 if h == 10 else 0 for h in range(24))}
    return Hours(calls, zero, zero, money, money, states)


async def test_charts_redraw_at_most_every_few_seconds(user: User, sessions) -> None:
    operator = make_user(sessions, role=Role.OPERATOR, password='secret')
    await log_in(user, operator.login, 'secret', path='/')
    await until(lambda: panel_says(user, 'Нет активного звонка'))
    with user, ui.context.client.content:
        charts = DayCharts()
        charts.show(hours(7), TEST_NOW)
        assert charts.calls.options['series'][0]['data'][10] == 7
        assert charts.money.options['series'][0]['data'][10] == 1500.5
        assert charts.states.options['series'][1]['data'][10] == 3  # Готов, after Не в сети
        assert charts.calls.options['animation'] is False

        charts.show(hours(8), TEST_NOW + timedelta(seconds=REDRAW_EVERY_S - 1))
        assert charts.calls.options['series'][0]['data'][10] == 7  # too soon: kept
        charts.show(hours(9), TEST_NOW + timedelta(seconds=REDRAW_EVERY_S))
        assert charts.calls.options['series'][0]['data'][10] == 9
