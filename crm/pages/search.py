"""Search results in the seed's layout: name, PIN, city, phone, passport, loan, date of birth."""

from __future__ import annotations

from nicegui import ui

from crm.bootstrap import Services
from crm.domain import formatting as fmt
from crm.domain.actor import Actor
from crm.domain.errors import BadQuery
from crm.domain.field_visibility import birth_date_shown
from crm.domain.identifiers import format_passport, format_phone
from crm.pages.layout import frame, search_box, search_url
from crm.pages.live import LiveHub
from crm.pages.off_loop import service
from crm.pages.route import page
from crm.pages.session import page_actor
from crm.services.views import BorrowerRow

HINT = (
    'Введите часть ФИО, телефон или его последние цифры, паспорт, PIN, ИНН, СНИЛС, номер займа или e-mail '
    'и нажмите Enter'
)


def result_line(row: BorrowerRow) -> str:
    parts = [f'PIN: {row.pin}', row.city]
    if row.phones:
        parts.append('Тел: ' + ', '.join(format_phone(p) for p in row.phones))
    if row.passport:
        parts.append(f'Паспорт: {format_passport(row.passport)}')
    if row.loan:
        parts.append(f'Заём {row.loan.product}')
    return ' · '.join(parts)


def result_item(row: BorrowerRow) -> None:
    with ui.item(on_click=lambda: ui.navigate.to(f'/borrower/{row.id}')).props(
        f'clickable data-testid=search-result-{row.id}'
    ):
        with ui.item_section():
            with ui.row().classes('items-center gap-2'):
                ui.link(row.full_name, f'/borrower/{row.id}').classes('text-base font-medium')
                if row.archived:
                    ui.badge('Архив', color='grey')
                if row.days_past_due > 0:
                    ui.badge(f'Просрочка {fmt.days(row.days_past_due)}', color='negative')
            ui.label(result_line(row)).classes('text-sm text-gray-700')
        with ui.item_section().props('side'):
            ui.label(birth_date_shown(row.birth_date, row.birth_year))


async def show_results(services: Services, actor: Actor, text: str, archive: bool) -> None:
    if not text.strip():
        ui.label(HINT).classes('text-gray-600')
        return
    try:
        result = await service(services.borrowers.search, actor, text, archive=archive)
    except BadQuery as error:
        ui.label(error.message).classes('text-warning').props('data-testid=search-refusal')
        return
    if not result.items:
        ui.label(f'По запросу «{text.strip()}» ничего не найдено').classes('text-lg text-gray-700 break-all')
        if not archive:
            ui.link('Искать в архиве', search_url(text, True))
        return
    found = f'Найдено: {len(result.items)}' + (' и ещё есть — уточните запрос' if result.more else '')
    ui.label(found).classes('text-sm text-gray-600')
    with ui.list().props('bordered separator').classes('w-full bg-white rounded'):
        for row in result.items:
            result_item(row)


def register(services: Services, hub: LiveHub) -> None:
    @page('/search')
    async def search_page(q: str = '', archive: str = '') -> None:
        actor = page_actor()
        if actor is None:
            return
        in_archive = archive in {'1', 'true', 'on'}

        def toggle_archive(value: bool) -> None:
            text = box.value or q
            if text:
                ui.navigate.to(search_url(text, value))

        with frame(services, hub, actor, 'Поиск', search=False) as workspace:
            with ui.row().classes('w-full items-center gap-4'):
                box = search_box(q, archive=in_archive, dark=False)
                ui.checkbox('Искать в архиве', value=in_archive, on_change=lambda e: toggle_archive(e.value))
            results = ui.column().classes('w-full gap-2')
        with results:
            await show_results(services, actor, q, in_archive)
        await workspace.start()
