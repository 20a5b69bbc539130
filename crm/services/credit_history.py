"""The credit-bureau part of the card's «Кредитная история»: the kept report, refreshing it, consents.

The card shows the report the CRM keeps (``latest`` never asks the bureau); ``refresh`` asks the bureau
for a new one, only with the borrower's consent to it on record and no older than 6 months, outside any
transaction (a slow bureau holds no connection), and keeps what came in one transaction with its audit
entry. Every request is audited (``bureau.request`` with its ``outcome``: ``ok``, ``no_consent``,
``no_identifiers``, ``unavailable`` and the reason), also when it was refused; a failure keeps nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import NoReturn

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, sessionmaker

from crm.db.models import Borrower, BureauReport, Consent
from crm.domain.actor import Actor
from crm.domain.clock import Clock
from crm.domain.errors import NotFound, ServiceError
from crm.domain.formatting import moment
from crm.integrations.bureau import (
    MONTHS,
    BureauInquiry,
    BureauRecord,
    BureauUnavailable,
    CreditBureau,
    parse_report,
    report_json,
)
from crm.services import audit

BUREAU_CONSENT = 'bureau'
CONSENT_MONTHS = 6
RECENT_INQUIRY_DAYS = 30
NO_CONSENT = 'Нет согласия заёмщика на запрос в БКИ (или оно старше 6 месяцев)'
MONTH_LABELS = {
    '0': 'платёж вовремя',
    '1': 'просрочка 1–29 дней',
    '2': 'просрочка 30–59 дней',
    '3': 'просрочка 60–89 дней',
    '4': 'просрочка 90 дней и более',
    '-': 'нет данных',
}


@dataclass(frozen=True)
class MonthMark:
    """One month of the payment-discipline strip."""

    month: date  # its first day
    symbol: str  # 0–4 or '-'
    label: str


@dataclass(frozen=True)
class AccountView:
    lender: str
    type: str
    amount: Decimal
    opened: date
    closed: date | None
    status: str
    overdue_amount: Decimal
    max_days_past_due: int
    strip: tuple[MonthMark, ...]  # 24 months, the oldest first


@dataclass(frozen=True)
class KeptReport:
    taken_at: datetime
    generated_at: datetime
    open_accounts: tuple[AccountView, ...]
    closed_accounts: tuple[AccountView, ...]
    recent_inquiries: tuple[BureauInquiry, ...]  # the last 30 days, newest first
    inquiries_total: int


@dataclass(frozen=True)
class CreditHistory:
    """What the card's tab shows of the bureau: the kept report (if any) and the consent on record."""

    report: KeptReport | None
    consent_given_at: datetime | None  # the latest bureau consent, valid or not
    consent_valid: bool


class CreditHistoryService:
    def __init__(self, sessions: sessionmaker[Session], bureau: CreditBureau, *, clock: Clock) -> None:
        self._sessions = sessions
        self._bureau = bureau
        self._clock = clock

    def latest(self, actor: Actor, borrower_id: int) -> CreditHistory:
        """The kept report and the consent; never asks the bureau."""
        with self._sessions() as session:
            _borrower(session, borrower_id)
            return self._history(session, borrower_id)

    def refresh(self, actor: Actor, borrower_id: int) -> CreditHistory:
        """Ask the bureau for a new report and keep it; a refusal (``ServiceError``) says why not."""
        now = self._clock()
        with self._sessions.begin() as session:
            borrower = _borrower(session, borrower_id)
            inn, passport = borrower.inn, borrower.passport
            given = _consent_at(session, borrower_id)
            refusal = None
            if given is None or given < consent_cutoff(now):
                refusal = ('no_consent', NO_CONSENT)
            elif not inn and not passport:
                refusal = ('no_identifiers', 'У заёмщика нет ни ИНН, ни паспорта: запрос в БКИ невозможен')
            if refusal is not None:
                audit.record(
                    session, 'bureau.request', user_id=actor.id, borrower_id=borrower_id, outcome=refusal[0]
                )
        if refusal is not None:
            raise ServiceError(refusal[1])
        try:
            report = self._bureau.report(inn, passport)  # outside any transaction
        except BureauUnavailable as error:
            self._unavailable(actor, borrower_id, error.reason)
        with self._sessions.begin() as session:
            session.add(
                BureauReport(
                    borrower_id=borrower_id,
                    taken_at=self._clock(),
                    generated_at=report.generated_at,
                    report=report_json(report),
                    requested_by=actor.id,
                )
            )
            audit.record(
                session,
                'bureau.request',
                user_id=actor.id,
                borrower_id=borrower_id,
                outcome='ok',
                records=len(report.records),
            )
            session.flush()
            return self._history(session, borrower_id)

    def record_consent(self, actor: Actor, borrower_id: int, given_at: datetime) -> CreditHistory:
        """Record the borrower's consent to a bureau request, given at ``given_at`` (not in the future)."""
        now = self._clock()
        if given_at.tzinfo is None:
            raise ServiceError('Укажите дату согласия с часовым поясом')
        if given_at > now:
            raise ServiceError('Дата согласия не может быть в будущем')
        if given_at < consent_cutoff(now):
            raise ServiceError('Согласию больше 6 месяцев: для запроса в БКИ нужно новое')
        with self._sessions.begin() as session:
            _borrower(session, borrower_id)
            session.add(
                Consent(
                    borrower_id=borrower_id,
                    kind=BUREAU_CONSENT,
                    given_at=given_at,
                    recorded_at=now,
                    recorded_by=actor.id,
                )
            )
            audit.record(
                session,
                'bureau.consent',
                user_id=actor.id,
                borrower_id=borrower_id,
                given_at=given_at.isoformat(),
            )
            session.flush()
            return self._history(session, borrower_id)

    def _unavailable(self, actor: Actor, borrower_id: int, reason: str) -> NoReturn:
        """Audit the failed request and refuse, saying when the last report was taken."""
        with self._sessions.begin() as session:
            audit.record(
                session,
                'bureau.request',
                user_id=actor.id,
                borrower_id=borrower_id,
                outcome='unavailable',
                reason=reason,
            )
            last = session.scalar(_latest_report(borrower_id).with_only_columns(BureauReport.taken_at))
        when = f'последний получен {moment(last)}' if last else 'ранее отчётов не получали'
        raise ServiceError(f'Отчёт БКИ сейчас недоступен ({reason}); {when}')

    def _history(self, session: Session, borrower_id: int) -> CreditHistory:
        now = self._clock()
        row = session.scalars(_latest_report(borrower_id)).first()
        given = _consent_at(session, borrower_id)
        return CreditHistory(
            report=None if row is None else kept_report(row.taken_at, row.report, now),
            consent_given_at=given,
            consent_valid=given is not None and given >= consent_cutoff(now),
        )


