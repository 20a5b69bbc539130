"""The outbox dispatcher's statements: the claim's select, the cluster's token bucket, set-wise updates.

A batch's results are written with one statement per kind of change: on PostgreSQL an
``UPDATE … FROM unnest(arrays)`` (one plan, one round trip for hundreds of rows), elsewhere an
executemany of the same update (SQLite runs in-process; there it costs little).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Connection,
    Integer,
    String,
    Table,
    Text,
    Update,
    bindparam,
    case,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

from crm.db.bulk import any_of, insert_many
from crm.db.models import Communication, OutboxAttempt, OutboxMessage, SendRate
from crm.db.types import UtcDateTime
from crm.db.upsert import insert_ignoring_conflicts
from crm.domain.messages import NOT_SENT, WAITING, OutboxStatus
from crm.services.outbox import masked

outbox = cast(Table, OutboxMessage.__table__)
communications = cast(Table, Communication.__table__)
attempts = cast(Table, OutboxAttempt.__table__)
_rates = cast(Table, SendRate.__table__)
o = outbox.c
c = communications.c
MASKED_BODY = masked('', True)

# Due rows of one channel, oldest moment first (never by id alone: ids commit out of order), locked
# so that no other process takes them; with the communication's moment the ledger counts it at.
DUE = (
    select(
        o.id,
        o.key,
        o.channel,
        o.purpose,
        o.status,
        o.borrower_id,
        o.communication_id,
        o.to_address,
        o.subject,
        o.body,
        o.secret,
        o.expires_at,
        o.attempts,
        c.started_at.label('counted_at'),
    )
    .outerjoin(communications, c.id == o.communication_id)
    .where(
        o.status.in_([OutboxStatus.QUEUED.value, OutboxStatus.SENDING.value]),
        o.not_before <= bindparam('now', type_=UtcDateTime()),
        o.channel == bindparam('channel'),
    )
    .order_by(o.not_before, o.created_at, o.id)  # id only breaks ties of one moment
    .limit(bindparam('n'))
    .with_for_update(skip_locked=True, of=outbox)
)


def mark_sending(session: Session, ids: Sequence[int], lease_until: datetime) -> None:
    """Claimed: one more attempt, and due again at the lease's end if nobody records it by then."""
    SENDING.execute(session.connection(), [{'id': id_, 'lease': lease_until} for id_ in ids])


