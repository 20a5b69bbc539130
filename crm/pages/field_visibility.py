"""«Видимость полей» (/admin/fields, administrators): the matrix role × borrower field, a select per cell
(скрыто / маска / видно). Saved at once for every process (crm/services/field_visibility.py); audited."""

from __future__ import annotations

from nicegui import ui

from crm.bootstrap import Services
from crm.domain import Role
from crm.domain.actor import Actor
from crm.domain.field_visibility import FIELD_LABELS, MODE_LABELS, ROLE_LABELS, ROLES, Field, Mode, Policy
from crm.pages.layout import admin_frame
from crm.pages.live import LiveHub
from crm.pages.off_loop import attempt, service
from crm.pages.route import page
from crm.pages.session import page_actor

ABOUT = (
    'Что каждая роль видит в карточке, поиске, списке, выгрузках CSV и HTTP API. «Маска» оставляет часть '
    'значения (+7 928 ***-**-77); открыть его целиком можно кнопкой «Показать» в карточке — каждый такой '
    'показ записывается в журнал действий. Замаскированный телефон можно набрать. Изменения действуют сразу.'
)
MODE_OPTIONS = {mode.value: MODE_LABELS[mode] for mode in Mode}


def register(services: Services, hub: LiveHub) -> None:
    @page('/admin/fields')
    async def fields_page() -> None:
        actor = page_actor(Role.ADMIN)
        if actor is None:
            return
        policy = await service(services.field_visibility.matrix, actor)
        with admin_frame(services, hub, actor, 'Видимость полей', ABOUT):
            Matrix(services, actor, policy)


class Matrix:
    """A grid: a row per field, a column per role, a select in each cell."""

    def __init__(self, services: Services, actor: Actor, policy: Policy) -> None:
        self._services, self._actor = services, actor
        self.cells: dict[tuple[str, str], ui.select] = {}
        with ui.card().classes('max-w-5xl'):
            with ui.grid(columns=len(ROLES) + 1).classes('items-center gap-x-4 gap-y-2'):
                ui.label('Поле').classes('font-medium')
                for role in ROLES:
                    ui.label(ROLE_LABELS[role]).classes('font-medium')
                for field in Field:
                    ui.label(FIELD_LABELS[field])
                    for role in ROLES:
                        select = ui.select(MODE_OPTIONS, value=policy.mode(role, field).value)
                        select.props('outlined dense').classes('w-36').mark(f'cell-{role}-{field.value}')
                        self.cells[(role, field.value)] = select
            with ui.row().classes('w-full justify-end'):
                ui.button('Сохранить', icon='save', on_click=self.save).mark('fields-save')

    async def save(self) -> None:
        cells = {key: Mode(select.value) for key, select in self.cells.items()}
        saved = await attempt(self._services.field_visibility.save, self._actor, cells)
        if saved is not None:
            ui.notify('Видимость полей сохранена: действует сразу', type='positive')
