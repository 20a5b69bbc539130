"""Message templates («Шаблоны сообщений»): administrators write them, operators pick from the active ones.

A template is checked when it is saved: it renders against a sample borrower (broken syntax or an unknown
variable is refused then, never a blank in a sent message), the rendered text names the creditor and gives
its contact phone (230-FZ, since 01.09.2025), an SMS fits in ``MAX_PARTS`` parts, and only «Пароль ЛК»
templates name ``password`` (which they must). Templates are never deleted — messages and mailings refer
to them — only retired, and every change is in the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, sessionmaker

from crm.db.models import Borrower, MessageTemplate, User
from crm.domain import Role
from crm.domain.actor import Actor
from crm.domain.clock import Clock, system_clock
from crm.domain.errors import NotFound, ServiceError
from crm.domain.messages import (
    MESSAGE_CHANNEL_LABELS,
    PASSWORD_KIND,
    TEMPLATE_KINDS,
    Creditor,
    MessageChannel,
    names_the_creditor,
)
from crm.domain.sms_text import MAX_PARTS, SmsParts, sms_parts
from crm.services import audit, message_text
from crm.services.message_text import SAMPLE_PASSWORD, VARIABLES, Rendered

__all__ = ['VARIABLES', 'TemplateDraft', 'TemplatePreview', 'TemplateService', 'TemplateView', 'check_draft']

READERS = (Role.ADMIN, Role.SUPERVISOR, Role.OPERATOR)
NAME_LENGTH = 200  # the columns' sizes
SUBJECT_LENGTH = 300
BODY_LENGTH = 20_000  # an e-mail; an SMS is held by MAX_PARTS long before this
_KIND_ORDER: dict[str, int] = {kind: position for position, kind in enumerate(TEMPLATE_KINDS)}


@dataclass(frozen=True)
class TemplateView:
    """One template as the editor and the card's dialogs see it."""

    id: int
    channel: str  # crm.domain.messages.MessageChannel
    kind: str  # a key of TEMPLATE_KINDS
    kind_label: str
    name: str
    subject: str | None  # e-mail only
    body: str
    active: bool
    updated_at: datetime
    updated_by_name: str | None

    @property
    def channel_label(self) -> str:
        return MESSAGE_CHANNEL_LABELS.get(MessageChannel(self.channel), self.channel)


@dataclass(frozen=True)
class TemplateDraft:
    """What the editor saves: a new template when ``id`` is None."""

    channel: str
    kind: str
    name: str
    body: str
    subject: str | None = None
    id: int | None = None


@dataclass(frozen=True)
class TemplatePreview:
    """A template rendered for one borrower (or the sample one): what would be sent."""

    subject: str | None
    text: str
    parts: SmsParts | None  # SMS only: encoding and part count of the rendered text
    borrower_name: str | None  # None: rendered against the sample borrower
    problem: str | None  # what the rendered text lacks by 230-FZ (the creditor, its phone), if anything


Views = list[TemplateView]  # (``list`` is also a method of the service)


