"""Administrator pages: the PBX simulator and the API tokens."""

from __future__ import annotations

import random

from fastapi import Response
from nicegui import app, ui

from crm.bootstrap import Services
from crm.domain import Role
from crm.domain import formatting as fmt
from crm.domain.identifiers import format_phone, phone_key
from crm.integrations.pbx_simulator import LINE_STATES, RECORDINGS_PATH, PbxSimulator, recording_wav
from crm.pages.layout import admin_frame
from crm.pages.live import LiveHub
from crm.pages.off_loop import attempt, service
from crm.pages.route import page
from crm.pages.session import page_actor
from crm.services.api_tokens import SCOPES
from crm.services.result_codes import ResultCodeRow


def register(services: Services, hub: LiveHub) -> None:
    pbx = services.pbx
    if pbx is not None:
        register_simulator(services, hub, pbx)
    register_tokens(services, hub)
    register_results(services, hub)


def register_simulator(services: Services, hub: LiveHub, pbx: PbxSimulator) -> None:
    @app.get(f'{RECORDINGS_PATH}/{{call_id}}.wav', include_in_schema=False)
    def recording(call_id: str) -> Response:
        return Response(recording_wav(call_id), media_type='audio/wav')

    @page('/admin/pbx')
    async def simulator_page() -> None:
        actor = page_actor(Role.ADMIN)
        if actor is None:
            return
        targets = await service(services.calls.transfer_targets, actor)
        sample_phones = await service(services.borrowers.sample_phones, actor)

        def ring() -> None:
            number = phone_key(caller.value or '') or (caller.value or '').strip()
            if not number or not extension.value:
                ui.notify('Укажите номер звонящего и внутренний номер', type='warning')
                return
            pbx.ring(number, extension.value)
            ui.notify(f'Звонок с {number} на {extension.value}')

        about = (
            'Встроенная АТС для проверки: публикует события telephony.* и отвечает на команды CRM '
            '(набор, удержание, перевод, завершение). Исходящие звонки снимаются автоматически через 2 с.'
        )
        with admin_frame(services, hub, actor, 'Симулятор АТС', about) as workspace:
            with ui.card().classes('w-full'), ui.row().classes('items-end gap-4'):
                caller = ui.input('Номер звонящего', value=sample_phones[0] if sample_phones else '').props(
                    'outlined'
                )
                ui.button(
                    'Случайный заёмщик',
                    icon='casino',
                    on_click=lambda: (
                        caller.set_value(random.choice(sample_phones)) if sample_phones else None
                    ),
                ).props('flat')
                extension = (
                    ui.select(
                        {ext: f'{ext} — {name}' for ext, name in targets},
                        label='Внутренний номер',
                        value=targets[0][0] if targets else None,
                    )
                    .props('outlined')
                    .classes('w-72')
                )
                ui.button('Позвонить', icon='ring_volume', on_click=ring, color='positive')
            calls_area = ui.column().classes('w-full')

        seen = {'version': -1}

        def redraw() -> None:
            if seen['version'] == pbx.version:
                return
            seen['version'] = pbx.version
            calls_area.clear()
            with calls_area:
                calls_table(pbx)

        redraw()
        ui.timer(0.5, redraw)
        await workspace.start()


def calls_table(pbx: PbxSimulator) -> None:
    calls = pbx.calls()
    if not calls:
        ui.label('Звонков ещё не было').classes('text-gray-600')
        return
    with ui.list().props('bordered separator').classes('w-full bg-white'):
        for call in calls:
            with ui.item(), ui.item_section(), ui.row().classes('items-center gap-4'):
                ui.icon('call_received' if call.direction == 'in' else 'call_made')
                ui.label(f'{format_phone(call.number)} → {call.extension}').classes('font-medium w-64')
                ui.label(LINE_STATES.get(call.state, call.state)).classes('w-28')
                ui.label(fmt.moment(call.started_at)).classes('text-sm text-gray-600 w-36')
                ui.label(call.call_id).classes('text-xs text-gray-500 w-56')
                if call.state == 'ringing':
                    ui.button('Ответить', on_click=lambda c=call: pbx.answer(c.call_id)).props('dense')
                if call.state in ('ringing', 'active', 'on_hold'):
                    ui.button(
                        'Завершить', on_click=lambda c=call: pbx.end(c.call_id), color='negative'
                    ).props('dense')


