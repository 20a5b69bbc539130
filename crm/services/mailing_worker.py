"""The mailing worker: queues a running mailing's borrowers through the outbox, a batch at a time.

Each batch is one transaction: the mailing is claimed with ``FOR UPDATE SKIP LOCKED`` (another process
takes another mailing, or waits for the next batch), the next ``batch_size`` borrowers of the segment
after ``Mailing.cursor`` are read by ascending id, each message is rendered from the text kept with the
mailing and checked — the creditor named, an SMS within 10 parts, and the 230-FZ rules at this moment in
the borrower's zone — and the outbox rows and the moved cursor commit together. A crash repeats nothing
and loses nothing; the cursor is also moved compare-and-set (SQLite has no row locks) and a unique index
on (mailing, borrower) refuses a second row whatever happens.

The law at queue time: allowed → queued for now; held by quiet hours or a limit → queued with
``not_before`` at the next allowed moment and the rule; a legal flag, or no allowed moment before the
message would expire → recorded as refused with the rule. The dispatcher checks again when it sends.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Row, Table, and_, bindparam, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from crm.db.models import Borrower, Communication, Loan, Mailing, OutboxMessage
from crm.domain import formatting as fmt
from crm.domain.clock import Clock, system_clock
from crm.domain.errors import ServiceError
from crm.domain.messages import Creditor, MessageChannel, OutboxStatus, Purpose
from crm.domain.notifications import MailingProgress
from crm.domain.sms_text import MAX_PARTS, sms_parts
from crm.services.compliance import ComplianceService
from crm.services.mailing_law import TEXT_RULE, LawCheck, ledger_of
from crm.services.message_text import (
    Rendered,
    compile_text,
    render_compiled,
    require_creditor,
    variables_in,
)
from crm.services.notifier import Notifier
from crm.services.outbox import NewMessage, queue_many
from crm.services.periodic import PeriodicWorker
from crm.services.segments import Segment, flags_of, segment_conditions, segment_query, usable_address

log = logging.getLogger(__name__)

_mailings = cast(Table, Mailing.__table__)
_outbox = cast(Table, OutboxMessage.__table__)
_borrowers = cast(Table, Borrower.__table__)
BATCH_SIZE = 1000
# rows per INSERT statement: psycopg converts a statement's placeholders in Python, and a 1,000-row one
# costs it over twice what ten of 100 rows do
INSERT_PAGE = 100
# no text this long or shorter is over MAX_PARTS parts, whatever its characters (UCS-2: 67 units a part,
# 2 for a character outside the BMP): the part count is only worked out for longer ones
SURELY_SHORT = MAX_PARTS * 67 // 2
# what a template may name about the borrower, read with the segment's rows
_VARIABLE_COLUMNS = tuple(
    _borrowers.c[name]
    for name in (
        'pin',
        'last_name',
        'first_name',
        'middle_name',
        'total_debt',
        'overdue_amount',
        'monthly_payment',
    )
)


class _Lost(Exception):
    """Another worker moved the mailing on first (SQLite): this batch rolls back."""


@dataclass(frozen=True)
class _Claimed:
    id: int
    channel: MessageChannel
    subject: str | None
    body: str
    segment: Segment
    status: str
    cursor: int
    total: int
    no_address: int
    started: bool


class MailingWorker(PeriodicWorker):
    """Queues due mailings; ``run_once`` for tests and benchmarks, ``start``/``stop`` for the app."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        compliance: ComplianceService,
        creditor: Creditor,
        notifier: Notifier,
        *,
        clock: Clock = system_clock,
        ttl: timedelta = timedelta(hours=72),
        batch_size: int = BATCH_SIZE,
        interval: float = 1.0,
    ) -> None:
        self._sessions = sessions
        self._compliance = compliance
        self._creditor = creditor
        self._notifier = notifier
        self._clock = clock
        self._ttl = ttl
        self.batch_size = batch_size
        super().__init__(name='mailings', interval=interval)

    def _round(self) -> int:
        return self.run_once(stop=self._stop)  # a long mailing stops between its batches

    # --- the work -------------------------------------------------------------------------------
    def run_once(self, *, stop: threading.Event | None = None) -> int:
        """Queue batches until no mailing is due; the number of borrowers handled."""
        handled = 0
        last_notice = 0.0
        while stop is None or not stop.is_set():
            progress = self.queue_batch()
            if progress is None:
                break
            handled += progress.handled
            notice = progress.notice
            # a few notices a second at most; the last batch of a mailing always tells
            if notice is not None and (notice.status != 'running' or time.monotonic() - last_notice >= 0.25):
                self._notifier.publish([notice])
                last_notice = time.monotonic()
        return handled

    def queue_batch(self) -> _Progress | None:
        """One batch of one due mailing, in one transaction; None when no mailing is due."""
        now = self._clock()
        try:
            with self._sessions.begin() as session:
                session.connection(execution_options={'insertmanyvalues_page_size': INSERT_PAGE})
                claimed = _claim(session, now)
                if claimed is None:
                    return None
                return self._batch(session, claimed)
        except _Lost:
            log.info('mailing batch queued by another worker first; rolled back')
            return _Progress(0, None)

    def _batch(self, session: Session, mailing: _Claimed) -> _Progress:
        now = self._clock()
        total = mailing.total if mailing.started else _segment_size(session, mailing, now)
        query = segment_query(mailing.segment, mailing.channel, now, *_VARIABLE_COLUMNS)
        rows = session.execute(query.where(_borrowers.c.id > mailing.cursor).limit(self.batch_size)).all()
        messages, no_address = self._messages(session, mailing, rows, now)
        done = len(rows) < self.batch_size
        no_address += mailing.no_address
        values: dict[str, Any] = {
            'cursor': rows[-1].id if rows else mailing.cursor,
            'no_address': no_address,
            'status': 'done' if done else 'running',
            'started_at': now if not mailing.started else _mailings.c.started_at,
            'total': total,
        }
        if done:  # the exact count: the segment may have changed while it was queued
            made = session.scalar(select(func.count()).where(_outbox.c.mailing_id == mailing.id)) or 0
            values |= {'total': made + len(messages) + no_address, 'finished_at': now}
        moved = session.connection().execute(
            update(_mailings)
            .where(
                _mailings.c.id == mailing.id,
                _mailings.c.cursor == mailing.cursor,
                _mailings.c.status == mailing.status,
            )
            .values(values)
        )
        if moved.rowcount != 1:
            raise _Lost()
        queue_many(session, messages, now=now, ttl=self._ttl)
        if done:
            log.info('mailing %d queued: %d borrowers in all', mailing.id, values['total'])
        return _Progress(len(rows), MailingProgress(mailing.id, values['status']))

    def _messages(
        self, session: Session, mailing: _Claimed, rows: Sequence[Row[Any]], now: datetime
    ) -> tuple[list[NewMessage], int]:
        """The batch's messages, each checked; and how many borrowers had no address."""
        channel = mailing.channel
        reachable = [(row, usable_address(channel, row.address)) for row in rows]
        reachable = [(row, address) for row, address in reachable if address is not None]
        flags = {row.id: flags_of(row) for row, _ in reachable}
        ledger = ledger_of(
            session, [row.id for row, _ in reachable if row.days_past_due > 0 and not flags[row.id]], now
        )
        values = batch_values(
            session, [row for row, _ in reachable], self._creditor, mailing.subject, mailing.body
        )
        texts = _Texts(mailing, self._creditor)
        law = LawCheck(self._compliance.message_limits, now, self._ttl)
        messages = []
        for row, address in reachable:
            overdue = row.days_past_due > 0
            common: dict[str, Any] = {
                'channel': channel,
                'purpose': Purpose.COLLECTION if overdue else Purpose.SERVICE,
                'to': address,
                'borrower_id': row.id,
                'mailing_id': mailing.id,
            }
            try:
                rendered = texts.render(values[row.id])
            except ServiceError as error:
                messages.append(
                    NewMessage(
                        body='', status=OutboxStatus.REFUSED, reason=error.message, rule=TEXT_RULE, **common
                    )
                )
                continue
            decision = law.decide(row.timezone, overdue, flags[row.id], ledger.get(row.id, ()))
            messages.append(
                NewMessage(
                    body=rendered.text,
                    subject=rendered.subject,
                    not_before=decision.not_before,
                    reason=decision.reason,
                    rule=decision.rule,
                    status=decision.status,
                    **common,
                )
            )
        return messages, len(rows) - len(reachable)


