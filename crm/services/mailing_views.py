"""What «Рассылки» show of a mailing: its view with the progress, its report, and its CSV lines.

Read here, in the caller's session; ``MailingService`` (``crm.services.mailings``) checks who may.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, Table, bindparam, func, select
from sqlalchemy.orm import Session

from crm.db.models import Borrower, Mailing, MessageTemplate, OutboxMessage, User
from crm.domain import formatting as fmt
from crm.domain.field_visibility import Field, Mode, RoleView
from crm.domain.messages import (
    MESSAGE_CHANNEL_LABELS,
    OUTBOX_STATUS_LABELS,
    WAITING,
    MessageChannel,
    OutboxStatus,
)
from crm.services.mailing_law import RuleCount, rule_counts, rule_label
from crm.services.segments import NO_ADDRESS, Segment

_mailings = cast(Table, Mailing.__table__)
_outbox = cast(Table, OutboxMessage.__table__)
_borrowers = cast(Table, Borrower.__table__)
_templates = cast(Table, MessageTemplate.__table__)
_users = cast(Table, User.__table__)


STATUS_LABELS = {
    'scheduled': 'Запланирована',
    'running': 'Формируется очередь',
    'paused': 'На паузе',
    'cancelled': 'Отменена',
    'done': 'Отправляется',
}


@dataclass(frozen=True)
class TemplateChoice:
    id: int
    name: str
    kind_label: str


@dataclass(frozen=True)
class MailingView:
    id: int
    name: str
    channel: MessageChannel
    template_name: str
    segment: Segment
    status: str  # scheduled | running | paused | cancelled | done
    start_at: datetime
    created_at: datetime
    created_by: str | None
    started_at: datetime | None
    finished_at: datetime | None  # when its last borrower was queued (or it was cancelled)
    total: int  # borrowers in the segment (exact once every one was queued)
    finished: int  # borrowers done with: their message sent, delivered, failed, refused …, or no address

    @property
    def progress(self) -> float:
        if self.total <= 0:
            return 1.0 if self.status in ('done', 'cancelled') else 0.0
        return min(1.0, self.finished / self.total)

    @property
    def status_label(self) -> str:
        if self.status == 'done' and self.progress >= 1.0:
            return 'Завершена'
        return STATUS_LABELS.get(self.status, self.status)

    @property
    def active(self) -> bool:
        """Its counts may still change (the page keeps refreshing them)."""
        return self.status in ('scheduled', 'running') or (self.status == 'done' and self.progress < 1.0)

    @property
    def channel_label(self) -> str:
        return MESSAGE_CHANNEL_LABELS[self.channel]


@dataclass(frozen=True)
class MailingReport:
    """The counts of a mailing's messages; ``held`` and ``refused`` by the rule of the law."""

    mailing: MailingView
    no_address: int
    waiting: int  # queued for now or being sent
    held: tuple[RuleCount, ...]  # queued for a later moment by the law (quiet hours, a limit)
    paused: int
    sent: int
    delivered: int
    failed: int
    expired: int
    refused: tuple[RuleCount, ...]  # a legal flag, no moment before expiry, or the text (``TEXT_RULE``)
    cancelled: int

    @property
    def no_address_label(self) -> str:
        return NO_ADDRESS[self.mailing.channel]

    @property
    def held_total(self) -> int:
        return sum(item.count for item in self.held)

    @property
    def refused_total(self) -> int:
        return sum(item.count for item in self.refused)


MailingViews = list[MailingView]


def read_views(session: Session, ids: Sequence[int]) -> MailingViews:
    """The mailings of ``ids``, newest first, each with how many of its borrowers are done with."""
    if not ids:
        return []
    m, o, t, users = _mailings.c, _outbox.c, _templates.c, _users.c
    rows = session.execute(
        select(*_mailings.c, t.name.label('template_name'), users.full_name.label('author'))
        .join_from(_mailings, _templates, t.id == m.template_id)
        .outerjoin(_users, users.id == m.created_by)
        .where(m.id.in_(bindparam('ids', expanding=True)))
        .order_by(m.id.desc()),
        {'ids': list(ids)},
    ).all()
    finished: dict[int, int] = dict(
        session.execute(
            select(o.mailing_id, func.count())
            .where(o.mailing_id.in_(bindparam('ids', expanding=True)), o.status.not_in(sorted(WAITING)))
            .group_by(o.mailing_id),
            {'ids': list(ids)},
        ).all()
    )
    return [view_of(row, finished.get(row.id, 0)) for row in rows]


