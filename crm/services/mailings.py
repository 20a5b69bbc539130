"""Mass mailings («Рассылки»): a template sent to a segment of borrowers through the outbox, within the law.

Supervisors and administrators build a segment (``crm.services.segments.Segment``), see what the law
lets through today (``preview``), and start a mailing now or at a moment. The template's text is kept
with the mailing when it is made: what was checked is what goes. ``MailingWorker``
(``crm.services.mailing_worker``) queues its borrowers a batch at a time; the outbox dispatcher sends
them, checking the law again. Pause holds what is queued and not yet claimed by a dispatcher (and
queues no more), resume lets it go, cancel ends it. The report counts the mailing's messages by state
and by the 230-FZ rule that held or refused them; its CSV lists them one per line.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from crm.db.models import Communication, Mailing, MessageTemplate, OutboxMessage
from crm.domain import Role
from crm.domain.actor import Actor
from crm.domain.clock import Clock, aware, system_clock
from crm.domain.errors import NotFound, ServiceError
from crm.domain.messages import (
    MESSAGE_CHANNEL_LABELS,
    PASSWORD_KIND,
    TEMPLATE_KINDS,
    Creditor,
    MessageChannel,
    OutboxStatus,
)
from crm.domain.notifications import MailingProgress
from crm.services import audit
from crm.services.compliance import ComplianceService
from crm.services.field_visibility import FieldVisibilityService
from crm.services.mailing_law import LawCheck, SegmentPreview, preview_segment
from crm.services.mailing_views import (
    CSV_HEADER,
    STATUS_LABELS,
    MailingReport,
    MailingView,
    MailingViews,
    TemplateChoice,
    csv_line,
    csv_query,
    read_report,
    read_views,
)
from crm.services.message_text import check_template
from crm.services.notifier import Notifier
from crm.services.segments import Segment, SegmentOptions, segment_options

__all__ = ['MailingReport', 'MailingService', 'MailingView', 'Segment', 'SegmentPreview', 'TemplateChoice']

MANAGERS = (Role.SUPERVISOR, Role.ADMIN)
LIST_LIMIT = 100
MAX_AHEAD = timedelta(days=90)  # how far ahead a mailing may be scheduled
CANCELLED_REASON = 'Рассылка отменена'
# a password needs a reset of its own; a chat answer goes into a chat the borrower started
NOT_FOR_MAILINGS = (PASSWORD_KIND, 'chat_answer')
_mailings = cast(Table, Mailing.__table__)
_outbox = cast(Table, OutboxMessage.__table__)
_communications = cast(Table, Communication.__table__)


class MailingService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        compliance: ComplianceService,
        creditor: Creditor,
        *,
        notifier: Notifier | None = None,
        clock: Clock = system_clock,
        ttl: timedelta = timedelta(hours=72),
        visibility: FieldVisibilityService | None = None,
    ) -> None:
        self._sessions = sessions
        self._visibility = visibility or FieldVisibilityService(sessions, clock=clock)  # the CSV's addresses
        self._compliance = compliance
        self._creditor = creditor
        self._notifier = notifier
        self._clock = clock
        self._ttl = ttl

    # --- building a mailing ---------------------------------------------------------------------
    def options(self, actor: Actor) -> SegmentOptions:
        actor.require(*MANAGERS)
        with self._sessions() as session:
            return segment_options(session)

    def templates(self, actor: Actor, channel: str) -> Sequence[TemplateChoice]:
        """The active templates of the channel a mailing may use (not «Пароль ЛК», not «Ответ в чат»)."""
        actor.require(*MANAGERS)
        t = MessageTemplate
        query = (
            select(t.id, t.name, t.kind)
            .where(t.channel == _channel(channel).value, t.active.is_(True), t.kind.not_in(NOT_FOR_MAILINGS))
            .order_by(t.kind, t.name, t.id)
        )
        with self._sessions() as session:
            rows = session.execute(query).all()
        return [TemplateChoice(row.id, row.name, TEMPLATE_KINDS.get(row.kind, row.kind)) for row in rows]

    def preview(self, actor: Actor, segment: Segment, channel: str) -> SegmentPreview:
        """How many borrowers the segment holds, how many have an address, and the law's verdicts now."""
        actor.require(*MANAGERS)
        segment = segment.checked()
        law = LawCheck(self._compliance.message_limits, self._clock(), self._ttl)
        with self._sessions() as session:
            return preview_segment(session, segment, _channel(channel), law)

    def create(
        self,
        actor: Actor,
        name: str,
        channel: str,
        template_id: int | None,
        segment: Segment,
        start_at: datetime | None = None,
    ) -> MailingView:
        """A mailing that starts now (``start_at`` None) or at ``start_at``; audited."""
        actor.require(*MANAGERS)
        name = (name or '').strip()
        if not name or len(name) > 200:
            raise ServiceError('Название рассылки: от 1 до 200 символов')
        kind = _channel(channel)
        segment = segment.checked()
        now = self._clock()
        if start_at is not None:
            start_at = aware(start_at)
            if start_at < now - timedelta(minutes=1) or start_at > now + MAX_AHEAD:
                raise ServiceError('Время запуска: не в прошлом и не дальше чем через 90 дней')
        with self._sessions.begin() as session:
            template = self._template(session, template_id, kind)
            mailing_id = (
                session.connection()
                .execute(
                    insert(_mailings).returning(_mailings.c.id),
                    {
                        'name': name,
                        'channel': kind.value,
                        'template_id': template.id,
                        'subject': template.subject if kind is MessageChannel.EMAIL else None,
                        'body': template.body,
                        'segment': segment.to_json(),
                        'status': 'running' if start_at is None else 'scheduled',
                        'start_at': start_at or now,
                        'total': 0,
                        'cursor': 0,
                        'no_address': 0,
                        'created_by': actor.id,
                        'created_at': now,
                    },
                )
                .scalar_one()
            )
            audit.record(
                session,
                'mailing.create',
                user_id=actor.id,
                mailing_id=mailing_id,
                name=name,
                channel=kind.value,
                template_id=template.id,
                segment=segment.to_json(),
                start_at=(start_at or now).isoformat(),
            )
            view = read_views(session, [mailing_id])[0]
        self._tell(view)
        return view

    def _template(
        self, session: Session, template_id: int | None, channel: MessageChannel
    ) -> MessageTemplate:
        template = session.get(MessageTemplate, template_id) if template_id is not None else None
        if template is None or not template.active or template.kind in NOT_FOR_MAILINGS:
            raise ServiceError('Выберите действующий шаблон для рассылки')
        if template.channel != channel.value:
            raise ServiceError(f'Шаблон «{template.name}» не для канала {MESSAGE_CHANNEL_LABELS[channel]}')
        subject = template.subject if channel is MessageChannel.EMAIL else None
        if channel is MessageChannel.EMAIL and not (subject or '').strip():
            raise ServiceError(f'У шаблона «{template.name}» нет темы письма')
        check_template(template.kind, subject, template.body, self._creditor)
        return template

    # --- pause, resume, cancel ------------------------------------------------------------------
    def pause(self, actor: Actor, mailing_id: int) -> MailingView:
        """No more batches; what is queued and not yet claimed waits (``paused``) until resumed."""
        return self._change(actor, mailing_id, 'pause', ('scheduled', 'running', 'done'), _pause)

    def resume(self, actor: Actor, mailing_id: int) -> MailingView:
        return self._change(actor, mailing_id, 'resume', ('paused',), _resume)

    def cancel(self, actor: Actor, mailing_id: int) -> MailingView:
        """Ends the mailing: what is queued and not yet claimed by a dispatcher is cancelled."""
        return self._change(actor, mailing_id, 'cancel', ('scheduled', 'running', 'paused', 'done'), _cancel)

    def _change(
        self,
        actor: Actor,
        mailing_id: int,
        action: str,
        allowed_from: Sequence[str],
        apply: Callable[[Session, Mailing, datetime], None],
    ) -> MailingView:
        actor.require(*MANAGERS)
        now = self._clock()
        with self._sessions.begin() as session:
            # the row lock (PostgreSQL) waits for a batch being queued to commit: it is paused with the rest
            mailing = session.scalar(select(Mailing).where(Mailing.id == mailing_id).with_for_update())
            if mailing is None:
                raise NotFound('Рассылка не найдена')
            if mailing.status not in allowed_from:
                raise ServiceError(f'Рассылка {STATUS_LABELS.get(mailing.status, mailing.status).lower()}')
            apply(session, mailing, now)
            audit.record(session, f'mailing.{action}', user_id=actor.id, mailing_id=mailing_id)
            session.flush()
            view = read_views(session, [mailing_id])[0]
        self._tell(view)
        return view

    def _tell(self, view: MailingView) -> None:
        if self._notifier is not None:
            self._notifier.publish([MailingProgress(view.id, view.status)])

    # --- reading --------------------------------------------------------------------------------
    def list(self, actor: Actor) -> MailingViews:
        """The newest mailings first, with their progress."""
        actor.require(*MANAGERS)
        with self._sessions() as session:
            ids = session.scalars(select(Mailing.id).order_by(Mailing.id.desc()).limit(LIST_LIMIT)).all()
            return read_views(session, ids)

    def get(self, actor: Actor, mailing_id: int) -> MailingView:
        actor.require(*MANAGERS)
        with self._sessions() as session:
            views = read_views(session, [mailing_id])
        if not views:
            raise NotFound('Рассылка не найдена')
        return views[0]

    def report(self, actor: Actor, mailing_id: int) -> MailingReport:
        view = self.get(actor, mailing_id)
        with self._sessions() as session:
            return read_report(session, view)

    def report_csv(self, actor: Actor, mailing_id: int) -> bytes:
        """The mailing's messages, one a line: UTF-8 with a BOM and ``;`` between fields (Excel opens it
        as it is); addresses partly masked. Audited: it is personal data leaving the system."""
        view = self.get(actor, mailing_id)
        out = io.StringIO()
        out.write('\ufeff')
        writer = csv.writer(out, delimiter=';', lineterminator='\r\n')
        writer.writerow(CSV_HEADER)
        seen = self._visibility.view_for(actor.role)
        with self._sessions.begin() as session:
            for row in session.execute(csv_query(mailing_id)).yield_per(2000):
                writer.writerow(csv_line(row, seen))
            audit.record(session, 'mailing.export', user_id=actor.id, mailing_id=view.id)
        return out.getvalue().encode('utf-8')


