"""«Шаблоны сообщений» (administrators): the templates by kind, and an editor with a live SMS counter
and a preview against a borrower found by PIN or name."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from nicegui import ui

from crm.bootstrap import Services
from crm.domain import Role
from crm.domain import formatting as fmt
from crm.domain.actor import Actor
from crm.domain.errors import ServiceError
from crm.domain.messages import MESSAGE_CHANNEL_LABELS, TEMPLATE_KINDS, MessageChannel
from crm.domain.sms_text import MAX_PARTS
from crm.pages.layout import admin_frame
from crm.pages.live import LiveHub
from crm.pages.off_loop import service
from crm.pages.route import page
from crm.pages.session import page_actor
from crm.services.templates import VARIABLES, TemplateDraft, TemplatePreview, TemplateView

CHANNELS = {channel.value: label for channel, label in MESSAGE_CHANNEL_LABELS.items()}
ALL = ''  # the filters' «Все»
ABOUT = (
    'Тексты SMS и писем для карточки заёмщика и рассылок. В каждом тексте должны быть наименование '
    'кредитора и контактный телефон (230-ФЗ, с 01.09.2025); неизвестная переменная или ошибка в шаблоне '
    'не дают его сохранить. Шаблоны не удаляются, а переносятся в архив.'
)
# The text's selection (UTF-16 offsets), read in the browser when a variable is clicked.
SELECTION_JS = (
    '() => {{ const t = document.getElementById("c{id}"); '
    'if (t && "selectionStart" in t) emit(t.selectionStart, t.selectionEnd); else emit(null); }}'
)
# Back to the text with the cursor after what was inserted, once the new value is in the page.
CARET_JS = (
    'setTimeout(() => {{ const t = document.getElementById("c{id}"); '
    'if (t) {{ t.focus(); t.setSelectionRange({at}, {at}); }} }}, 50)'
)


async def refused(action: Callable[[], Awaitable[Any]], error_label: ui.label) -> Any:
    """Run a service call; a refusal goes next to the form (and in a notification), and gives None."""
    try:
        result = await action()
    except ServiceError as error:
        error_label.set_text(error.message)
        error_label.set_visibility(True)
        ui.notify(error.message, type='warning', multi_line=True)
        return None
    error_label.set_visibility(False)
    return result


class Editor:
    """The dialog that creates or changes one template."""

    def __init__(self, services: Services, actor: Actor, on_change: Callable[[], Awaitable[None]]) -> None:
        self._services = services
        self._actor = actor
        self._on_change = on_change
        self._template: TemplateView | None = None
        self._counted = 0  # the newest counter request; older answers are dropped
        with ui.dialog().props('persistent') as self.dialog, ui.card().classes('w-[72rem] max-w-full'):
            self.title = ui.label().classes('text-lg font-semibold')
            with ui.row().classes('w-full gap-6 no-wrap items-start'):
                with ui.column().classes('grow gap-2'):
                    self._form()
                with ui.column().classes('w-80 gap-2'):
                    self._variables()
            self._preview_area()
            self.error = ui.label().classes('text-negative whitespace-pre-line').mark('template-error')
            self.error.set_visibility(False)
            with ui.row().classes('w-full justify-end gap-2'):
                self.retire_button = ui.button('В архив', on_click=self.retire, color='negative').props(
                    'flat'
                )
                self.restore_button = ui.button('Вернуть', on_click=self.restore).props('flat')
                ui.button('Отмена', on_click=self.dialog.close).props('flat')
                ui.button('Сохранить', icon='save', on_click=self.save).mark('save')

    def _form(self) -> None:
        with ui.row().classes('w-full gap-4 no-wrap'):
            self.channel = ui.select(CHANNELS, label='Канал', value='sms', on_change=self.recount)
            self.channel.props('outlined').classes('w-40')
            self.kind = ui.select(TEMPLATE_KINDS, label='Вид шаблона', value='payment_reminder')
            self.kind.props('outlined').classes('w-64').on_value_change(self.recount)
            self.name = ui.input('Название').props('outlined maxlength=200').classes('grow')
        self.subject = (
            ui.input('Тема', on_change=self.recount).props('outlined maxlength=300').classes('w-full')
        )
        self.subject.bind_visibility_from(self.channel, 'value', value=MessageChannel.EMAIL.value)
        self.body = ui.textarea('Текст шаблона', on_change=self.recount).props(
            'outlined autogrow input-style="min-height: 8rem"'
        )
        self.body.classes('w-full font-mono')
        self.counter = ui.label().classes('text-sm text-gray-700').mark('sms-counter')

    def _variables(self) -> None:
        ui.label('Переменные (нажмите, чтобы вставить)').classes('text-sm font-medium')
        selection = SELECTION_JS.format(id=self.body.id)
        with ui.column().classes('gap-0 max-h-96 overflow-auto w-full'):
            for name, about in VARIABLES.items():
                with ui.row().classes('items-center gap-2 no-wrap'):
                    chip = ui.chip(name).props('dense clickable outline').mark(f'variable-{name}')
                    chip.on('click', lambda e, n=name: self.insert(n, e.args), js_handler=selection)
                    ui.label(about).classes('text-xs text-gray-600')

    def _preview_area(self) -> None:
        with ui.expansion('Предпросмотр', icon='visibility').classes('w-full border rounded'):
            with ui.row().classes('items-end gap-2'):
                self.query = ui.input('Заёмщик: PIN, ФИО или телефон').props('outlined dense').classes('w-80')
                self.query.on('keydown.enter', self.find)
                ui.button('Найти', icon='search', on_click=self.find).props('flat')
                self.found = ui.select({}, label='Заёмщик').props('outlined dense').classes('w-96')
                ui.button('Предпросмотр', icon='visibility', on_click=self.preview).props('flat').mark(
                    'preview'
                )
            self.shown = ui.column().classes('w-full gap-1')

    # --- opening ------------------------------------------------------------------------------
    def open(self, template: TemplateView | None) -> None:
        self._template = template
        self.title.set_text(f'Шаблон «{template.name}»' if template else 'Новый шаблон')
        self.channel.set_value(template.channel if template else MessageChannel.SMS.value)
        self.channel.set_enabled(template is None)  # a saved template keeps its channel
        self.kind.set_value(template.kind if template else 'payment_reminder')
        self.name.set_value(template.name if template else '')
        self.subject.set_value(template.subject or '' if template else '')
        self.body.set_value(template.body if template else '')
        self.retire_button.set_visibility(bool(template and template.active))
        self.restore_button.set_visibility(bool(template and not template.active))
        self.error.set_visibility(False)
        self.shown.clear()
        self.dialog.open()

    def draft(self) -> TemplateDraft:
        return TemplateDraft(
            channel=self.channel.value,
            kind=self.kind.value,
            name=self.name.value or '',
            body=self.body.value or '',
            subject=(self.subject.value or None) if self.channel.value == MessageChannel.EMAIL else None,
            id=self._template.id if self._template else None,
        )

    # --- the text -----------------------------------------------------------------------------
    def insert(self, variable: str, selection: Any = None) -> None:
        """``{{ variable }}`` in place of the selection the browser reported, else at the end."""
        text = self.body.value or ''
        piece = f'{{{{ {variable} }}}}'
        if isinstance(selection, list) and len(selection) == 2 and all(isinstance(p, int) for p in selection):
            start, end = sorted(code_points(text, p) for p in selection)
        else:
            start = end = len(text)
        self.body.set_value(text[:start] + piece + text[end:])
        at = utf16_length(text[:start] + piece)
        ui.run_javascript(CARET_JS.format(id=self.body.id, at=at))

    async def recount(self) -> None:
        """The counter under the text: the SMS's encoding and parts for the sample borrower."""
        self._counted += 1
        mine = self._counted
        if not (self.body.value or '').strip():
            self.counter.set_text('')
            return
        try:
            shown = await service(self._services.templates.preview, self._actor, self.draft())
            text = counter_text(shown)
        except ServiceError as error:
            text = error.message
        if mine == self._counted:
            self.counter.set_text(text)

    # --- actions ------------------------------------------------------------------------------
    async def save(self) -> None:
        saved = await refused(
            lambda: service(self._services.templates.save, self._actor, self.draft()), self.error
        )
        if saved is None:
            return
        ui.notify(f'Шаблон «{saved.name}» сохранён', type='positive')
        self.dialog.close()
        await self._on_change()

    async def retire(self) -> None:
        await self._set_active(self._services.templates.retire, 'перенесён в архив')

    async def restore(self) -> None:
        await self._set_active(self._services.templates.restore, 'снова действует')

    async def _set_active(self, action: Callable[[Actor, int], TemplateView], done: str) -> None:
        if self._template is None:
            return
        template_id = self._template.id
        changed = await refused(lambda: service(action, self._actor, template_id), self.error)
        if changed is None:
            return
        ui.notify(f'Шаблон «{changed.name}» {done}', type='positive')
        self.dialog.close()
        await self._on_change()

    async def find(self) -> None:
        text = self.query.value or ''
        result = await refused(
            lambda: service(self._services.borrowers.search, self._actor, text, limit=20), self.error
        )
        if result is None:
            return
        options = {row.id: f'{row.full_name} · PIN {row.pin}' for row in result.items}
        self.found.set_options(options, value=next(iter(options), None))
        if not options:
            ui.notify(f'По запросу «{text.strip()}» никого не найдено', type='warning')

    async def preview(self) -> None:
        draft, borrower_id = self.draft(), self.found.value
        shown = await refused(
            lambda: service(self._services.templates.preview, self._actor, draft, borrower_id), self.error
        )
        if shown is not None:
            self.show(shown)

    def show(self, shown: TemplatePreview) -> None:
        self.shown.clear()
        with self.shown:
            whom = shown.borrower_name or 'образец заёмщика (Иванов Иван Петрович)'
            ui.label(f'Для: {whom}').classes('text-sm text-gray-600')
            if shown.subject is not None:
                ui.label(f'Тема: {shown.subject}').classes('font-medium')
            ui.label(shown.text).classes('whitespace-pre-wrap bg-slate-100 p-2 rounded w-full').mark(
                'template-preview'
            )
            if shown.parts is not None:
                ui.label(counter_text(shown)).classes('text-sm text-gray-700')
            if shown.problem:
                ui.label(shown.problem).classes('text-negative text-sm')