def view_of(row: Any, finished: int) -> MailingView:
    return MailingView(
        id=row.id,
        name=row.name,
        channel=MessageChannel(row.channel),
        template_name=row.template_name,
        segment=Segment.from_json(row.segment),
        status=row.status,
        start_at=row.start_at,
        created_at=row.created_at,
        created_by=row.author,
        started_at=row.started_at,
        finished_at=row.finished_at,
        total=row.total,
        finished=finished + row.no_address,
    )


def read_report(session: Session, view: MailingView) -> MailingReport:
    """The counts of the mailing's messages by state, and by the rule that holds or refused them."""
    o = _outbox.c
    no_address = session.scalar(select(_mailings.c.no_address).where(_mailings.c.id == view.id)) or 0
    counts = session.execute(
        select(o.status, o.rule, func.count()).where(o.mailing_id == view.id).group_by(o.status, o.rule)
    ).all()
    by_status: Counter[str] = Counter()
    held: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    for status, rule, count in counts:
        if status == OutboxStatus.QUEUED and rule is not None:
            held[rule] += count
        elif status == OutboxStatus.REFUSED:
            refused[rule or ''] += count
        else:
            by_status[status] += count
    return MailingReport(
        mailing=view,
        no_address=no_address,
        waiting=by_status[OutboxStatus.QUEUED] + by_status[OutboxStatus.SENDING],
        held=rule_counts(held),
        paused=by_status[OutboxStatus.PAUSED],
        sent=by_status[OutboxStatus.SENT],
        delivered=by_status[OutboxStatus.DELIVERED],
        failed=by_status[OutboxStatus.FAILED],
        expired=by_status[OutboxStatus.EXPIRED],
        refused=rule_counts(refused),
        cancelled=by_status[OutboxStatus.CANCELLED],
    )


# --- the CSV --------------------------------------------------------------------------------------
CSV_HEADER = (
    'PIN',
    'ФИО',
    'Адрес',
    'Статус',
    'Правило',
    'Причина',
    'Поставлено в очередь (МСК)',
    'Не раньше (МСК)',
    'Отправлено (МСК)',
    'Завершено (МСК)',
)


def csv_query(mailing_id: int) -> Select[Any]:
    o, b = _outbox.c, _borrowers.c
    return (
        select(
            b.pin,
            b.last_name,
            b.first_name,
            b.middle_name,
            o.channel,
            o.to_address,
            o.status,
            o.rule,
            o.reason,
            o.created_at,
            o.not_before,
            o.sent_at,
            o.finished_at,
        )
        .join_from(_outbox, _borrowers, b.id == o.borrower_id, isouter=True)
        .where(o.mailing_id == mailing_id)
        .order_by(o.borrower_id, o.id)
    )


def csv_line(row: Any, seen: RoleView | None = None) -> list[str]:
    """A message's line; its address masked, or blank for a role that does not see phones or e-mails
    (``seen``: the reader's row of «Видимость полей»; the report never carries a clear address)."""
    name = ' '.join(p for p in (row.last_name, row.first_name, row.middle_name) if p)
    field = Field.EMAIL if row.channel == MessageChannel.EMAIL else Field.PHONES
    hidden = seen is not None and seen.modes[field] is Mode.HIDDEN
    return [
        row.pin or '',
        name,
        '' if hidden else mask_address(row.channel, row.to_address),
        OUTBOX_STATUS_LABELS.get(row.status, row.status),
        rule_label(row.rule) if row.rule else '',
        row.reason or '',
        fmt.moment(row.created_at),
        fmt.moment(row.not_before),
        fmt.moment(row.sent_at) if row.sent_at else '',
        fmt.moment(row.finished_at) if row.finished_at else '',
    ]


def mask_address(channel: str, address: str) -> str:
    """'+7 928 ***-**-77' for a phone, 'iv***@mail.ru' for an e-mail: enough to tell, not to use."""
    if channel == MessageChannel.EMAIL:
        local, _, domain = address.rpartition('@')
        return f'{local[: 2 if len(local) > 3 else 1]}***@{domain}' if local else '***'
    if len(address) == 11 and address.isdigit():
        return f'+7 {address[1:4]} ***-**-{address[-2:]}'
    return '***'
