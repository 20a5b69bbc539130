"""The contact ledger per borrower and the 230-FZ verdicts on an outgoing call or message (contact_rules).

One ledger, the ``communications`` table: outgoing calls that reached the borrower (the CRM's, and those
made on another phone and recorded by hand: ``COUNTED_CALL_CHANNELS``) count against the call limits,
messages marked ``collection`` that were not failed, expired, refused or cancelled count against the
message limits (``docs/230-fz.md``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import ColumnElement, Select, Table, bindparam, select
from sqlalchemy.orm import Session, sessionmaker

from crm.db.bulk import any_of
from crm.db.models import Borrower, Communication
from crm.domain.clock import Clock, system_clock
from crm.domain.contact_records import COUNTED_CALL_CHANNELS
from crm.domain.contact_rules import (
    MESSAGE_LIMITS,
    CallLimits,
    LegalFlag,
    Verdict,
    check_outgoing_call,
    check_outgoing_message,
)
from crm.domain.errors import NotFound
from crm.domain.messages import NOT_SENT

LEDGER_DAYS = 32  # enough history for the calendar month of any time zone


class ContactSubject(Protocol):
    """What a verdict reads of a borrower: a loaded ``Borrower``, or a row of ``VERDICT_COLUMNS``."""

    @property
    def timezone(self) -> str: ...

    @property
    def days_past_due(self) -> int: ...


# The columns a verdict reads: a batch reads them as plain rows instead of loading whole borrowers.
VERDICT_COLUMNS = (
    Borrower.id,
    Borrower.timezone,
    Borrower.days_past_due,
    *(getattr(Borrower, flag.value) for flag in LegalFlag),
)


def legal_flags(borrower: ContactSubject) -> list[LegalFlag]:
    return [flag for flag in LegalFlag if getattr(borrower, flag.value)]


_communications = cast(Table, Communication.__table__)
# Built once (the verdict is read with every screen pop's card): parameters are bound at execution.
REACHED_CALLS = select(_communications.c.started_at).where(
    _communications.c.borrower_id == bindparam('borrower_id'),
    _communications.c.channel.in_(COUNTED_CALL_CHANNELS),
    _communications.c.reached.is_(True),
    _communications.c.started_at >= bindparam('since'),
)


def _counted(borrower_is: ColumnElement[bool]) -> Select[Any]:
    c = _communications.c
    return select(c.borrower_id, c.started_at).where(
        borrower_is,
        c.collection.is_(True),
        c.started_at >= bindparam('since'),
        c.delivery_status.is_(None) | c.delivery_status.not_in(sorted(NOT_SENT)),
    )


# Built once. On PostgreSQL the ids go as one array (``= ANY``): the same short text for any number of
# ids, parsed once by the driver; an IN list of a mailing batch's thousand would be a new text each time.
_COUNTED_ANY = _counted(any_of(_communications.c.borrower_id, postgres=True))
_COUNTED_IN = _counted(any_of(_communications.c.borrower_id, postgres=False))


def counted_messages(
    session: Session, borrower_ids: Collection[int], since: datetime
) -> dict[int, list[datetime]]:
    """The ledger of messages: when each borrower was sent (or will be sent) a counted message."""
    found: dict[int, list[datetime]] = {borrower_id: [] for borrower_id in borrower_ids}
    if not found:
        return found
    connection = session.connection()
    statement = _COUNTED_ANY if connection.dialect.name == 'postgresql' else _COUNTED_IN
    rows = connection.execute(statement, {'ids': list(found), 'since': since})
    for row in rows:
        found[row.borrower_id].append(row.started_at)
    return found


def reached_calls(session: Session, borrower_id: int, since: datetime) -> list[datetime]:
    """The ledger: outgoing calls that reached the borrower (answered, and not marked unreached)."""
    found = session.connection().execute(REACHED_CALLS, {'borrower_id': borrower_id, 'since': since})
    return list(found.scalars())


class ComplianceService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        limits: CallLimits | None = None,
        *,
        message_limits: CallLimits = MESSAGE_LIMITS,
        clock: Clock = system_clock,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self.limits = limits or CallLimits()
        self.message_limits = message_limits

    def outgoing_call(self, borrower_id: int, *, now: datetime | None = None) -> Verdict:
        with self._sessions() as session:
            return self.outgoing_call_in(session, borrower_id, now=now)

    def outgoing_call_in(self, session: Session, borrower_id: int, *, now: datetime | None = None) -> Verdict:
        """The verdict inside the caller's transaction (the dialler checks and records in one go)."""
        borrower = session.get(Borrower, borrower_id)
        if borrower is None:
            raise NotFound('Заёмщик не найден')
        return self.verdict_on(session, borrower, now=now)

    def verdict_on(self, session: Session, borrower: Borrower, *, now: datetime | None = None) -> Verdict:
        """The verdict for a borrower the caller's transaction has already loaded."""
        now = now or self._clock()
        return check_outgoing_call(
            now=now,
            timezone=borrower.timezone,
            overdue=borrower.days_past_due > 0,
            flags=legal_flags(borrower),
            reached_calls=reached_calls(session, borrower.id, now - timedelta(days=LEDGER_DAYS)),
            limits=self.limits,
        )

    def message_verdict(
        self,
        borrower: ContactSubject,
        counted: Iterable[datetime],
        *,
        now: datetime | None = None,
    ) -> Verdict:
        """May a collection message go to this borrower now, given the ledger's counted messages?"""
        return check_outgoing_message(
            now=now or self._clock(),
            timezone=borrower.timezone,
            overdue=borrower.days_past_due > 0,
            flags=legal_flags(borrower),
            sent_messages=counted,
            limits=self.message_limits,
        )

    def outgoing_message_in(
        self, session: Session, borrower: Borrower, *, now: datetime | None = None
    ) -> Verdict:
        """The verdict on one more collection message, in the caller's transaction."""
        now = now or self._clock()
        ledger = counted_messages(session, [borrower.id], now - timedelta(days=LEDGER_DAYS))
        return self.message_verdict(borrower, ledger[borrower.id], now=now)
