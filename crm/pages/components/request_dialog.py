"""A request opened from «Обращения», and the page's small dialogs: assign, a new request, the topics.

The request's dialog shows the borrower (a link to the card), the topic (editable), the status buttons
the transitions allow, its history, and «Ответить» / «Комментарий». Texts from borrowers and operators
are shown in labels (as text, never markup). After every action the dialog redraws from the service's
answer and the list reloads.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from nicegui import ui

from crm.bootstrap import Services
from crm.domain import Role
from crm.domain import formatting as fmt
from crm.domain.actor import Actor
from crm.domain.requests import REQUEST_CHANNEL_LABELS, REQUEST_STATUS_LABELS, TRANSITIONS, RequestChannel
from crm.pages.off_loop import attempt, service
from crm.services.requests import RequestEventView, RequestView

Reload = Callable[[], Awaitable[None]]
EVENT_LABELS = {
    'opened': 'Открыто',
    'contact': 'Новый контакт',
    'taken': 'Взято в работу',
    'assigned': 'Назначено',
    'status': 'Статус',
    'topic': 'Тема',
    'comment': 'Комментарий',
    'answer': 'Ответ',
}
STATUS_ACTIONS = {
    'in_progress': 'В работу',
    'waiting': 'Ожидает клиента',
    'resolved': 'Решено',
    'closed': 'Закрыть обращение',
}
BY_HAND = {c.value: REQUEST_CHANNEL_LABELS[c] for c in RequestChannel if c != RequestChannel.SYSTEM}


def event_line(event: RequestEventView) -> str:
    parts = [fmt.moment(event.at), event.actor_name or 'Система', EVENT_LABELS.get(event.kind, event.kind)]
    if event.to_status:
        parts.append(f'→ {REQUEST_STATUS_LABELS.get(event.to_status, event.to_status)}')
    if event.assignee_name and event.kind in ('assigned', 'taken'):
        parts.append(event.assignee_name)
    return ' · '.join(parts)


class RequestDialog:
    """One request: what it is about, what may be done with it now, and what happened to it."""

    def __init__(self, services: Services, actor: Actor, request_id: int, reload: Reload) -> None:
        self.services, self.actor, self.request_id, self.reload = services, actor, request_id, reload
        self.dialog = ui.dialog()
        with self.dialog, ui.card().classes('w-[52rem] max-w-full') as card:
            self.body = ui.column().classes('w-full gap-3')
            card.mark('request-dialog')

    async def open(self) -> None:
        if await self.draw():
            self.dialog.open()

    async def draw(self) -> bool:
        try:
            view = await service(self.services.requests.get, self.request_id)
            history = await service(self.services.requests.history, self.request_id)
            topics = await service(self.services.requests.topics)
        except Exception as error:  # a request gone meanwhile: say so, not a stack trace
            ui.notify(getattr(error, 'message', 'Обращение не найдено'), type='warning')
            return False
        self.body.clear()
        with self.body:
            self._head(view)
            self._controls(view, {t.code: t.name for t in topics})
            if view.is_open:
                self._writing()
            ui.label('История').classes('text-sm font-semibold')
            with ui.column().classes('w-full gap-1').mark('request-history'):
                for event in history:
                    ui.label(event_line(event)).classes('text-xs text-gray-600')
                    if event.text:
                        ui.label(event.text).classes('text-sm whitespace-pre-wrap pl-2')
            with ui.row().classes('w-full justify-end'):
                ui.button('Закрыть', on_click=self.dialog.close).props('flat')
        return True

    def _head(self, view: RequestView) -> None:
        with ui.row().classes('w-full items-center gap-3'):
            ui.label(f'Обращение № {view.id}').classes('text-lg font-semibold')
            ui.badge(view.status_label).props('outline').mark('request-status')
            ui.space()
            ui.link(view.borrower_name, f'/borrower/{view.borrower_id}').classes('text-primary')
        ui.label(
            f'{view.channel_label} · открыто {fmt.moment(view.opened_at)} · '
            f'исполнитель: {view.assignee_name or "не назначен"}'
        ).classes('text-sm text-gray-600')
        if view.is_open:
            deadline = view.deadline
            colour = 'text-negative' if deadline.overdue else 'text-orange-8' if deadline.warning else ''
            ui.label(f'Срок ответа {fmt.day(deadline.due_on)}: {deadline.label}').classes(f'text-sm {colour}')
        ui.label(view.subject).classes('text-base font-medium')
        if view.text:
            ui.label(view.text).classes('text-sm whitespace-pre-wrap border rounded p-2 w-full')

    def _controls(self, view: RequestView, topics: dict[str, str]) -> None:
        with ui.row().classes('w-full items-center gap-2'):
            if view.topic_code and view.topic_code not in topics:
                topics = {view.topic_code: view.topic_name or view.topic_code} | topics
            topic = ui.select(topics, value=view.topic_code, label='Тема').props('outlined dense')
            topic.classes('w-56').mark('request-topic')
            topic.on_value_change(lambda e: self.act(self.services.requests.set_topic, e.value))
            if view.is_open and view.assignee_id is None and self.actor.role == Role.OPERATOR:
                ui.button('Взять', on_click=lambda: self.act(self.services.requests.take)).props('no-caps')
            for status in TRANSITIONS.get(view.status, ()):
                label = STATUS_ACTIONS.get(status, REQUEST_STATUS_LABELS[status])
                ui.button(
                    label, on_click=lambda s=status: self.act(self.services.requests.set_status, s)
                ).props('no-caps outline').mark(f'request-status-{status}')
            if view.is_open and self.actor.sees_everyone:
                ui.button(
                    'Назначить',
                    on_click=lambda: assign_dialog(self.services, self.actor, view.id, self.after),
                ).props('no-caps flat')

    def _writing(self) -> None:
        text = ui.textarea('Ответ заёмщику или комментарий').props('outlined autogrow maxlength=4000')
        text.classes('w-full').mark('request-text')

        async def send(action: Callable[..., RequestView], done: str) -> None:
            await self.act(action, text.value or '', done=done)

        with ui.row().classes('w-full justify-end gap-2'):
            ui.button(
                'Комментарий', on_click=lambda: send(self.services.requests.comment, 'Комментарий добавлен')
            ).props('no-caps outline').mark('request-comment')
            ui.button(
                'Ответить',
                icon='reply',
                on_click=lambda: send(self.services.requests.answer, 'Ответ записан'),
            ).props('no-caps').mark('request-answer')

    async def act(self, action: Callable[..., RequestView], *args: Any, done: str | None = None) -> bool:
        """A service action on this request; said done before the dialog and the list redraw."""
        with self.dialog:
            view = await attempt(action, self.actor, self.request_id, *args)
            if view is None:
                return False
            if done:
                ui.notify(done, type='positive')
        await self.after()
        return True

    async def after(self) -> None:
        await self.draw()
        await self.reload()


async def assign_dialog(services: Services, actor: Actor, request_id: int, reload: Reload) -> None:
    """Supervisors and administrators give a request to an operator."""
    operators = await attempt(services.borrowers.operators, actor)
    if operators is None:
        return
    with ui.dialog() as dialog, ui.card().classes('w-[28rem]'):
        ui.label(f'Назначить обращение № {request_id}').classes('text-lg font-semibold')
        choice = ui.select({o.id: f'{o.full_name} ({o.login})' for o in operators}, label='Сотрудник')
        choice.props('outlined dense').classes('w-full').mark('request-assignee')

        async def save() -> None:
            if choice.value is None:
                ui.notify('Выберите сотрудника', type='warning')
                return
            if await attempt(services.requests.assign, actor, request_id, int(choice.value)) is not None:
                ui.notify('Обращение назначено', type='positive')
                dialog.close()
                await reload()

        with ui.row().classes('w-full justify-end gap-2'):
            ui.button('Отмена', on_click=dialog.close).props('flat')
            ui.button('Назначить', on_click=save).props('no-caps').mark('request-assign-save')
    dialog.open()


async def new_request_dialog(services: Services, actor: Actor, reload: Reload) -> None:
    """A request written down by hand: the borrower's PIN, channel, topic, subject and text."""
    topics = await service(services.requests.topics)
    with ui.dialog() as dialog, ui.card().classes('w-[36rem]'):
        ui.label('Новое обращение').classes('text-lg font-semibold')
        pin = ui.input('PIN заёмщика').props('outlined dense maxlength=20').classes('w-full').mark('new-pin')
        channel = ui.select(BY_HAND, value=RequestChannel.MANUAL.value, label='Канал').props('outlined dense')
        channel.classes('w-full')
        topic = ui.select({t.code: t.name for t in topics}, label='Тема').props('outlined dense')
        topic.classes('w-full').mark('new-topic')
        subject = (
            ui.input('Кратко').props('outlined dense maxlength=200').classes('w-full').mark('new-subject')
        )
        text = ui.textarea('Текст обращения').props('outlined autogrow maxlength=4000').classes('w-full')

        async def save() -> None:
            borrower = await attempt(services.request_views.borrower_by_pin, actor, pin.value or '')
            if borrower is None:
                return
            opened = await attempt(
                services.requests.open,
                actor,
                borrower.id,
                channel=channel.value or '',
                topic_code=topic.value or '',
                subject=subject.value or '',
                text=text.value or '',
            )
            if opened is not None:
                ui.notify(f'Обращение № {opened.id}: {borrower.name}', type='positive')
                dialog.close()
                await reload()

        with ui.row().classes('w-full justify-end gap-2'):
            ui.button('Отмена', on_click=dialog.close).props('flat')
            ui.button('Сохранить', on_click=save).props('no-caps').mark('new-save')
    dialog.open()


