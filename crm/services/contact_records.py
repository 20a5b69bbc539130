"""«Добавить запись»: a note, or a contact that was not a CRM call or message, recorded by the operator.

The record is a ``communications`` row like any other contact (the card's history shows it, the 230-FZ
ledger reads it): a call made on another phone is ``call_other``, which the calls ledger counts beside
``call_out`` once it reached the borrower; a visit (``visit``) is refused while the borrower has a legal
status. Recording documents what happened, it does not ask for permission: a call or visit that broke the
hours or a limit is recorded with a ``warning`` the page shows (and the audit entry names the rule). A
result that needs a promise makes one in the same transaction, as a call's result does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crm.db.models import Borrower, Communication, ResultCode
from crm.domain.actor import Actor
from crm.domain.clock import Clock, system_clock
from crm.domain.contact_records import (
    MAX_AGE,
    MAX_COMMENT,
    RECORD_KINDS,
    RecordKind,
    ResultNeed,
    visit_problem,
)
from crm.domain.contact_rules import LEGAL_FLAG_LABELS
from crm.domain.errors import NotFound, ServiceError
from crm.domain.notifications import HistoryChanged
from crm.domain.promises import MAX_DAYS_AHEAD
from crm.services import audit
from crm.services.call_views import CallResult
from crm.services.calls import validate_result
from crm.services.compliance import LEDGER_DAYS, ComplianceService, legal_flags
from crm.services.notifier import Notifier
from crm.services.promises import new_promise


@dataclass(frozen=True)
class RecordedContact:
    """What was recorded; ``warning``: the 230-FZ rule the contact broke (Russian), shown, not refused."""

    id: int
    borrower_id: int
    channel: str
    at: datetime
    result_code: str | None
    reached: bool | None
    promise_id: int | None
    warning: str | None


class ContactRecordService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        compliance: ComplianceService,
        notifier: Notifier,
        *,
        clock: Clock = system_clock,
        promise_max_days: int = MAX_DAYS_AHEAD,
    ) -> None:
        self._sessions = sessions
        self._compliance = compliance
        self._notifier = notifier
        self._clock = clock
        self._promise_max_days = promise_max_days

    def record(
        self,
        actor: Actor,
        borrower_id: int,
        *,
        channel: str,
        result_code: str | None,
        comment: str,
        at: datetime | None = None,
        promise_amount: Decimal | str | None = None,
        promise_date: date | None = None,
        callback_at: datetime | None = None,
    ) -> RecordedContact:
        """Record a contact that happened at ``at`` (default now; not in the future, at most 30 days ago)."""
        now = self._clock()
        kind = RECORD_KINDS.get(channel)
        if kind is None:
            raise ServiceError('Выберите вид записи из списка')
        at = _moment(at or now, now)
        text = _comment(comment, kind)
        result = CallResult(result_code or '', text or '', promise_amount, promise_date, callback_at)
        with self._sessions.begin() as session:
            borrower = session.get(Borrower, borrower_id)
            if borrower is None:
                raise NotFound('Заёмщик не найден')
            option = _option(session, kind, result_code)
            if kind.channel == 'visit' and legal_flags(borrower):
                flags = ', '.join(f'«{LEGAL_FLAG_LABELS[flag]}»' for flag in legal_flags(borrower))
                raise ServiceError(f'Личная встреча запрещена: у заёмщика правовой статус {flags} (230-ФЗ)')
            checked = validate_result(option, result, now, self._promise_max_days) if option else None
            recorded = self._write(session, actor, borrower, kind, at, option, text, checked)
        self._notifier.publish([HistoryChanged(borrower_id)])
        return recorded

    def _write(
        self,
        session: Session,
        actor: Actor,
        borrower: Borrower,
        kind: RecordKind,
        at: datetime,
        option: ResultCode | None,
        text: str | None,
        checked: tuple[Decimal | None, date | None, datetime | None] | None,
    ) -> RecordedContact:
        """The communication, its promise and the audit entry, in the caller's transaction."""
        amount, due_on, again_at = checked or (None, None, None)
        reached = option.reached if option is not None and kind.result != ResultNeed.OPTIONAL else None
        warning = self._warning(session, borrower, kind, at, reached)
        communication = Communication(
            borrower_id=borrower.id,
            operator_id=actor.id,
            channel=kind.channel,
            direction=kind.direction,
            started_at=at,
            result_code=option.code if option else None,
            result_name=option.name if option else None,
            reached=reached,
            comment=text,
            promise_amount=amount,
            promise_date=due_on,
            callback_at=again_at,
            collection=False,
        )
        session.add(communication)
        session.flush()
        promise_id = None
        if amount is not None and due_on is not None:  # the same promise a call's result makes
            promise = new_promise(
                borrower_id=borrower.id,
                operator_id=actor.id,
                amount=amount,
                due_on=due_on,
                now=self._clock(),
                communication_id=communication.id,
            )
            session.add(promise)
            session.flush()
            promise_id = promise.id
        if kind.channel != 'note':
            borrower.last_contact_at = max(filter(None, [borrower.last_contact_at, at]))
        audit.record(
            session,
            'contact.record',
            user_id=actor.id,
            borrower_id=borrower.id,
            channel=kind.channel,
            result=communication.result_code,
            at=at.isoformat(),
            communication_id=communication.id,
            broke=warning,
        )
        return RecordedContact(
            communication.id,
            borrower.id,
            kind.channel,
            at,
            communication.result_code,
            reached,
            promise_id,
            warning,
        )

    def _warning(
        self, session: Session, borrower: Borrower, kind: RecordKind, at: datetime, reached: bool | None
    ) -> str | None:
        """The rule an outgoing call or a visit broke, read before this record is added to the ledger."""
        if kind.channel == 'call_other':
            verdict = self._compliance.verdict_on(session, borrower, now=at)
            return None if verdict.allowed else f'Звонок нарушил 230-ФЗ: {verdict.reason}'
        if kind.channel == 'visit' and reached:
            problem = visit_problem(
                at=at,
                timezone=borrower.timezone,
                overdue=borrower.days_past_due > 0,
                visits=_visits(session, borrower.id, at - timedelta(days=LEDGER_DAYS)),
                limits=self._compliance.limits,
            )
            return None if problem is None else f'Встреча нарушила 230-ФЗ: {problem}'
        return None


