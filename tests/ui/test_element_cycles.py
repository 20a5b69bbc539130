"""Deleted elements are freed by reference counting (crm.pages.element_cycles): a screen pop redraws the
card, and what it deletes must not wait for a full garbage collection."""

from __future__ import annotations

import gc

from nicegui import ui
from nicegui.testing import User

from crm.domain import Role
from tests.factories import make_user
from tests.ui.conftest import log_in, until
from tests.ui.test_screen_pop import panel_says

OBSERVERS = ('Classes', 'Style', 'Props')


def self_referring_field() -> None:
    field = ui.input('Сумма')
    field.on_value_change(lambda: field.set_visibility(bool(field.value)))  # the closure refers to the field


async def test_deleted_elements_leave_no_reference_cycles(user: User, sessions) -> None:
    operator = make_user(sessions, role=Role.OPERATOR, password='secret')
    await log_in(user, operator.login, 'secret', path='/')
    await until(lambda: panel_says(user, 'Нет активного звонка'))
    with user:
        with ui.context.client.content:
            box = ui.column()
        with box:
            for number in range(20):
                ui.label(str(number)).classes('p-1').style('color: red').props('dense')
            self_referring_field()
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        with user:
            box.clear()
        gc.collect()
        left = [type(o).__name__ for o in gc.garbage]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert not [name for name in left if name in (*OBSERVERS, 'Label', 'Input')], left