def register_tokens(services: Services, hub: LiveHub) -> None:
    @page('/admin/tokens')
    async def tokens_page() -> None:
        actor = page_actor(Role.ADMIN)
        if actor is None:
            return

        async def create() -> None:
            created = await attempt(services.api_tokens.create, actor, name.value or '', scope.value)
            if created is None:
                return
            plain, info = created
            name.set_value('')
            with ui.dialog() as dialog, ui.card().classes('w-[36rem]'):
                ui.label(f'Токен «{info.name}» создан').classes('text-lg font-semibold')
                ui.label('Скопируйте его сейчас: он показывается один раз и нигде не хранится.').classes(
                    'text-sm'
                )
                ui.input(value=plain).props('readonly outlined').classes('w-full font-mono')
                ui.button('Готово', on_click=dialog.close)
            dialog.open()
            await table.refresh()

        async def revoke(token_id: int) -> None:
            await service(services.api_tokens.revoke, actor, token_id)
            ui.notify('Токен отозван')
            await table.refresh()

        @ui.refreshable
        async def table() -> None:
            tokens = await service(services.api_tokens.list, actor)
            if not tokens:
                ui.label('Токенов нет').classes('text-gray-600')
                return
            with ui.list().props('bordered separator').classes('w-full bg-white'):
                for token in tokens:
                    with ui.item(), ui.item_section(), ui.row().classes('items-center gap-4'):
                        ui.label(token.name).classes('font-medium w-56')
                        ui.label(f'{token.prefix}…').classes('font-mono text-sm w-36')
                        ui.label(SCOPES[token.scope]).classes('text-sm w-72')
                        ui.label(
                            f'создан {fmt.moment(token.created_at)} ({token.created_by or "—"})'
                        ).classes('text-xs text-gray-600')
                        ui.label(f'использован {fmt.moment(token.last_used_at)}').classes(
                            'text-xs text-gray-600'
                        )
                        if token.revoked_at:
                            ui.badge(f'отозван {fmt.moment(token.revoked_at)}', color='grey')
                        else:
                            ui.button(
                                'Отозвать', on_click=lambda t=token: revoke(t.id), color='negative'
                            ).props('flat dense')

        about = (
            'Токены для АТС, чата, SMS-шлюза и других систем: заголовок Authorization: Bearer <токен>. '
            'Документация API: /docs'
        )
        with admin_frame(services, hub, actor, 'API-токены', about) as workspace:
            with ui.card().classes('w-full'), ui.row().classes('items-end gap-4'):
                name = ui.input('Система', placeholder='АТС Asterisk').props('outlined')
                scope = ui.select(SCOPES, value='events', label='Права').props('outlined').classes('w-80')
                ui.button('Создать токен', icon='key', on_click=create)
            await table()
        await workspace.start()


def register_results(services: Services, hub: LiveHub) -> None:
    @page('/admin/results')
    async def results_page() -> None:
        actor = page_actor(Role.ADMIN)
        if actor is None:
            return

        async def save(row: ResultCodeRow, *, new: bool) -> None:
            write = services.result_codes.create if new else services.result_codes.save
            if await attempt(write, actor, row) is None:
                return
            ui.notify(f'«{row.name}» сохранён', type='positive')
            await table.refresh()

        def editor(row: ResultCodeRow | None) -> None:
            """One line of the list; for None, the line that adds a new result."""
            with ui.row().classes('w-full items-center gap-4'):
                code = ui.input('Код', value=row.code if row else '').props('outlined dense').classes('w-40')
                if row:
                    code.props('readonly')
                name = (
                    ui.input('Название', value=row.name if row else '')
                    .props('outlined dense')
                    .classes('w-64')
                )
                reached = ui.checkbox('Дозвонились', value=row.reached if row else True)
                promise = ui.checkbox('Сумма и дата обещания', value=row.needs_promise if row else False)
                callback = ui.checkbox('Дата перезвона', value=row.needs_callback if row else False)
                active = ui.switch('Действует', value=row.active if row else True)

                def collect() -> ResultCodeRow:
                    return ResultCodeRow(
                        (code.value or '').strip(),
                        name.value or '',
                        reached.value,
                        promise.value,
                        callback.value,
                        active.value,
                    )

                ui.button(
                    'Сохранить' if row else 'Добавить', on_click=lambda: save(collect(), new=row is None)
                ).props('flat')

        @ui.refreshable
        async def table() -> None:
            rows = await service(services.result_codes.all, actor)
            with ui.card().classes('w-full gap-1'):
                for row in rows:
                    editor(row)
            with ui.card().classes('w-full'):
                ui.label('Новый результат').classes('font-semibold')
                editor(None)

        about = (
            '«Дозвонились» — разговор с самим заёмщиком: такой звонок считается в лимитах 230-ФЗ. '
            'Результаты не удаляются (на них ссылается история), а выводятся из списка.'
        )
        with admin_frame(services, hub, actor, 'Результаты звонков', about) as workspace:
            await table()
        await workspace.start()