async def topics_dialog(services: Services, actor: Actor) -> None:
    """Administrators: add a topic, rename one, retire or restore it (retired ones stay on old requests)."""
    with ui.dialog() as dialog, ui.card().classes('w-[40rem]'):
        ui.label('Темы обращений').classes('text-lg font-semibold')
        rows = ui.column().classes('w-full gap-1')

        async def draw() -> None:
            topics = await service(services.requests.topics, True)
            rows.clear()
            with rows:
                for t in topics:
                    with ui.row().classes('w-full items-center gap-2'):
                        name = ui.input(value=t.name).props('outlined dense maxlength=100').classes('flex-1')
                        active = ui.checkbox('Действует', value=t.active)
                        ui.button(
                            'Сохранить',
                            on_click=lambda c=t.code, n=name, a=active: save(c, n.value, bool(a.value)),
                        ).props('no-caps flat dense')

        async def save(code: str, name: str, active: bool, new: bool = False) -> None:
            saved = await attempt(services.requests.save_topic, actor, code, name, active, new=new)
            if saved is not None:
                ui.notify(f'Тема «{saved.name}» сохранена', type='positive')
                await draw()

        await draw()
        ui.separator()
        with ui.row().classes('w-full items-end gap-2'):
            code = ui.input('Код (латиницей)').props('outlined dense maxlength=32').classes('w-40')
            name = ui.input('Название').props('outlined dense maxlength=100').classes('flex-1')
            ui.button(
                'Добавить', on_click=lambda: save(code.value or '', name.value or '', True, True)
            ).props('no-caps')
        with ui.row().classes('w-full justify-end'):
            ui.button('Закрыть', on_click=dialog.close).props('flat')
    dialog.open()