def code_points(text: str, utf16_offset: int) -> int:
    """The index in ``text`` of a browser's offset (UTF-16 units: an emoji counts two)."""
    units = 0
    for index, char in enumerate(text):
        if units >= utf16_offset:
            return index
        units += 2 if ord(char) > 0xFFFF else 1
    return len(text)


def utf16_length(text: str) -> int:
    return sum(2 if ord(char) > 0xFFFF else 1 for char in text)


def counter_text(shown: TemplatePreview) -> str:
    """«UCS-2 · 117 симв. · 2 части (осталось 17)» for an SMS; the length for a letter."""
    whom = 'для образца заёмщика' if shown.borrower_name is None else 'для заёмщика'
    if shown.parts is None:
        return f'Письмо {whom}: {len(shown.text)} симв.'
    warning = f' — больше {MAX_PARTS} частей, не сохранится' if shown.parts.too_long else ''
    return f'SMS {whom}: {shown.parts.describe()}{warning}'


def template_row(template: TemplateView, edit: Callable[[TemplateView], None]) -> None:
    with ui.item(on_click=lambda: edit(template)).props('clickable').mark(f'template-{template.id}'):
        with ui.item_section().props('side').classes('w-24'):
            ui.badge(template.channel_label, color='primary' if template.channel == 'sms' else 'teal')
        with ui.item_section():
            ui.label(template.name).classes('font-medium')
            ui.label(template.subject or template.body).classes('text-xs text-gray-600 line-clamp-1')
        with ui.item_section().props('side'):
            if template.active:
                ui.badge('Активен', color='positive')
            else:
                ui.badge('В архиве', color='grey')
        with ui.item_section().props('side').classes('w-56'):
            ui.label(fmt.moment(template.updated_at)).classes('text-xs')
            ui.label(template.updated_by_name or '—').classes('text-xs text-gray-600')


