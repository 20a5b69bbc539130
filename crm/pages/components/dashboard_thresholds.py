"""«Пороги» on «Мониторинг»: a dialog with a line per coloured state — three thresholds in seconds,
«Сохранить» and «По умолчанию» (administrators); supervisors see the same lines read-only.

A line is saved whole or not at all (the service checks all three first); a refusal shows next to the
field it names. Every process's dashboards colour by the saved values from their next tick.
"""

from __future__ import annotations

from collections.abc import Callable

from nicegui import ui

from crm.bootstrap import Services
from crm.domain import Role
from crm.domain import formatting as fmt
from crm.domain.actor import Actor
from crm.domain.dashboard_thresholds import FIELD_LABELS, FIELDS, BadThreshold, text
from crm.domain.errors import ServiceError
from crm.domain.operator_states import STATE_COLORS, OperatorState
from crm.pages.off_loop import service
from crm.services.dashboard_thresholds import ThresholdLine

ABOUT = (
    'Строка оператора окрашивается жёлтым, оранжевым и красным, когда время в статусе больше порога 1, 2 '
    'и 3. Пороги — в секундах, каждый не меньше предыдущего, не больше суток. «По умолчанию» возвращает '
    'значения из настроек. Изменения видны на мониторинге у всех в течение нескольких секунд и '
    'записываются в журнал действий.'
)
SWATCHES = {'warn': 'crm-level-1', 'alert': 'crm-level-2', 'critical': 'crm-level-3'}  # monitoring's sheet
GRID = 'grid-template-columns: 10rem repeat(3, 11rem) auto'


async def open_thresholds(services: Services, actor: Actor) -> None:
    """Read the lines now (another administrator may have changed them) and show the dialog."""
    lines = await service(services.dashboard_thresholds.lines, actor)
    with ui.context.client.layout, ui.dialog() as dialog, ui.card().classes('w-[64rem] max-w-full gap-2'):
        ThresholdsTable(services, actor, lines)
        with ui.row().classes('w-full justify-end'):
            ui.button('Закрыть', on_click=dialog.close).props('flat').mark('thresholds-close')
    dialog.mark('thresholds-dialog')
    dialog.open()
    await dialog
    dialog.delete()


class ThresholdsTable:
    def __init__(self, services: Services, actor: Actor, lines: list[ThresholdLine]) -> None:
        self._services, self._actor = services, actor
        self.editable = actor.role == Role.ADMIN
        self.inputs: dict[OperatorState, dict[str, ui.number]] = {}
        self.notes: dict[OperatorState, ui.label] = {}
        self.resets: dict[OperatorState, ui.button] = {}
        ui.label('Пороги времени в статусе').classes('text-lg font-semibold')
        ui.label(ABOUT if self.editable else ABOUT.split(' «По умолчанию»')[0]).classes(
            'text-sm text-gray-600'
        )
        with ui.element('div').classes('grid w-full items-start gap-x-3 gap-y-1').style(GRID):
            ui.label('Состояние').classes('text-xs font-medium text-gray-600')
            for field in FIELDS:
                ui.label(f'{FIELD_LABELS[field]}, с').classes(
                    f'text-xs font-medium text-gray-700 rounded px-2 {SWATCHES[field]}'
                )
            ui.label('')
            for line in lines:
                self._line(line)

    def _line(self, line: ThresholdLine) -> None:
        state = line.state
        with ui.column().classes('gap-0 pt-2'):
            ui.label(line.label).classes(f'rounded px-2 text-white text-sm bg-{STATE_COLORS[state]}')
            self.notes[state] = ui.label('').classes('text-xs text-gray-500').mark(f'threshold-note-{state}')
        fields: dict[str, ui.number] = {}
        for field, value in zip(FIELDS, line.limits, strict=True):
            number = ui.number(value=value, format='%d').props('outlined dense hide-bottom-space')
            number.props(f'aria-label="{FIELD_LABELS[field]}: {line.label}"').without_auto_validation()
            number.mark(f'threshold-{state}-{field}')
            if not self.editable:
                number.props('readonly')
            fields[field] = number
        self.inputs[state] = fields
        with ui.row().classes('gap-1 no-wrap pt-1'):
            if self.editable:
                ui.button('Сохранить', on_click=lambda s=state: self.save(s)).props('dense no-caps').mark(
                    f'threshold-save-{state}'
                )
                reset = ui.button('По умолчанию', on_click=lambda s=state: self.reset(s))
                self.resets[state] = (
                    reset.props('dense flat no-caps')
                    .classes('whitespace-nowrap')
                    .mark(f'threshold-reset-{state}')
                )
        self._show(line)

    def _show(self, line: ThresholdLine) -> None:
        """A line as the service returned it: its values, whether it is the default, who changed it."""
        for field, value in zip(FIELDS, line.limits, strict=True):
            self.inputs[line.state][field].value = value
            self.inputs[line.state][field].error = None
        if line.changed:
            who = f'{line.updated_by}, ' if line.updated_by else ''
            when = fmt.moment(line.updated_at) if line.updated_at else ''
            self.notes[line.state].set_text(f'изменено: {who}{when}; по умолчанию {text(line.default)}')
        else:
            self.notes[line.state].set_text('по умолчанию')
        if line.state in self.resets:
            self.resets[line.state].set_enabled(line.changed)

    async def save(self, state: OperatorState) -> None:
        inputs = self.inputs[state]
        for number in inputs.values():
            number.error = None
        values = [inputs[field].value for field in FIELDS]
        line = await self._call(state, self._services.dashboard_thresholds.save, self._actor, state, *values)
        if line is not None:
            self._show(line)
            ui.notify(f'Пороги «{line.label}» сохранены', type='positive')

    async def reset(self, state: OperatorState) -> None:
        line = await self._call(state, self._services.dashboard_thresholds.reset, self._actor, state)
        if line is not None:
            self._show(line)
            ui.notify(f'Пороги «{line.label}»: по умолчанию', type='positive')

    async def _call(
        self, state: OperatorState, action: Callable[..., ThresholdLine], *args: object
    ) -> ThresholdLine | None:
        """The service's answer, or None with its refusal shown: next to the field it names, else above."""
        try:
            return await service(action, *args)
        except BadThreshold as error:
            target = self.inputs[state].get(error.field)
            if target is not None:
                target.error = error.message
            else:
                ui.notify(error.message, type='warning', multi_line=True)
        except ServiceError as error:
            ui.notify(error.message, type='warning', multi_line=True)
        return None
