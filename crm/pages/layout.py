"""The frame every page shares: header with the search line, the user, and logout."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlencode

from nicegui import ui

from crm.bootstrap import Services
from crm.domain import Role
from crm.domain.actor import Actor
from crm.domain.search_query import MAX_LENGTH, MIN_LENGTH, TOO_SHORT
from crm.pages.components.call_panel import CALL_TIMER_JS
from crm.pages.components.card_markup import CARD_CSS, CARD_JS
from crm.pages.components.chat_panel import CHAT_CSS, ChatBadge
from crm.pages.components.operator_state import STATE_TIMER_JS, StateChip
from crm.pages.components.request_badge import RequestBadge
from crm.pages.components.workspace import Workspace
from crm.pages.live import LiveHub

BRAND_COLOR = '#1f4e79'


def search_url(text: str, archive: bool = False) -> str:
    params = {'q': text.strip()}
    if archive:
        params['archive'] = '1'
    return '/search?' + urlencode(params)


def search_box(value: str = '', *, archive: bool = False, dark: bool = True) -> ui.input:
    """The one search line; Enter searches, a too-short query gets a hint and no query."""

    def submit() -> None:
        text = (box.value or '').strip()
        if len(text.replace(' ', '')) < MIN_LENGTH:
            ui.notify(TOO_SHORT, type='warning')
            return
        ui.navigate.to(search_url(text, archive))

    box = ui.input(placeholder='ФИО, телефон, паспорт, PIN, ИНН, СНИЛС', value=value[:MAX_LENGTH])
    box.props(
        f'dense clearable type=search maxlength={MAX_LENGTH}' + (' dark standout' if dark else ' outlined')
    )
    box.props('aria-label="Поиск заёмщика"').classes('w-96')
    with box.add_slot('prepend'):
        ui.icon('search')
    box.on('keydown.enter', submit)
    return box


@contextmanager
def frame(
    services: Services, hub: LiveHub, actor: Actor, title: str, *, search: bool = True
) -> Iterator[Workspace]:
    """Header and workspace; the page renders into the workspace's content and then awaits ws.start()."""
    ui.page_title(f'{title} — Lender CRM')
    ui.colors(primary=BRAND_COLOR)
    ui.query('body').classes('bg-slate-50')
    ui.add_css(CARD_CSS)  # once per page, not per card drawn into it
    ui.add_css(CHAT_CSS)
    ui.add_body_html(CALL_TIMER_JS)
    ui.add_body_html(CARD_JS)
    ui.add_body_html(STATE_TIMER_JS)
    with ui.header(elevated=True).classes('items-center gap-4 px-4 py-2').style(f'background:{BRAND_COLOR}'):
        ui.link('Lender CRM', '/').classes('text-lg font-bold text-white no-underline')
        ui.link('Заёмщики', '/').classes('text-white no-underline opacity-90')
        chat_badge = ChatBadge()
        request_badge = RequestBadge()  # every role: operators take from the queue
        if actor.role in (Role.SUPERVISOR, Role.ADMIN):
            ui.link('Мониторинг', '/monitoring').classes('text-white no-underline opacity-90')
            ui.link('Рассылки', '/mailings').classes('text-white no-underline opacity-90')
            ui.link('Исходящие сообщения', '/admin/outbox').classes('text-white no-underline opacity-90')
        if actor.role == Role.ADMIN:
            admin_menu(services)
        if search:
            search_box()
        ui.space()
        state_chip = StateChip() if actor.role == Role.OPERATOR else None  # Готов / Перерыв, live
        with ui.column().classes('gap-0 items-end'):
            ui.label(actor.full_name).classes('text-sm font-medium')
            ui.label(actor.role_label + (f' · доб. {actor.extension}' if actor.extension else '')).classes(
                'text-xs opacity-80'
            )
        ui.button(icon='key', on_click=lambda: ui.navigate.to('/password')).props(
            'flat round dense color=white aria-label="Сменить пароль"'
        ).tooltip('Сменить пароль')
        ui.button(icon='logout', on_click=lambda: ui.navigate.to('/logout')).props(
            'flat round color=white aria-label="Выйти"'
        ).tooltip('Выйти')
    with ui.column().classes('w-full max-w-screen-2xl mx-auto p-4 gap-4'):
        workspace = Workspace(services, hub, actor)
        workspace.chats.badge = chat_badge
        workspace.requests.badge = request_badge
        workspace.operator_state.chip = state_chip
        with workspace.content:
            yield workspace


def admin_pages(services: Services) -> list[tuple[str, str]]:
    """The administrator's pages, as the header's «Администрирование» menu lists them."""
    pages = [
        ('Пользователи', '/admin/users'),
        ('Портфель', '/admin/portfolio'),
        ('Видимость полей', '/admin/fields'),
        ('Журнал действий', '/admin/audit'),
        ('Результаты звонков', '/admin/results'),
        ('Шаблоны сообщений', '/admin/templates'),
        ('Продукты и услуги', '/admin/products'),
        ('API-токены', '/admin/tokens'),
    ]
    if services.pbx is not None:  # in a cluster only one process runs it (crm/cluster.py)
        pages.append(('Симулятор АТС', '/admin/pbx'))
    if services.chat_simulator is not None:
        pages.append(('Симулятор чата', '/chat-simulator'))
    return pages


def admin_menu(services: Services) -> None:
    """One header entry for the administrator's pages (a row of links no longer fits the header)."""
    button = ui.button('Администрирование', icon='settings').props('flat no-caps color=white dense')
    with button, ui.menu().props('no-parent-event').mark('admin-menu') as menu:
        for label, path in admin_pages(services):
            item = ui.menu_item(label, on_click=lambda p=path: ui.navigate.to(p))
            item.mark('admin-menu-' + path.strip('/').replace('/', '-'))
    button.on_click(menu.open)


@contextmanager
def admin_frame(
    services: Services, hub: LiveHub, actor: Actor, title: str, about: str
) -> Iterator[Workspace]:
    """An administrator's page: the frame, its title and a line on what the page is for."""
    with frame(services, hub, actor, title) as workspace:
        ui.label(title).classes('text-xl font-semibold')
        ui.label(about).classes('text-sm text-gray-600')
        yield workspace