def register(services: Services, hub: LiveHub) -> None:
    @page('/admin/templates')
    async def templates_page() -> None:
        actor = page_actor(Role.ADMIN)
        if actor is None:
            return

        @ui.refreshable
        async def table() -> None:
            templates = await service(
                services.templates.list,
                actor,
                channel=channel.value or None,
                kind=kind.value or None,
                include_retired=archived.value,
            )
            if not templates:
                ui.label('Шаблонов нет').classes('text-gray-600')
                return
            for label in dict.fromkeys(t.kind_label for t in templates):
                ui.label(label).classes('text-base font-semibold mt-2')
                with ui.list().props('bordered separator').classes('w-full bg-white rounded'):
                    for template in (t for t in templates if t.kind_label == label):
                        template_row(template, editor.open)

        with admin_frame(services, hub, actor, 'Шаблоны сообщений', ABOUT) as workspace:
            editor = Editor(services, actor, table.refresh)
            with ui.card().classes('w-full'), ui.row().classes('items-end gap-4'):
                channel = ui.select({ALL: 'Все', **CHANNELS}, label='Канал', value=ALL)
                channel.props('outlined').classes('w-40').on_value_change(table.refresh)
                kind = ui.select({ALL: 'Все', **TEMPLATE_KINDS}, label='Вид шаблона', value=ALL)
                kind.props('outlined').classes('w-64').on_value_change(table.refresh)
                archived = ui.checkbox('Показывать архив', value=True).on_value_change(table.refresh)
                ui.space()
                ui.button('Новый шаблон', icon='add', on_click=lambda: editor.open(None)).mark('new-template')
            await table()
        await workspace.start()