@dataclass(frozen=True)
class _Progress:
    handled: int  # borrowers read in the batch
    notice: MailingProgress | None


class _Texts:
    """The mailing's subject and body compiled once per batch, rendered and checked per borrower."""

    def __init__(self, mailing: _Claimed, creditor: Creditor) -> None:
        self._creditor = creditor
        self._sms = mailing.channel is MessageChannel.SMS
        self._subject = compile_text(mailing.subject, field='Тема') if mailing.subject is not None else None
        self._body = compile_text(mailing.body)

    def render(self, values: dict[str, Any]) -> Rendered:
        subject = render_compiled(self._subject, values, field='Тема') if self._subject else None
        rendered = Rendered(subject, render_compiled(self._body, values))
        if not rendered.text:
            raise ServiceError('Текст сообщения пуст')
        if self._sms and len(rendered.text) > SURELY_SHORT and sms_parts(rendered.text).too_long:
            raise ServiceError(f'Текст SMS длиннее {MAX_PARTS} частей')
        require_creditor(rendered, self._creditor)
        return rendered


def _claim(session: Session, now: datetime) -> _Claimed | None:
    """The oldest due mailing no other worker holds, locked for this transaction."""
    m = _mailings.c
    due = or_(m.status == 'running', and_(m.status == 'scheduled', m.start_at <= now))
    row = session.execute(
        select(m.id, m.channel, m.subject, m.body, m.segment, m.status, m.cursor, m.total, m.no_address)
        .add_columns(m.started_at)
        .where(due)
        .order_by(m.start_at, m.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).first()
    if row is None:
        return None
    return _Claimed(
        id=row.id,
        channel=MessageChannel(row.channel),
        subject=row.subject,
        body=row.body,
        segment=Segment.from_json(row.segment),
        status=row.status,
        cursor=row.cursor,
        total=row.total,
        no_address=row.no_address,
        started=row.started_at is not None,
    )


def _segment_size(session: Session, mailing: _Claimed, now: datetime) -> int:
    conditions = segment_conditions(mailing.segment, now)
    return session.scalar(select(func.count()).select_from(_borrowers).where(*conditions)) or 0


# --- the template's variables, for a batch at once ---------------------------------------------------
_loans = cast(Table, Loan.__table__)
_communications = cast(Table, Communication.__table__)
_LOAN_VARIABLES = frozenset({'loan_number', 'due_date'})
_PROMISE_VARIABLES = frozenset({'promise_amount', 'promise_date'})


def batch_values(
    session: Session, rows: Sequence[Row[Any]], creditor: Creditor, subject: str | None, body: str
) -> dict[int, dict[str, Any]]:
    """What ``message_text.variables_of`` gives each borrower, read for the whole batch in at most two
    statements (the newest loan, the last promise), and those only if the texts name them."""
    needed = variables_in(body) | (variables_in(subject, field='Тема') if subject is not None else set())
    ids = [row.id for row in rows]
    loans = _newest_loans(session, ids) if needed & _LOAN_VARIABLES else {}
    promises = _last_promises(session, ids) if needed & _PROMISE_VARIABLES else {}
    found = {}
    for row in rows:
        values: dict[str, Any] = {
            'name': ' '.join(p for p in (row.first_name, row.middle_name) if p),
            'full_name': ' '.join(p for p in (row.last_name, row.first_name, row.middle_name) if p),
            'last_name': row.last_name,
            'first_name': row.first_name,
            'middle_name': row.middle_name or '',
            'pin': row.pin,
            'total_debt': fmt.money(row.total_debt),
            'overdue_amount': fmt.money(row.overdue_amount),
            'monthly_payment': fmt.money(row.monthly_payment),
            'days_past_due': row.days_past_due,
            'creditor_name': creditor.name,
            'contact_phone': creditor.phone,
            'payment_link': creditor.payment_url,
        }
        loan = loans.get(row.id)
        if loan is not None:
            values |= {'loan_number': loan.number, 'due_date': fmt.day(loan.due_on)}
        promise = promises.get(row.id)
        if promise is not None:
            values |= {
                'promise_amount': fmt.money(promise.promise_amount),
                'promise_date': fmt.day(promise.promise_date),
            }
        found[row.id] = values
    return found


def _newest_loans(session: Session, ids: list[int]) -> dict[int, Any]:
    """Per borrower the loan ``variables_of`` picks: an active one first, then the newest issued."""
    loan = _loans.c
    rows = session.execute(
        select(loan.borrower_id, loan.number, loan.due_on, loan.state, loan.issued_on, loan.id).where(
            loan.borrower_id.in_(bindparam('ids', expanding=True))
        ),
        {'ids': ids},
    )
    newest: dict[int, Any] = {}
    for row in rows:
        best = newest.get(row.borrower_id)
        if best is None or _loan_rank(row) > _loan_rank(best):
            newest[row.borrower_id] = row
    return newest


def _loan_rank(row: Any) -> tuple[bool, Any, int]:
    return (row.state == 'active', row.issued_on, row.id)


def _last_promises(session: Session, ids: list[int]) -> dict[int, Any]:
    c = _communications.c
    rows = session.execute(
        select(c.borrower_id, c.promise_amount, c.promise_date, c.started_at, c.id).where(
            c.borrower_id.in_(bindparam('ids', expanding=True)), c.promise_amount.is_not(None)
        ),
        {'ids': ids},
    )
    last: dict[int, Any] = {}
    for row in rows:
        best = last.get(row.borrower_id)
        if best is None or (row.started_at, row.id) > (best.started_at, best.id):
            last[row.borrower_id] = row
    return last
