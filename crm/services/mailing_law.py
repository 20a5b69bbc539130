"""The 230-FZ message rules for a mailing's borrowers at once: at queue time and in «Проверить сегмент».

The rule (``check_outgoing_message``) is a pure function of (time zone, overdue or not, legal flags,
counted messages) at one moment, so ``LawCheck`` decides equal inputs once: a segment of 100,000
borrowers, most with no counted message in the last month, needs a few thousand verdicts, not 100,000 —
and every one of them is the per-borrower rule. A message the law holds waits for the next allowed
moment; one with no allowed moment (a legal flag), or none before it would expire, is refused.

The ledger of a whole segment is read with one statement (``segment_ledger``: the ledger's conditions
of ``compliance.counted_messages`` over a semi-join to the segment), a batch's by its ids.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, false, select
from sqlalchemy.orm import Session

from crm.db.models import Borrower, Communication
from crm.domain.contact_rules import (
    RULE_LABELS,
    CallLimits,
    LegalFlag,
    allowed_hours,
    check_outgoing_message,
)
from crm.domain.messages import NOT_SENT, MessageChannel, OutboxStatus
from crm.services.compliance import LEDGER_DAYS, counted_messages
from crm.services.segments import (
    FLAG_COLUMNS,
    NO_ADDRESS,
    Segment,
    flags_of,
    segment_conditions,
    segment_query,
    usable_address,
)

_borrowers = cast(Table, Borrower.__table__)
_communications = cast(Table, Communication.__table__)
LEDGER_CHUNK = 5000  # borrower ids per ledger query (PostgreSQL binds at most 65,535 parameters)
TEXT_RULE = 'text'  # a message refused for its text (a template error, no creditor in it), not by the law
TEXT_RULE_LABEL = 'Ошибка в тексте'


@dataclass(frozen=True)
class Decision:
    """What the law makes of one message now: queue it (``not_before`` None: at once) or refuse it."""

    status: OutboxStatus
    not_before: datetime | None = None
    reason: str | None = None
    rule: str | None = None
    today: bool = True  # it goes (or would go) on the borrower's current local day

    @property
    def held(self) -> bool:
        return self.status is OutboxStatus.QUEUED and self.not_before is not None


ALLOWED = Decision(OutboxStatus.QUEUED)


@dataclass(frozen=True)
class _Zone:
    """A time zone at the check's moment: its local day, week, month, and whether the window is open."""

    zone: ZoneInfo
    today: date
    monday: date
    month: tuple[int, int]
    open: bool

    @classmethod
    def at(cls, timezone: str, now: datetime, limits: CallLimits) -> _Zone:
        zone = ZoneInfo(timezone)
        local = now.astimezone(zone)
        start, end = allowed_hours(local.date(), limits)
        return cls(
            zone=zone,
            today=local.date(),
            monday=local.date() - timedelta(days=local.weekday()),
            month=(local.year, local.month),
            open=start <= local.time().replace(tzinfo=None) < end,
        )