def _moment(at: datetime, now: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError('at must be an aware datetime')
    if at > now:
        raise ServiceError('Время контакта не может быть в будущем')
    if at < now - MAX_AGE:
        raise ServiceError(f'Контакт старше {MAX_AGE.days} дней записать нельзя')
    return at


def _comment(comment: str, kind: RecordKind) -> str | None:
    text = (comment or '').strip()
    if '\x00' in text:
        raise ServiceError('Комментарий содержит недопустимые символы')
    if len(text) > MAX_COMMENT:
        raise ServiceError(f'Комментарий длиннее {MAX_COMMENT} символов')
    if kind.channel == 'note' and not text:
        raise ServiceError('Напишите текст заметки')
    return text or None


def _option(session: Session, kind: RecordKind, code: str | None) -> ResultCode | None:
    """The record's result: one of the active results, required or refused as the kind says."""
    if not code:
        if kind.result == ResultNeed.REQUIRED:
            raise ServiceError('Выберите результат из списка')
        return None
    if kind.result == ResultNeed.NONE:
        raise ServiceError('Заметка записывается без результата')
    option = session.scalar(select(ResultCode).where(ResultCode.code == code, ResultCode.active.is_(True)))
    if option is None:
        raise ServiceError('Выберите результат из списка')
    return option


def _visits(session: Session, borrower_id: int, since: datetime) -> list[datetime]:
    """The borrower's personal meetings that reached them, since ``since``."""
    return list(
        session.scalars(
            select(Communication.started_at).where(
                Communication.borrower_id == borrower_id,
                Communication.channel == 'visit',
                Communication.reached.is_(True),
                Communication.started_at >= since,
            )
        )
    )