def insert_attempts(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """The attempts' rows, set-wise (``crm.db.bulk.insert_many``)."""
    insert_many(connection, attempts, [dict(row) for row in rows])


@dataclass(frozen=True)
class Counted:
    """A collection message of the 230-FZ ledger: when it counts, and whether it still waits to go."""

    at: datetime
    communication_id: int
    waiting: bool


def ledger(session: Session, borrower_ids: Sequence[int], since: datetime) -> dict[int, list[Counted]]:
    """The borrowers' counted messages (as ``compliance.counted_messages`` reads them), with their ids
    and whether they were sent already or still wait in the outbox."""
    found: dict[int, list[Counted]] = {borrower_id: [] for borrower_id in borrower_ids}
    if not found:
        return found
    connection = session.connection()
    rows = connection.execute(
        select(c.borrower_id, c.id, c.started_at, c.delivery_status).where(
            any_of(c.borrower_id, postgres=connection.dialect.name == 'postgresql'),
            c.collection.is_(True),
            c.started_at >= since,
            c.delivery_status.is_(None) | c.delivery_status.not_in(sorted(NOT_SENT)),
        ),
        {'ids': list(found)},
    )
    for borrower_id, communication_id, at, status in rows:
        found[borrower_id].append(Counted(at, communication_id, status in WAITING))
    return found


# --- the token bucket -----------------------------------------------------------------------------------
# How far the clocks of the cluster's hosts may differ (NTP keeps them within milliseconds): a refill
# stamped less than this ahead of a process's clock was another process's; more is a clock set back.
CLOCK_SKEW = timedelta(seconds=5)


@dataclass
class TokenBucket:
    """A channel's row of ``send_rates``, locked for the claim's transaction and refilled to now.

    Refilled by the time elapsed × the rate, at most one second's worth (the burst). The row lock makes
    the claims of all processes take turns, so the rate holds for the cluster; the refill moment never
    moves back for a clock a little behind another's (``CLOCK_SKEW``), so hosts' clocks that differ
    cannot add the difference again at every turn.
    """

    channel: str
    tokens: float
    refilled_at: datetime
    set_back: bool = False  # the stored refill was far ahead of this clock (set back): restart it from now

    @property
    def whole(self) -> int:
        return math.floor(self.tokens + 1e-9)

    @classmethod
    def open(cls, session: Session, channel: str, rate: float, now: datetime) -> TokenBucket:
        burst = max(rate, 1.0)  # one second's worth; at least one message, whatever the rate
        read = (
            select(_rates.c.tokens, _rates.c.refilled_at).where(_rates.c.channel == channel).with_for_update()
        )
        row = session.connection().execute(read).first()
        if row is None:  # first use: created full, by whichever process comes first
            insert_ignoring_conflicts(
                session,
                SendRate,
                [{'channel': channel, 'tokens': burst, 'refilled_at': now}],
                SendRate.channel,
            )
            row = session.connection().execute(read).one()
        stored = min(burst, float(row.tokens))
        if now < row.refilled_at <= now + CLOCK_SKEW:
            # another process's clock is a little ahead: its refill stands and this one adds nothing, so
            # the refill moment only ever moves forward and the skew is never counted twice as time
            return cls(channel, stored, row.refilled_at)
        # A clock far behind the last refill (set back) adds nothing, and the refill starts again from
        # its now: a clock set back must not stall the channel.
        elapsed = max(0.0, (now - row.refilled_at).total_seconds())
        return cls(channel, min(burst, stored + elapsed * rate), now, row.refilled_at > now)

    def spend(self, session: Session, count: int) -> None:
        """Take ``count`` tokens; nothing is written when none were taken (the stored state still holds)."""
        if count <= 0 and not self.set_back:
            return
        session.connection().execute(
            update(_rates)
            .where(_rates.c.channel == self.channel)
            .values(tokens=round(self.tokens - count, 3), refilled_at=self.refilled_at)
        )


# --- set-wise updates -----------------------------------------------------------------------------------
Source = Mapping[str, ColumnElement[Any]]


class BulkUpdate:
    """An UPDATE of many rows, each with values of its own (``id`` picks the row).

    ``build(source)`` makes the statement from the per-row values ``source[name]``: columns of
    ``unnest(:a_id, :a_…)`` on PostgreSQL, bound parameters of an executemany elsewhere.
    """

    def __init__(self, types: Mapping[str, TypeEngine[Any]], build: Callable[[Source], Update]) -> None:
        self._types = dict(types)
        self._build = build

    @cached_property
    def _unnest(self) -> Update:
        arrays = [bindparam(f'a_{name}', type_=ARRAY(kind)) for name, kind in self._types.items()]
        rows = func.unnest(*arrays).table_valued(*self._types).render_derived().alias('v')
        return self._build({name: rows.c[name] for name in self._types})

    @cached_property
    def _each(self) -> Update:
        return self._build({name: bindparam(f'b_{name}', type_=kind) for name, kind in self._types.items()})

    def execute(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        if connection.dialect.name == 'postgresql':
            connection.execute(self._unnest, {f'a_{n}': [row[n] for row in rows] for n in self._types})
        else:
            connection.execute(self._each, [{f'b_{n}': row[n] for n in self._types} for row in rows])


def _any_of(column: Any, values: Sequence[str]) -> ColumnElement[bool]:
    """``column IN (…)`` as plain comparisons (an executemany cannot expand a list)."""
    return or_(*(column == value for value in values))


_KEEP = [OutboxStatus.DELIVERED.value, OutboxStatus.FAILED.value]  # a delivery report came first
_OPEN = [OutboxStatus.SENDING.value, OutboxStatus.QUEUED.value]
_MASK = case((o.secret, MASKED_BODY), else_=o.body)  # the clear text of a secret ends here
_ID = Integer()
_TEXT = Text()
_MOMENT = UtcDateTime()

# Claimed: sending, one more attempt, leased until ``lease``.
SENDING = BulkUpdate(
    {'id': _ID, 'lease': _MOMENT},
    lambda v: (
        update(outbox)
        .where(o.id == v['id'])
        .values(status=OutboxStatus.SENDING.value, attempts=o.attempts + 1, not_before=v['lease'])
    ),
)
# Accepted by the gateway: sent (unless a delivery report came first), a secret's text masked.
ACCEPT = BulkUpdate(
    {'id': _ID, 'gateway_id': String(128), 'at': _MOMENT},
    lambda v: (
        update(outbox)
        .where(o.id == v['id'])
        .values(
            status=case((_any_of(o.status, _KEEP), o.status), else_=OutboxStatus.SENT.value),
            reason=case((_any_of(o.status, _KEEP), o.reason), else_=None),
            gateway_id=v['gateway_id'],
            sent_at=v['at'],
            body=_MASK,
        )
    ),
)
# A temporary failure: queued again after its backoff (unless another dispatcher settled it meanwhile).
RETRY = BulkUpdate(
    {'id': _ID, 'not_before': _MOMENT, 'reason': _TEXT},
    lambda v: (
        update(outbox)
        .where(o.id == v['id'], o.status == OutboxStatus.SENDING.value)
        .values(status=OutboxStatus.QUEUED.value, not_before=v['not_before'], reason=v['reason'])
    ),
)
# Refused by the gateway, or out of attempts: failed with the reason; a secret's text masked.
FAIL = BulkUpdate(
    {'id': _ID, 'reason': _TEXT, 'at': _MOMENT},
    lambda v: (
        update(outbox)
        .where(o.id == v['id'])
        .values(
            status=case((_any_of(o.status, _OPEN), OutboxStatus.FAILED.value), else_=o.status),
            reason=case((_any_of(o.status, _OPEN), v['reason']), else_=o.reason),
            finished_at=case((_any_of(o.status, _OPEN), v['at']), else_=o.finished_at),
            body=_MASK,
        )
    ),
)
# Held (queued until ``not_before``), refused by the law or expired; a final one's secret masked.
SETTLE = BulkUpdate(
    {
        'id': _ID,
        'status': String(16),
        'not_before': _MOMENT,
        'reason': _TEXT,
        'rule': String(32),
        'finished_at': _MOMENT,
        'final': Boolean(),
    },
    lambda v: (
        update(outbox)
        .where(o.id == v['id'])
        .values(
            status=v['status'],
            not_before=func.coalesce(v['not_before'], o.not_before),
            reason=v['reason'],
            rule=v['rule'],
            finished_at=v['finished_at'],
            body=case((v['final'] & o.secret, MASKED_BODY), else_=o.body),
        )
    ),
)
# The communication follows its message (the card's history and the 230-FZ ledger read it):
# its status (delivered stays), and the moment it counts at when given.
COMMUNICATION = BulkUpdate(
    {'id': _ID, 'status': String(16), 'started_at': _MOMENT},
    lambda v: (
        update(communications)
        .where(c.id == v['id'])
        .values(
            delivery_status=case(
                (c.delivery_status == OutboxStatus.DELIVERED.value, c.delivery_status), else_=v['status']
            ),
            started_at=func.coalesce(v['started_at'], c.started_at),
        )
    ),
)
# Sent: the moment it really went is the moment the ledger counts (a report that came first stays).
COMMUNICATION_SENT = BulkUpdate(
    {'id': _ID, 'status': String(16), 'started_at': _MOMENT},
    lambda v: (
        update(communications)
        .where(c.id == v['id'])
        .values(
            delivery_status=case((_any_of(c.delivery_status, _KEEP), c.delivery_status), else_=v['status']),
            started_at=v['started_at'],
        )
    ),
)


SETTLED_STATUS = {
    'held': OutboxStatus.QUEUED.value,
    'refused': OutboxStatus.REFUSED.value,
    'expired': OutboxStatus.EXPIRED.value,
}


@dataclass(frozen=True)
class Settled:
    """A row the claim decided on without sending it: held or refused by the law, or expired."""

    id: int
    borrower_id: int | None
    communication_id: int | None
    outcome: str  # held | refused | expired
    reason: str
    rule: str | None = None
    not_before: datetime | None = None


def write_settled(session: Session, settled: list[Settled], now: datetime) -> None:
    """Held, refused and expired rows with their communications and an attempt each, set-wise."""
    if not settled:
        return
    settled = sorted(settled, key=lambda s: s.id)
    connection = session.connection()
    SETTLE.execute(
        connection,
        [
            {
                'id': s.id,
                'status': SETTLED_STATUS[s.outcome],
                'not_before': s.not_before,
                'reason': s.reason,
                'rule': s.rule,
                'finished_at': None if s.outcome == 'held' else now,
                'final': s.outcome != 'held',
            }
            for s in settled
        ],
    )
    COMMUNICATION.execute(
        connection,
        [
            # a held message counts in the ledger when it will go
            {'id': s.communication_id, 'status': SETTLED_STATUS[s.outcome], 'started_at': s.not_before}
            for s in sorted(settled, key=lambda s: s.communication_id or 0)
            if s.communication_id is not None
        ],
    )
    insert_attempts(
        connection,
        [
            {'message_id': s.id, 'at': now, 'outcome': s.outcome, 'detail': s.reason, 'duration_ms': None}
            for s in settled
        ],
    )
