"""What the call panel shows of a call, and what the operator records about it (plain dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.db.models import Borrower, Call, Communication
from crm.domain.notifications import ScreenPop
from crm.domain.telephony import DONE_STATES, CallState


@dataclass(frozen=True)
class OtherBorrower:
    id: int
    full_name: str


@dataclass(frozen=True)
class CallView:
    call_id: str
    direction: str  # in | out
    state: CallState
    number: str
    extension: str | None
    borrower_id: int | None
    borrower_name: str | None
    others: tuple[OtherBorrower, ...]
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    duration_s: int | None
    recording_url: str | None
    transferred_to: str | None
    result_code: str | None

    @classmethod
    def ringing(cls, pop: ScreenPop) -> CallView:
        """What a screen pop itself tells, to show before anything is read from the database."""
        return cls(
            call_id=pop.call_id,
            direction='in',
            state=CallState.RINGING,
            number=pop.number,
            extension=pop.extension,
            borrower_id=pop.borrower_id,
            borrower_name=pop.borrower_name,
            others=(),
            started_at=pop.at,
            answered_at=None,
            ended_at=None,
            duration_s=None,
            recording_url=None,
            transferred_to=None,
            result_code=None,
        )

    @property
    def live(self) -> bool:
        return self.state.live

    @property
    def needs_result(self) -> bool:
        return self.state in DONE_STATES and self.result_code is None and self.borrower_id is not None

    @property
    def state_label(self) -> str:
        return self.state.label


@dataclass(frozen=True)
class ResultOption:
    code: str
    name: str
    reached: bool
    needs_promise: bool
    needs_callback: bool


@dataclass(frozen=True)
class CallResult:
    code: str
    comment: str = ''
    promise_amount: Decimal | str | None = None
    promise_date: date | None = None
    callback_at: datetime | None = None


def call_view(session: Session, call: Call) -> CallView:
    borrower = session.get(Borrower, call.borrower_id) if call.borrower_id else None
    others: tuple[OtherBorrower, ...] = ()
    if call.other_borrower_ids:
        ids = [int(i) for i in call.other_borrower_ids.split(',')]
        rows = session.scalars(select(Borrower).where(Borrower.id.in_(ids))).all()
        by_id = {b.id: b for b in rows}
        others = tuple(OtherBorrower(i, by_id[i].full_name) for i in ids if i in by_id)
    result_code = None
    if call.communication_id:
        result_code = session.scalar(
            select(Communication.result_code).where(Communication.id == call.communication_id)
        )
    return CallView(
        call_id=call.call_id,
        direction=call.direction,
        state=CallState(call.state),
        number=call.number,
        extension=call.extension,
        borrower_id=call.borrower_id,
        borrower_name=borrower.full_name if borrower else None,
        others=others,
        started_at=call.started_at,
        answered_at=call.answered_at,
        ended_at=call.ended_at,
        duration_s=call.duration_s,
        recording_url=call.recording_url,
        transferred_to=call.transferred_to,
        result_code=result_code,
    )