def _channel(value: str) -> MessageChannel:
    try:
        return MessageChannel(value)
    except ValueError:
        raise ServiceError('Канал рассылки: SMS или e-mail') from None


def _pause(session: Session, mailing: Mailing, now: datetime) -> None:
    mailing.status = 'paused'
    _move(session, mailing.id, OutboxStatus.QUEUED, {'status': OutboxStatus.PAUSED.value})


def _resume(session: Session, mailing: Mailing, now: datetime) -> None:
    if mailing.started_at is None:
        mailing.status = 'scheduled'
    else:
        mailing.status = 'running' if mailing.finished_at is None else 'done'
    _move(session, mailing.id, OutboxStatus.PAUSED, {'status': OutboxStatus.QUEUED.value})


def _cancel(session: Session, mailing: Mailing, now: datetime) -> None:
    values = {'status': OutboxStatus.CANCELLED.value, 'finished_at': now, 'reason': CANCELLED_REASON}
    communication_ids = _move(session, mailing.id, OutboxStatus.QUEUED, values)
    communication_ids += _move(session, mailing.id, OutboxStatus.PAUSED, values)
    _cancel_communications(session, communication_ids)
    made = session.scalar(select(func.count()).where(_outbox.c.mailing_id == mailing.id)) or 0
    mailing.status = 'cancelled'
    mailing.total = made + mailing.no_address
    mailing.finished_at = mailing.finished_at or now


def _move(session: Session, mailing_id: int, from_status: OutboxStatus, values: dict[str, Any]) -> list[int]:
    """Move the mailing's rows in one state to another; their communications' ids."""
    o = _outbox.c
    moved = session.connection().execute(
        update(_outbox)
        .where(o.mailing_id == mailing_id, o.status == from_status.value)
        .values(values)
        .returning(o.communication_id)
    )
    return [communication_id for communication_id in moved.scalars() if communication_id is not None]


def _cancel_communications(session: Session, ids: list[int], chunk: int = 5000) -> None:
    """The history and the 230-FZ ledger see the cancelled messages as not sent."""
    c = _communications.c
    statement = (
        update(_communications)
        .where(c.id.in_(bindparam('ids', expanding=True)))
        .values(delivery_status=OutboxStatus.CANCELLED.value)
    )
    for start in range(0, len(ids), chunk):
        session.connection().execute(statement, {'ids': ids[start : start + chunk]})
