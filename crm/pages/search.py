"""Search results in the seed's layout: name, PIN, city, phone, passport, loan, date of birth."""

from __future__ import annotations

from nicegui import run, ui

from crm.bootstrap import Services
from crm.db.normalize import format_passport, format_phone
from crm.pages import format as fmt
from crm.pages.layout import frame, search_box, search_url
from crm.pages.session import current_actor
from crm.services.errors import QueryTooShort
from crm.services.views import BorrowerRow


def result_line(row: BorrowerRow) -> str:
    parts = [f'PIN: {row.pin}', row.city]
    if row.phones:
        parts.append('Тел: ' + ', '.join(format_phone(p) for p in row.phones))
    if row.passport:
        parts.append(f'Паспорт: {format_passport(row.passport)}')
    if row.loan:
        parts.append(f'Заём {row.loan.product}')
    return ' · '.join(parts)


def register(services: Services) -> None:
    @ui.page('/search')
    async def search_page(q: str = '', archive: str = '') -> None:
        actor = await current_actor(services.auth)
        if actor is None:
            ui.navigate.to('/login')
            return
        in_archive = archive in {'1', 'true', 'on'}
        with frame(actor, 'Поиск', search=False):
            with ui.row().classes('w-full items-center gap-4'):
                box = search_box(q, archive=in_archive, dark=False)
                ui.checkbox(
                    'Искать в архиве',
                    value=in_archive,
                    on_change=lambda e: (
                        ui.navigate.to(search_url(box.value or q, e.value)) if (box.value or q) else None
                    ),
                )
            if not q.strip():
                ui.label('Введите часть ФИО, телефон, паспорт, PIN, ИНН или СНИЛС и нажмите Enter').classes(
                    'text-gray-600'
                )
                return
            try:
                result = await run.io_bound(services.borrowers.search, actor, q, archive=in_archive)
            except QueryTooShort as error:
                ui.label(error.message).classes('text-warning')
                return
            if not result.items:
                ui.label(f'По запросу «{q.strip()}» ничего не найдено').classes('text-lg text-gray-700')
                if not in_archive:
                    ui.link('Искать в архиве', search_url(q, True))
                return
            found = f'Найдено: {len(result.items)}' + (' и ещё есть — уточните запрос' if result.more else '')
            ui.label(found).classes('text-sm text-gray-600')
            with ui.list().props('bordered separator').classes('w-full bg-white rounded'):
                for row in result.items:
                    with ui.item(on_click=lambda r=row: ui.navigate.to(f'/borrower/{r.id}')).props(
                        'clickable'
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
                            ui.label(fmt.day(row.birth_date))
            if result.more:
                ui.label(f'Показаны первые {len(result.items)} совпадений — уточните запрос').classes(
                    'text-sm text-gray-600'
                )