class TemplateService:
    def __init__(
        self, sessions: sessionmaker[Session], creditor: Creditor, *, clock: Clock = system_clock
    ) -> None:
        self._sessions = sessions
        self._creditor = creditor
        self._clock = clock

    # --- reading ------------------------------------------------------------------------------
    def list(
        self,
        actor: Actor,
        channel: str | None = None,
        kind: str | None = None,
        include_retired: bool = False,
    ) -> Views:
        """By kind (in the order of TEMPLATE_KINDS), channel and name; active ones unless asked."""
        actor.require(*READERS)
        query = _views_query()
        if channel:
            query = query.where(MessageTemplate.channel == _channel(channel))
        if kind:
            query = query.where(MessageTemplate.kind == _kind(kind))
        if not include_retired:
            query = query.where(MessageTemplate.active.is_(True))
        with self._sessions() as session:
            views = [_view(template, author) for template, author in session.execute(query)]
        return sorted(views, key=lambda v: (_KIND_ORDER.get(v.kind, 99), v.channel, v.name.casefold(), v.id))

    def get(self, actor: Actor, template_id: int) -> TemplateView:
        actor.require(*READERS)
        with self._sessions() as session:
            row = session.execute(_views_query().where(MessageTemplate.id == template_id)).first()
        if row is None:
            raise NotFound('Шаблон не найден')
        return _view(row[0], row[1])

    def offered(self, actor: Actor, channel: str, kind: str | None = None) -> Views:
        """The active templates of a channel for the card's «Вид шаблона», by kind then name.

        Without ``kind``, «Пароль ЛК» templates are left out: only the password dialog may send them
        (it asks for ``kind=PASSWORD_KIND``), for they need a password the operator never sees.
        """
        views = self.list(actor, channel=channel, kind=kind)
        if kind is None:
            views = [view for view in views if view.kind != PASSWORD_KIND]
        return views

    # --- changing -----------------------------------------------------------------------------
    def save(self, actor: Actor, draft: TemplateDraft) -> TemplateView:
        """Create or change a template, after every check (nothing is written if one fails)."""
        actor.require(Role.ADMIN)
        clean = check_draft(draft, self._creditor)
        with self._sessions.begin() as session:
            _require_unique_name(session, clean)
            template = self._for_update(session, clean)
            template.kind = clean.kind
            template.name = clean.name
            template.subject = clean.subject
            template.body = clean.body
            template.updated_by = actor.id
            template.updated_at = self._clock()
            session.flush()
            audit.record(
                session,
                'template.save',
                user_id=actor.id,
                template_id=template.id,
                channel=clean.channel,
                kind=clean.kind,
                name=clean.name,
                created=draft.id is None,
            )
            return _view(template, actor.full_name)

    def retire(self, actor: Actor, template_id: int) -> TemplateView:
        """«В архив»: kept for the messages that used it, no longer offered."""
        return self._set_active(actor, template_id, active=False)

    def restore(self, actor: Actor, template_id: int) -> TemplateView:
        """«Вернуть»: offered again (checked again, as the rules may have changed since)."""
        return self._set_active(actor, template_id, active=True)

    # --- preview ------------------------------------------------------------------------------
    def preview(
        self, actor: Actor, draft_or_id: TemplateDraft | int, borrower_id: int | None = None
    ) -> TemplatePreview:
        """The template rendered for a borrower, or for the sample borrower when ``borrower_id`` is None.

        A «Пароль ЛК» template shows a sample password (a real one is made only when it is sent). A
        variable the borrower lacks, or broken syntax, is a Russian ServiceError naming it.
        """
        actor.require(*READERS)
        draft = self._draft(actor, draft_or_id)
        channel = _channel(draft.channel)
        subject = None
        if channel is MessageChannel.EMAIL:
            subject = (draft.subject or '').strip() or None
        password = SAMPLE_PASSWORD if draft.kind == PASSWORD_KIND else None
        borrower_name = None
        if borrower_id is None:
            values = message_text.sample_variables(self._creditor)
            if password is None:
                values.pop('password')
            rendered = Rendered(
                message_text.render_text(subject, values, field='Тема') if subject else None,
                message_text.render_text(draft.body, values, field='Текст шаблона'),
            )
        else:
            with self._sessions.begin() as session:  # the borrower's data shown: audited (152-FZ)
                borrower = session.get(Borrower, borrower_id)
                if borrower is None:
                    raise NotFound('Заёмщик не найден')
                borrower_name = borrower.full_name
                rendered = message_text.render(
                    session, borrower_id, subject, draft.body, self._creditor, password=password
                )
                audit.record(
                    session,
                    'template.preview',
                    user_id=actor.id,
                    borrower_id=borrower_id,
                    template_id=draft.id,
                )
        return TemplatePreview(
            subject=rendered.subject,
            text=rendered.text,
            parts=sms_parts(rendered.text) if channel is MessageChannel.SMS else None,
            borrower_name=borrower_name,
            problem=names_the_creditor(rendered.text, self._creditor),
        )

    # --- inside -------------------------------------------------------------------------------
    def _draft(self, actor: Actor, draft_or_id: TemplateDraft | int) -> TemplateDraft:
        if isinstance(draft_or_id, TemplateDraft):
            return draft_or_id
        view = self.get(actor, draft_or_id)
        return TemplateDraft(view.channel, view.kind, view.name, view.body, view.subject, view.id)

    def _for_update(self, session: Session, draft: TemplateDraft) -> MessageTemplate:
        if draft.id is None:
            template = MessageTemplate(channel=draft.channel, active=True)
            session.add(template)
            return template
        found = session.get(MessageTemplate, draft.id, with_for_update=True)
        if found is None:
            raise NotFound('Шаблон не найден')
        template = found
        if template.channel != draft.channel:
            raise ServiceError('Канал: у сохранённого шаблона канал не меняется, создайте новый шаблон')
        return template

    def _set_active(self, actor: Actor, template_id: int, *, active: bool) -> TemplateView:
        actor.require(Role.ADMIN)
        with self._sessions.begin() as session:
            template = session.get(MessageTemplate, template_id, with_for_update=True)
            if template is None:
                raise NotFound('Шаблон не найден')
            if template.active != active:
                if active:
                    check_draft(
                        TemplateDraft(
                            template.channel, template.kind, template.name, template.body, template.subject
                        ),
                        self._creditor,
                    )
                template.active = active
                template.updated_by = actor.id
                template.updated_at = self._clock()
                audit.record(
                    session,
                    'template.restore' if active else 'template.retire',
                    user_id=actor.id,
                    template_id=template.id,
                    name=template.name,
                )
            session.flush()
            author = session.get(User, template.updated_by) if template.updated_by else None
            return _view(template, author.full_name if author else None)


