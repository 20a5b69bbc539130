"""The borrower card on the page: its markup (``card_markup``) in three elements, the supervisor's legal
status dialog, and the «Неизвестный номер» panel when a caller matched nobody."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from nicegui import ui

from crm.domain.contact_rules import LEGAL_FLAG_LABELS, LegalFlag
from crm.domain.field_visibility import birth_date_shown
from crm.domain.identifiers import digits, format_phone
from crm.pages.components.card_markup import CardMarkup
from crm.services import views as v


def markup(content: str) -> ui.html:
    """Markup made by ``card_markup``'s templates, every datum escaped there."""
    return ui.html(content, sanitize=False)


class HistoryPanel:
    """The communication history, and the card's head above it; redrawn in place when a contact or a
    payment is recorded in any tab (the head shows the debts and the broken-promise flag)."""

    def __init__(self, content: str, top: ui.html | None = None) -> None:
        self.top = top
        self.view = markup(content).classes('q-card crm-panel crm-history')

    def update(self, content: str, top: str | None = None) -> None:
        self.view.set_content(content)
        if top is not None and self.top is not None:
            self.top.set_content(top)


FlagsSaver = Callable[[list[LegalFlag]], Awaitable[None]]


def legal_status_dialog(card: v.BorrowerCard, save: FlagsSaver) -> None:
    """Supervisors and admins set the legal status that forbids outgoing contact."""
    with ui.dialog() as dialog, ui.card().classes('w-[32rem]'):
        ui.label('Правовой статус заёмщика').classes('text-lg font-semibold')
        ui.label('Любая отметка запрещает исходящие звонки и сообщения (230-ФЗ).').classes('text-sm')
        boxes = {
            flag: ui.checkbox(label, value=flag in card.legal_flags)
            for flag, label in LEGAL_FLAG_LABELS.items()
        }

        async def apply() -> None:
            dialog.close()
            await save([flag for flag, box in boxes.items() if box.value])

        with ui.row().classes('w-full justify-end'):
            ui.button('Отмена', on_click=dialog.close).props('flat')
            ui.button('Сохранить', on_click=apply)
    dialog.open()


def show(
    card: v.BorrowerCard,
    drawn: CardMarkup,
    save_flags: FlagsSaver | None = None,
    actions: Callable[[], object] | None = None,
) -> HistoryPanel:
    """The whole card from its markup; returns the history panel so a new contact can be shown in place.
    ``actions`` draws the card's own buttons above it («Добавить запись»)."""
    if save_flags is not None or actions is not None:
        with ui.row().classes('w-full justify-end -mb-2'):
            if actions is not None:
                actions()
            if save_flags is not None:
                ui.button(
                    'Правовой статус', icon='gavel', on_click=lambda: legal_status_dialog(card, save_flags)
                ).props('flat dense no-caps')
    top = markup(drawn.top).classes('crm-card')
    with ui.element('div').classes('crm-card-grid'):
        history = HistoryPanel(drawn.history, top)
        markup(drawn.tabs).classes('q-card crm-panel crm-tabs-card')
    return history


SearchFn = Callable[[str], Awaitable[v.SearchResult | str]]


def unknown_caller(number: str, search: SearchFn, on_pick: Callable[[int], Awaitable[None]]) -> None:
    """«Неизвестный номер»: the caller's number matched nobody; search in place, the number prefilled."""

    async def run_search() -> None:
        outcome = await search(box.value or '')
        results.clear()
        with results:
            if isinstance(outcome, str):
                ui.label(outcome).classes('text-warning')
            elif not outcome.items:
                ui.label('Никого не нашли — попробуйте ФИО, паспорт или PIN').classes('text-gray-600')
            else:
                for row in outcome.items:
                    with ui.row().classes('items-center gap-3'):
                        ui.button(row.full_name, on_click=lambda r=row: on_pick(r.id)).props(
                            'flat dense no-caps'
                        )
                        born = birth_date_shown(row.birth_date, row.birth_year)
                        ui.label(f'PIN: {row.pin} · {row.city} · {born}').classes('text-sm')

    with ui.card().classes('w-full'):
        with ui.row().classes('items-center gap-3'):
            ui.icon('person_search', size='lg').classes('text-orange-700')
            with ui.column().classes('gap-0'):
                ui.label('Неизвестный номер').classes('text-xl font-semibold')
                ui.label(format_phone(number)).classes('text-lg')
        ui.label(
            'Номер не найден среди заёмщиков. Найдите звонящего по ФИО, паспорту или PIN '
            'и выберите его — звонок будет привязан к нему.'
        ).classes('text-sm text-gray-700')
        with ui.row().classes('items-center gap-2'):
            box = ui.input('Поиск заёмщика', value=digits(number) or number).props('outlined dense clearable')
            box.classes('w-96').on('keydown.enter', run_search)
            ui.button('Найти', icon='search', on_click=run_search).props('outline')
        results = ui.column().classes('gap-1')
