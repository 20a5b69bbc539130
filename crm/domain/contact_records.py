"""Contacts an operator records by hand («Добавить запись»): what each kind needs, and which of them the
230-FZ ledger counts (pure).

A record documents what already happened outside the CRM's telephony and messaging: a note, a personal
meeting, a letter, a call made or taken on another phone. Recording is not permission: a contact that
broke a rule is recorded all the same, with a warning (``visit_problem`` here; calls through the calls
ledger's verdict in ``crm.services.contact_records``).

- A note is never counted and takes no result.
- A call on another phone that reached the borrower is a telephone interaction (art. 7 part 3 p. 3):
  ``call_other`` is in the calls ledger beside the CRM's ``call_out``.
- A personal meeting that reached the borrower is a direct interaction (art. 7 part 3 p. 2): at most one
  a week (the borrower's calendar ISO week), in the permitted hours; refused outright while the borrower
  has a legal status.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from crm.domain.contact_rules import CallLimits, allowed_hours, is_day_off

MAX_AGE = timedelta(days=30)  # a contact older than this is not recorded by hand
MAX_COMMENT = 4000
VISITS_PER_WEEK = 1  # 230-FZ art. 7 part 3 p. 2: personal meetings not more than once a week


class ResultNeed(StrEnum):
    REQUIRED = 'required'
    OPTIONAL = 'optional'
    NONE = 'none'


@dataclass(frozen=True)
class RecordKind:
    """One kind of hand-made record: its channel (``CHANNEL_LABELS``), direction and whether it needs a
    result; ``interaction``: a reached one is a direct interaction in the sense of 230-FZ."""

    channel: str
    direction: str
    result: ResultNeed
    interaction: bool


RECORD_KINDS: dict[str, RecordKind] = {
    kind.channel: kind
    for kind in (
        RecordKind('note', 'out', ResultNeed.NONE, interaction=False),
        RecordKind('visit', 'out', ResultNeed.REQUIRED, interaction=True),
        RecordKind('call_other', 'out', ResultNeed.REQUIRED, interaction=True),
        RecordKind('call_in_other', 'in', ResultNeed.REQUIRED, interaction=False),
        RecordKind('letter', 'out', ResultNeed.OPTIONAL, interaction=False),
    )
}

# Outgoing calls the calls ledger counts when they reached the borrower: the CRM's own, and those made on
# another phone and recorded by hand.
COUNTED_CALL_CHANNELS = ('call_out', 'call_other')


def visit_problem(
    *, at: datetime, timezone: str, overdue: bool, visits: Iterable[datetime], limits: CallLimits
) -> str | None:
    """What a personal meeting at ``at`` broke (Russian), or None. ``visits``: the borrower's other
    meetings that reached them (aware). The hours bind as for calls; the weekly limit, overdue debt only."""
    zone = ZoneInfo(timezone)
    local = at.astimezone(zone)
    if overdue or limits.quiet_hours_for_every_call:
        start, end = allowed_hours(local.date(), limits)
        if not start <= local.time() < end:
            day_kind = 'выходной день' if is_day_off(local.date(), limits) else 'рабочий день'
            return (
                f'Тихие часы 230-ФЗ: встреча в {local:%H:%M} по местному времени ({day_kind}), '
                f'допустимо с {start:%H:%M} до {end:%H:%M}'
            )
    if not overdue:
        return None
    week = local.isocalendar()[:2]
    same_week = sorted(v.astimezone(zone) for v in visits if v.astimezone(zone).isocalendar()[:2] == week)
    if len(same_week) >= VISITS_PER_WEEK:
        return (
            f'Лимит 230-ФЗ: не более {VISITS_PER_WEEK} личной встречи в неделю '
            f'(уже была {same_week[-1]:%d.%m в %H:%M} по местному времени)'
        )
    return None