@dataclass
class LawCheck:
    """The 230-FZ verdicts of one moment for many borrowers, each equal inputs decided once.

    A message the law holds waits for ``next_allowed_at``; one with no allowed moment (a legal flag), or
    none before the message would expire (``ttl`` from now), is refused.
    """

    limits: CallLimits
    now: datetime
    ttl: timedelta
    _memo: dict[tuple[Any, ...], Decision] = field(default_factory=dict)
    _zones: dict[str, _Zone] = field(default_factory=dict)

    def decide(
        self, timezone: str, overdue: bool, flags: tuple[LegalFlag, ...], counted: Sequence[datetime]
    ) -> Decision:
        if counted and overdue and not flags and self._under_limits(timezone, counted):
            return ALLOWED  # what the rule says, found without working out a reason it does not need
        key = (timezone, overdue, flags, tuple(counted))
        decision = self._memo.get(key)
        if decision is None:
            decision = self._memo[key] = self._decide(timezone, overdue, flags, counted)
        return decision

    def _under_limits(self, timezone: str, counted: Sequence[datetime]) -> bool:
        """Inside the window now, with room in the day, the week and the month: the rule allows it.

        (The same local calendar periods as ``contact_rules``: the borrower's day, ISO week, month.)
        """
        zone = self._zones.get(timezone)
        if zone is None:
            zone = self._zones[timezone] = _Zone.at(timezone, self.now, self.limits)
        if not zone.open:
            return False
        day = week = month = 0
        for moment in counted:
            local = moment.astimezone(zone.zone).date()
            day += local == zone.today
            week += local - timedelta(days=local.weekday()) == zone.monday
            month += (local.year, local.month) == zone.month
        return day < self.limits.per_day and week < self.limits.per_week and month < self.limits.per_month

    def _decide(
        self, timezone: str, overdue: bool, flags: tuple[LegalFlag, ...], counted: Sequence[datetime]
    ) -> Decision:
        verdict = check_outgoing_message(
            now=self.now,
            timezone=timezone,
            overdue=overdue,
            flags=flags,
            sent_messages=counted,
            limits=self.limits,
        )
        if verdict.allowed:
            return ALLOWED
        moment = verdict.next_allowed_at
        if moment is None:
            return Decision(OutboxStatus.REFUSED, reason=verdict.reason, rule=verdict.rule)
        if moment > self.now + self.ttl:
            hours = int(self.ttl.total_seconds() // 3600)
            reason = f'{verdict.reason}. Раньше, чем истечёт срок сообщения ({hours} ч), отправить нельзя'
            return Decision(OutboxStatus.REFUSED, reason=reason, rule=verdict.rule)
        zone = ZoneInfo(timezone)
        today = moment.astimezone(zone).date() == self.now.astimezone(zone).date()
        return Decision(OutboxStatus.QUEUED, moment, verdict.reason, verdict.rule, today)


def ledger_of(session: Session, borrower_ids: Collection[int], now: datetime) -> dict[int, list[datetime]]:
    """The counted messages of these borrowers (``counted_messages``, in chunks of bounded size)."""
    ids = list(borrower_ids)
    since = now - timedelta(days=LEDGER_DAYS)
    found: dict[int, list[datetime]] = {}
    for start in range(0, len(ids), LEDGER_CHUNK):
        found |= counted_messages(session, ids[start : start + LEDGER_CHUNK], since)
    return found


@dataclass(frozen=True)
class RuleCount:
    rule: str
    label: str
    count: int


def rule_counts(counter: Counter[str]) -> tuple[RuleCount, ...]:
    """By count, largest first; labels from ``RULE_LABELS`` (and ``TEXT_RULE``)."""
    ordered = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
    return tuple(RuleCount(rule, rule_label(rule), count) for rule, count in ordered)


def rule_label(rule: str | None) -> str:
    if rule is None:
        return '—'
    return TEXT_RULE_LABEL if rule == TEXT_RULE else RULE_LABELS.get(rule, rule)


@dataclass(frozen=True)
class SegmentPreview:
    """«Проверить сегмент»: how many borrowers, how many reachable, and what the law makes of them now."""

    channel: MessageChannel
    in_segment: int
    no_address: int  # borrowers without a mobile phone (SMS) or an e-mail: not queued
    allowed_now: int
    held_today: int  # held by quiet hours or a limit, allowed later on the borrower's local day
    held_later: int  # held until a later day (a limit, or the evening's quiet hours)
    held: tuple[RuleCount, ...]
    refused: tuple[RuleCount, ...]  # a legal flag, or no allowed moment before the message expires

    @property
    def with_address(self) -> int:
        return self.in_segment - self.no_address

    @property
    def allowed_today(self) -> int:
        return self.allowed_now + self.held_today

    @property
    def no_address_label(self) -> str:
        return NO_ADDRESS[self.channel]


def segment_ledger(session: Session, segment: Segment, now: datetime) -> dict[int, list[datetime]]:
    """The counted messages of the segment's overdue borrowers without a legal flag (the only ones the
    message limits apply to), in one statement: ``counted_messages``'s conditions over a semi-join."""
    b, c = _borrowers.c, _communications.c
    counted_for = select(b.id).where(
        *segment_conditions(segment, now),
        b.days_past_due > 0,
        *(b[name].is_(false()) for name in FLAG_COLUMNS),
    )
    rows = session.connection().execute(
        select(c.borrower_id, c.started_at).where(
            c.borrower_id.in_(counted_for),
            c.collection.is_(True),
            c.started_at >= now - timedelta(days=LEDGER_DAYS),
            c.delivery_status.is_(None) | c.delivery_status.not_in(sorted(NOT_SENT)),
        )
    )
    found: dict[int, list[datetime]] = {}
    for borrower_id, started_at in rows:
        found.setdefault(borrower_id, []).append(started_at)
    return found


def preview_segment(
    session: Session, segment: Segment, channel: MessageChannel, law: LawCheck
) -> SegmentPreview:
    """Two statements — the segment with the addresses, its ledger — and the verdicts here."""
    rows = session.execute(segment_query(segment, channel, law.now, joined=True)).all()
    reachable = [row for row in rows if usable_address(channel, row.address) is not None]
    flags = {row.id: flags_of(row) for row in reachable}
    ledger = segment_ledger(session, segment, law.now)
    held: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    allowed = today = later = 0
    for row in reachable:
        decision = law.decide(row.timezone, row.days_past_due > 0, flags[row.id], ledger.get(row.id, ()))
        if decision.status is OutboxStatus.REFUSED:
            refused[decision.rule or TEXT_RULE] += 1
        elif not decision.held:
            allowed += 1
        else:
            held[decision.rule or ''] += 1
            today, later = (today + 1, later) if decision.today else (today, later + 1)
    return SegmentPreview(
        channel=channel,
        in_segment=len(rows),
        no_address=len(rows) - len(reachable),
        allowed_now=allowed,
        held_today=today,
        held_later=later,
        held=rule_counts(held),
        refused=rule_counts(refused),
    )