def check_draft(draft: TemplateDraft, creditor: Creditor) -> TemplateDraft:
    """The draft trimmed, or a Russian ServiceError naming the field that is wrong."""
    channel = _channel(draft.channel)
    kind = _kind(draft.kind)
    name = ' '.join(draft.name.split())
    subject = (draft.subject or '').strip() or None
    body = draft.body.strip()
    if not name:
        raise ServiceError('Название: укажите название шаблона')
    if len(name) > NAME_LENGTH:
        raise ServiceError(f'Название: не длиннее {NAME_LENGTH} символов')
    if channel is MessageChannel.EMAIL and subject is None:
        raise ServiceError('Тема: у шаблона письма должна быть тема')
    if channel is MessageChannel.SMS and subject is not None:
        raise ServiceError('Тема: у SMS темы не бывает, оставьте поле пустым')
    if subject is not None and (len(subject) > SUBJECT_LENGTH or '\n' in subject or '\r' in subject):
        raise ServiceError(f'Тема: одна строка, не длиннее {SUBJECT_LENGTH} символов')
    if not body:
        raise ServiceError('Текст шаблона: введите текст')
    if len(body) > BODY_LENGTH:
        raise ServiceError(f'Текст шаблона: не длиннее {BODY_LENGTH} символов')
    _check_password(kind, subject, body)
    rendered = message_text.check_template(kind, subject, body, creditor)
    if channel is MessageChannel.SMS:
        parts = sms_parts(rendered.text)
        if parts.too_long:
            raise ServiceError(
                f'Текст шаблона: SMS длиннее {MAX_PARTS} частей ({parts.describe()}), сократите текст'
            )
    return TemplateDraft(channel, kind, name, body, subject, draft.id)


def _views_query() -> Select[MessageTemplate, str]:
    return select(MessageTemplate, User.full_name).outerjoin(User, User.id == MessageTemplate.updated_by)


def _view(template: MessageTemplate, author: str | None) -> TemplateView:
    return TemplateView(
        id=template.id,
        channel=template.channel,
        kind=template.kind,
        kind_label=TEMPLATE_KINDS.get(template.kind, template.kind),
        name=template.name,
        subject=template.subject,
        body=template.body,
        active=template.active,
        updated_at=template.updated_at,
        updated_by_name=author,
    )


def _channel(value: str) -> MessageChannel:
    try:
        return MessageChannel(value)
    except ValueError:
        raise ServiceError('Канал: выберите SMS или E-mail') from None


def _kind(value: str) -> str:
    if value not in TEMPLATE_KINDS:
        raise ServiceError('Вид шаблона: выберите вид из списка')
    return value


def _check_password(kind: str, subject: str | None, body: str) -> None:
    """Only «Пароль ЛК» templates carry the password, in the text (never the subject), and they must."""
    label = TEMPLATE_KINDS[PASSWORD_KIND]
    if subject is not None and 'password' in message_text.variables_in(subject, field='Тема'):
        raise ServiceError('Тема: пароль нельзя ставить в тему письма, только в текст')
    named = 'password' in message_text.variables_in(body, field='Текст шаблона')
    if kind == PASSWORD_KIND and not named:
        raise ServiceError(f'Текст шаблона: в шаблоне вида «{label}» должен быть пароль — {{{{ password }}}}')
    if kind != PASSWORD_KIND and named:
        raise ServiceError(f'Текст шаблона: переменная «password» есть только в шаблонах вида «{label}»')


def _require_unique_name(session: Session, draft: TemplateDraft) -> None:
    """One name per channel, whatever the case (compared here: SQLite's lower() knows only ASCII)."""
    others = session.execute(
        select(MessageTemplate.id, MessageTemplate.name).where(MessageTemplate.channel == draft.channel)
    )
    wanted = draft.name.casefold()
    if any(name.casefold() == wanted and id_ != draft.id for id_, name in others):
        raise ServiceError(f'Название: шаблон «{draft.name}» для этого канала уже есть')
