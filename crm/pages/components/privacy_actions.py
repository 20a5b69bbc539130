"""The card's administrator actions on personal data: «Скрыть запись» / «Показать снова» (a record of the
history hidden from operators, with a reason) and «Удалить персональные данные» (a confirmation that
names what is erased and what is kept; the act shown, printable). Services audit both."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from nicegui import ui

from crm.bootstrap import Services
from crm.domain import Role
from crm.domain import formatting as fmt
from crm.domain.actor import Actor
from crm.pages.off_loop import attempt, service
from crm.services import views as v
from crm.services.erasure import FIELD_LABELS, WHAT_IS_ERASED, WHAT_IS_KEPT, ErasureActView

Reload = Callable[[], Awaitable[None]]


def buttons(services: Services, actor: Actor, card: v.BorrowerCard, reload: Reload) -> None:
    """Drawn among the card's actions, for administrators only."""
    if actor.role != Role.ADMIN:
        return
    host = ui.context.client.content  # dialogs outlive the card, which is drawn again after an action
    ui.button(
        'Скрыть запись',
        icon='visibility_off',
        on_click=lambda: hide_dialog(services, actor, card, reload, host),
    ).props('flat dense no-caps')
    ui.button(
        'Удалить персональные данные',
        icon='person_remove',
        on_click=lambda: erase_dialog(services, actor, card, reload, host),
    ).props('flat dense no-caps color=negative').mark('erase-open')
    ui.button(
        'Акт удаления', icon='description', on_click=lambda: show_act(services, actor, card.id, host)
    ).props('flat dense no-caps')


def _label(item: v.CommunicationItem) -> str:
    mark = ' (скрыта)' if item.hidden_at is not None else ''
    text = item.comment or item.body or item.result_name or ''
    return f'{fmt.moment(item.started_at)} · {item.channel} · {text[:60]}{mark}'


def hide_dialog(
    services: Services, actor: Actor, card: v.BorrowerCard, reload: Reload, host: ui.element
) -> None:
    with host, ui.dialog() as dialog, ui.card().classes('w-[40rem]'):
        ui.label('Скрыть запись от операторов').classes('text-lg font-semibold')
        ui.label(
            'Запись остаётся в базе и видна администраторам с отметкой; операторы и руководители '
            'её не видят. Причина записывается в журнал действий.'
        ).classes('text-sm')
        choice = ui.select({c.id: _label(c) for c in card.communications}, label='Запись').props('outlined')
        choice.classes('w-full')
        reason = ui.input('Причина').props('outlined maxlength=500').classes('w-full')

        async def hide() -> None:
            if choice.value is None:
                ui.notify('Выберите запись', type='warning')
                return
            if await attempt(services.hiding.hide, actor, int(choice.value), reason.value or '') is not None:
                dialog.close()
                ui.notify('Запись скрыта от операторов', type='positive')
                await reload()

        async def show_again() -> None:
            if choice.value is None:
                ui.notify('Выберите запись', type='warning')
                return
            if await attempt(services.hiding.show, actor, int(choice.value)) is not None:
                dialog.close()
                ui.notify('Запись снова видна всем', type='positive')
                await reload()

        with ui.row().classes('w-full justify-end'):
            ui.button('Отмена', on_click=dialog.close).props('flat')
            ui.button('Показать снова', on_click=show_again).props('outline')
            ui.button('Скрыть', on_click=hide).mark('hide-confirm')
    dialog.on('hide', dialog.delete)
    dialog.open()


def erase_dialog(
    services: Services, actor: Actor, card: v.BorrowerCard, reload: Reload, host: ui.element
) -> None:
    active = any(loan.state == 'active' for loan in card.loans)
    with host, ui.dialog() as dialog, ui.card().classes('w-[44rem]'):
        ui.label(f'Удалить персональные данные: {card.full_name}').classes('text-lg font-semibold')
        ui.label(f'Будет удалено: {WHAT_IS_ERASED}.').classes('text-sm')
        ui.label(f'Сохранится (требования закона): {WHAT_IS_KEPT}.').classes('text-sm text-gray-700')
        ui.label('Отменить удаление нельзя. Будет составлен акт.').classes('text-sm text-negative')
        reason = ui.input('Причина (например, отзыв согласия)').props('outlined').classes('w-full')
        reference = ui.input('Номер и дата обращения').props('outlined maxlength=200').classes('w-full')
        basis = None
        if active:
            ui.label(
                'У заёмщика есть действующий заём: данные нужны для исполнения договора. Удалить можно, '
                'только указав правовое основание (решение суда, требование Роскомнадзора).'
            ).classes('text-sm text-warning')
            basis = ui.input('Правовое основание').props('outlined').classes('w-full')

        async def erase() -> None:
            act = await attempt(
                services.erasure.erase,
                actor,
                card.id,
                reason.value or '',
                reference.value or '',
                legal_basis=basis.value if basis is not None else None,
            )
            if act is not None:
                dialog.close()
                act_dialog(act, host)
                ui.notify('Персональные данные удалены, акт составлен', type='positive')
                await reload()

        with ui.row().classes('w-full justify-end'):
            ui.button('Отмена', on_click=dialog.close).props('flat')
            ui.button('Удалить', color='negative', on_click=erase).mark('erase-confirm')
    dialog.on('hide', dialog.delete)
    dialog.open()


async def show_act(services: Services, actor: Actor, borrower_id: int, host: ui.element) -> None:
    act = await service(services.erasure.act, actor, borrower_id)
    if act is None:
        ui.notify('Персональные данные этого заёмщика не удалялись', type='info')
        return
    act_dialog(act, host)


def act_dialog(act: ErasureActView, host: ui.element) -> None:
    """The act, to read and print."""
    fields = ', '.join(FIELD_LABELS.get(name, name) for name in act.erased.get('borrower', []))
    counts = {key: n for key, n in act.erased.items() if key != 'borrower'}
    with host, ui.dialog() as dialog, ui.card().classes('w-[44rem]'):
        ui.label(f'Акт № {act.id} об удалении персональных данных').classes('text-lg font-semibold')
        for line in (
            f'Заёмщик: PIN {act.pin}',
            f'Дата и время: {fmt.moment(act.at)}',
            f'Удалил: {act.by_name or "—"}',
            f'Обращение: {act.reference}',
            f'Причина: {act.reason}',
            f'Правовое основание при действующем займе: {act.legal_basis}' if act.legal_basis else '',
            f'Удалены поля: {fields or "—"}',
            'Записей затронуто: ' + ', '.join(f'{key} — {n}' for key, n in counts.items()),
            f'Сохранено: {WHAT_IS_KEPT}.',
        ):
            if line:
                ui.label(line).classes('text-sm')
        with ui.row().classes('w-full justify-end'):
            ui.button('Печать', icon='print', on_click=lambda: ui.run_javascript('window.print()')).props(
                'flat'
            )
            ui.button('Закрыть', on_click=dialog.close)
    dialog.on('hide', dialog.delete)
    dialog.open()