def kept_report(taken_at: datetime, text: str, now: datetime) -> KeptReport:
    """The view of a kept report (its wire JSON) as of ``now``."""
    report = parse_report(json.loads(text))
    first_month = add_months(report.generated_at.date().replace(day=1), 1 - MONTHS)
    accounts = sorted(report.records, key=lambda r: r.opened, reverse=True)
    since = now - timedelta(days=RECENT_INQUIRY_DAYS)
    return KeptReport(
        taken_at=taken_at,
        generated_at=report.generated_at,
        open_accounts=tuple(_account(r, first_month) for r in accounts if r.is_open),
        closed_accounts=tuple(_account(r, first_month) for r in accounts if not r.is_open),
        recent_inquiries=tuple(
            sorted((i for i in report.inquiries if i.at >= since), key=lambda i: i.at, reverse=True)
        ),
        inquiries_total=len(report.inquiries),
    )


def _account(record: BureauRecord, first_month: date) -> AccountView:
    strip = tuple(
        MonthMark(add_months(first_month, n), symbol, MONTH_LABELS[symbol])
        for n, symbol in enumerate(record.payment_history)
    )
    return AccountView(
        lender=record.lender,
        type=record.type,
        amount=record.amount,
        opened=record.opened,
        closed=record.closed,
        status=record.status,
        overdue_amount=record.overdue_amount,
        max_days_past_due=record.max_days_past_due,
        strip=strip,
    )


def add_months(moment: date, months: int) -> date:
    """The same day ``months`` later (or earlier), the month's last day when it has no such day."""
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    for day in (moment.day, 30, 29, 28):
        try:
            return moment.replace(year=year, month=month + 1, day=min(day, moment.day))
        except ValueError:
            continue
    raise AssertionError('unreachable')


def consent_cutoff(now: datetime) -> datetime:
    """The oldest consent still good for a request at ``now``: 6 calendar months back."""
    day = add_months(now.date(), -CONSENT_MONTHS)
    return now.replace(year=day.year, month=day.month, day=day.day)


def _borrower(session: Session, borrower_id: int) -> Borrower:
    found = session.get(Borrower, borrower_id)
    if found is None:
        raise NotFound('Заёмщик не найден')
    return found


def _consent_at(session: Session, borrower_id: int) -> datetime | None:
    return session.scalar(
        select(Consent.given_at)
        .where(
            Consent.borrower_id == borrower_id,
            Consent.kind == BUREAU_CONSENT,
            Consent.revoked_at.is_(None),
        )
        .order_by(Consent.given_at.desc())
        .limit(1)
    )


def _latest_report(borrower_id: int) -> Select[BureauReport]:
    return (
        select(BureauReport)
        .where(BureauReport.borrower_id == borrower_id)
        .order_by(BureauReport.taken_at.desc(), BureauReport.id.desc())
        .limit(1)
    )
