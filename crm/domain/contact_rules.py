"""230-FZ rules for an outgoing call or message by the creditor to a borrower about overdue debt (pure).

Federal Law 230-FZ (art. 7) limits when and how often a creditor may call a borrower about overdue
debt, and how often it may send text messages (SMS, e-mail, messengers). The CRM applies it as follows
(messages: the same rules with their own limits, ``MESSAGE_LIMITS``, and only messages counted):

- Time. ``now`` and every reached call are aware datetimes (UTC); all reasoning happens in the
  borrower's local time (an IANA zone, e.g. ``Asia/Yekaterinburg``), never the operator's.
- Legal flags. Any flag on the borrower blocks the call entirely, whatever the debt: refusal of
  interaction and interaction only through a representative (art. 8), bankruptcy, in-patient
  treatment / legal incapacity / disability of group I (art. 7). There is no moment when it becomes
  allowed (``next_allowed_at`` is None) until the flag is removed.
- No overdue debt. The counting limits below govern the collection of overdue debt only. The quiet
  hours apply to every outgoing call, overdue or not (``CallLimits.quiet_hours_for_every_call``, on by
  default: nobody is called at 02:00 about a payment that is not even late); messages without overdue
  debt are free of both (a payment reminder is not collection).
- Quiet hours. On working days calls only from 08:00 to 22:00 local time, on days off (Saturdays,
  Sundays and public holidays) from 09:00 to 20:00; the start is inclusive, the end exclusive. Public
  holidays are Jan 1–8, Feb 23, Mar 8, May 1, May 9, Jun 12 and Nov 4, plus the transfers of the
  government's production calendar (``extra_holidays``), minus the days made working by a transfer
  (``extra_workdays``, which win). Unanswered attempts are bound by the quiet hours too.
- Frequency. The law limits «непосредственное взаимодействие», so only calls that REACHED the
  borrower count; an attempt nobody answered is not an interaction. Periods are calendar periods in
  the borrower's local time: the calendar day, the ISO week (Monday to Sunday) and the calendar month.
  A call is refused when the current day already has ``per_day`` reached calls (default 1), or the
  week ``per_week`` (2), or the month ``per_month`` (8). The reason names the widest limit reached
  (month over week over day) and the local time of the last counted call in that period.
- Order. Flags first, then quiet hours, then limits: the reason is the first rule that refuses. The
  ``next_allowed_at`` of a refusal is the earliest moment at which every rule allows the call: the
  next window start on a day whose day, week and month all have room (so a daily refusal on a
  Friday with the weekly limit also reached points to Monday, and a day off starts at 09:00).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

# Fixed public holidays (month, day): Labour Code art. 112.
PUBLIC_HOLIDAYS: frozenset[tuple[int, int]] = frozenset(
    {(1, day) for day in range(1, 9)} | {(2, 23), (3, 8), (5, 1), (5, 9), (6, 12), (11, 4)}
)
_MAX_STEPS = 5000  # how many periods to step forward looking for a free one before giving up


@dataclass(frozen=True)
class CallLimits:
    """Limits on outgoing calls about overdue debt; the defaults are the legal values."""

    per_day: int = 1
    per_week: int = 2
    per_month: int = 8
    weekday_start: time = time(8, 0)
    weekday_end: time = time(22, 0)
    weekend_start: time = time(9, 0)
    weekend_end: time = time(20, 0)
    extra_holidays: frozenset[date] = frozenset()  # transfers from the government's production calendar
    extra_workdays: frozenset[date] = frozenset()  # Saturdays made working days by a transfer
    quiet_hours_for_every_call: bool = True  # the hours bind calls without overdue debt too


# Text messages about overdue debt (art. 7 part 5): 2 a day, 4 a week, 16 a month; the same hours.
MESSAGE_LIMITS = CallLimits(per_day=2, per_week=4, per_month=16)


class LegalFlag(StrEnum):
    """A legal state of the borrower that forbids calls altogether."""

    CONTACT_REFUSED = 'contact_refused'  # отказ от взаимодействия (230-FZ art. 8)
    REPRESENTATIVE_ONLY = 'representative_only'  # взаимодействие только через представителя (адвоката)
    BANKRUPT = 'bankrupt'  # признан банкротом / процедура банкротства
    INCAPACITATED = 'incapacitated'  # на стационарном лечении, недееспособен, инвалид I группы


LEGAL_FLAG_LABELS: dict[LegalFlag, str] = {
    LegalFlag.CONTACT_REFUSED: 'Отказ от взаимодействия',
    LegalFlag.REPRESENTATIVE_ONLY: 'Взаимодействие только через представителя',
    LegalFlag.BANKRUPT: 'Банкротство',
    LegalFlag.INCAPACITATED: 'Стационар, недееспособность или инвалидность I группы',
}

FLAG_REASONS: dict[LegalFlag, str] = {
    LegalFlag.CONTACT_REFUSED: 'Звонки запрещены: заёмщик отказался от взаимодействия (230-ФЗ, ст. 8)',
    LegalFlag.REPRESENTATIVE_ONLY: (
        'Звонки запрещены: взаимодействие только через представителя заёмщика (230-ФЗ, ст. 8)'
    ),
    LegalFlag.BANKRUPT: 'Звонки запрещены: заёмщик признан банкротом или в процедуре банкротства',
    LegalFlag.INCAPACITATED: (
        'Звонки запрещены: заёмщик на стационарном лечении, недееспособен или инвалид I группы '
        '(230-ФЗ, ст. 7)'
    ),
}


class ContactKind(StrEnum):
    CALL = 'call'
    MESSAGE = 'message'


# The words of the reasons: what is forbidden, what may be done in the window, «не более N …».
_FORBIDDEN = {ContactKind.CALL: 'Звонки запрещены', ContactKind.MESSAGE: 'Сообщения запрещены'}
_MAY = {ContactKind.CALL: 'звонить можно', ContactKind.MESSAGE: 'отправлять сообщения можно'}
_NOUNS = {ContactKind.CALL: ('звонка', 'звонков'), ContactKind.MESSAGE: ('сообщения', 'сообщений')}
_LAST = {ContactKind.CALL: ('был', 'последний'), ContactKind.MESSAGE: ('было', 'последнее')}

# What refused a contact (``Verdict.rule``): a legal flag's value, or one of these.
QUIET_HOURS = 'quiet_hours'
LIMIT_RULES = {'day': 'limit_day', 'week': 'limit_week', 'month': 'limit_month'}
RULE_LABELS: dict[str, str] = {
    **{flag.value: LEGAL_FLAG_LABELS[flag] for flag in LegalFlag},
    QUIET_HOURS: 'Тихие часы',
    'limit_day': 'Лимит в сутки',
    'limit_week': 'Лимит в неделю',
    'limit_month': 'Лимит в месяц',
}


@dataclass(frozen=True)
class Verdict:
    """Whether the contact may be made now; if not, why (Russian), by which rule (``RULE_LABELS``) and
    from when (aware UTC, None if never)."""

    allowed: bool
    reason: str | None = None
    next_allowed_at: datetime | None = None
    rule: str | None = None


def is_day_off(day: date, limits: CallLimits) -> bool:
    """Saturday, Sunday or a public holiday, after the production calendar's transfers."""
    if day in limits.extra_workdays:
        return False
    if day in limits.extra_holidays:
        return True
    return day.weekday() >= 5 or (day.month, day.day) in PUBLIC_HOLIDAYS


def allowed_hours(day: date, limits: CallLimits) -> tuple[time, time]:
    """The local call window of that day: start inclusive, end exclusive."""
    if is_day_off(day, limits):
        return limits.weekend_start, limits.weekend_end
    return limits.weekday_start, limits.weekday_end


def check_outgoing_call(
    *,
    now: datetime,
    timezone: str,
    overdue: bool,
    flags: Iterable[LegalFlag],
    reached_calls: Iterable[datetime],
    limits: CallLimits = CallLimits(),  # frozen, so sharing the default is safe
) -> Verdict:
    """May the creditor call the borrower now? See the module docstring for the rules."""
    return check_contact(
        ContactKind.CALL,
        now=now,
        timezone=timezone,
        overdue=overdue,
        flags=flags,
        counted=reached_calls,
        limits=limits,
    )


def check_outgoing_message(
    *,
    now: datetime,
    timezone: str,
    overdue: bool,
    flags: Iterable[LegalFlag],
    sent_messages: Iterable[datetime],
    limits: CallLimits = MESSAGE_LIMITS,
) -> Verdict:
    """May the creditor send the borrower a message about the debt now? ``sent_messages``: the counted
    messages already sent (or queued to be sent), when."""
    return check_contact(
        ContactKind.MESSAGE,
        now=now,
        timezone=timezone,
        overdue=overdue,
        flags=flags,
        counted=sent_messages,
        limits=limits,
    )


def check_contact(
    kind: ContactKind,
    *,
    now: datetime,
    timezone: str,
    overdue: bool,
    flags: Iterable[LegalFlag],
    counted: Iterable[datetime],
    limits: CallLimits,
) -> Verdict:
    _require_aware(now)
    present = set(flags)
    for flag in LegalFlag:  # a stable order whatever the caller passed
        if flag in present:
            refusal = FLAG_REASONS[flag].replace(_FORBIDDEN[ContactKind.CALL], _FORBIDDEN[kind], 1)
            return Verdict(allowed=False, reason=refusal, rule=flag.value)
    hours_bind = overdue or (kind is ContactKind.CALL and limits.quiet_hours_for_every_call)
    if not hours_bind:
        return Verdict(allowed=True)

    zone = ZoneInfo(timezone)
    local_now = _to_local(now, zone)
    # the counting limits are about overdue debt only
    contacts = sorted(_to_local(_require_aware(moment), zone) for moment in counted) if overdue else []

    rule: str | None = QUIET_HOURS
    reason = _quiet_hours_reason(kind, local_now, limits)
    if reason is None and overdue:
        rule, reason = _limit_reason(kind, local_now, contacts, limits)
    if reason is None:
        return Verdict(allowed=True)
    found = _earliest_allowed(local_now, contacts, limits)
    next_allowed_at = None if found is None else _to_utc(found, zone)
    return Verdict(allowed=False, reason=reason, next_allowed_at=next_allowed_at, rule=rule)


def _require_aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f'Ожидалось время с часовым поясом (UTC), получено {moment!r}')
    return moment


def _to_local(moment: datetime, zone: ZoneInfo) -> datetime:
    """Naive local wall-clock time."""
    return moment.astimezone(zone).replace(tzinfo=None)


def _to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    return local.replace(tzinfo=zone).astimezone(UTC)


def _in_window(local: datetime, limits: CallLimits) -> bool:
    start, end = allowed_hours(local.date(), limits)
    return start <= local.time() < end


def _quiet_hours_reason(kind: ContactKind, local: datetime, limits: CallLimits) -> str | None:
    if _in_window(local, limits):
        return None
    start, end = allowed_hours(local.date(), limits)
    day_kind = 'выходной день' if is_day_off(local.date(), limits) else 'рабочий день'
    return (
        f'Тихие часы 230-ФЗ: у заёмщика {local:%H:%M} ({day_kind}), '
        f'{_MAY[kind]} с {start:%H:%M} до {end:%H:%M} по местному времени'
    )


def _week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _next_month_start(day: date) -> date:
    return date(day.year + 1, 1, 1) if day.month == 12 else date(day.year, day.month + 1, 1)


def _periods(day: date, calls: list[datetime]) -> list[tuple[str, list[datetime], date]]:
    """(period, its reached calls, the start of the next period) for the day, week and month of day."""
    monday = _week_start(day)
    return [
        ('day', [c for c in calls if c.date() == day], day + timedelta(days=1)),
        ('week', [c for c in calls if _week_start(c.date()) == monday], monday + timedelta(days=7)),
        ('month', [c for c in calls if (c.year, c.month) == (day.year, day.month)], _next_month_start(day)),
    ]


def _limit_of(period: str, limits: CallLimits) -> int:
    return {'day': limits.per_day, 'week': limits.per_week, 'month': limits.per_month}[period]


def _noun(kind: ContactKind, count: int) -> str:
    """Genitive after «не более N»: 1 звонка, 2 звонков, 21 звонка; 1 сообщения, 2 сообщений."""
    one, many = _NOUNS[kind]
    return one if count % 10 == 1 and count % 100 != 11 else many


_PERIOD_WORDS = {'day': 'в сутки', 'week': 'в неделю', 'month': 'в месяц'}


def _limit_reason(
    kind: ContactKind, local: datetime, contacts: list[datetime], limits: CallLimits
) -> tuple[str | None, str | None]:
    """(rule, reason) of the widest limit reached now, or (None, None) when every period has room."""
    for period, counted, _ in reversed(_periods(local.date(), contacts)):
        limit = _limit_of(period, limits)
        if len(counted) < limit:
            continue
        rule = LIMIT_RULES[period]
        head = f'Лимит 230-ФЗ: не более {limit} {_noun(kind, limit)} {_PERIOD_WORDS[period]}'
        if not counted:
            return rule, f'{head} ({_FORBIDDEN[kind].lower()} настройкой)'
        last = counted[-1]
        was, latest = _LAST[kind]
        if len(counted) == 1:
            return rule, f'{head} (уже {was} {last:%d.%m в %H:%M} по местному времени)'
        return rule, f'{head} (уже {len(counted)}, {latest} {last:%d.%m в %H:%M} по местному времени)'
    return None, None


def _earliest_allowed(local: datetime, calls: list[datetime], limits: CallLimits) -> datetime | None:
    """The first local moment from local on that is within the window and under every limit."""
    if min(limits.per_day, limits.per_week, limits.per_month) <= 0:
        return None
    candidate = local
    for _ in range(_MAX_STEPS):
        day = candidate.date()
        start, end = allowed_hours(day, limits)
        candidate = max(candidate, datetime.combine(day, start))
        if candidate.time() >= end:  # an empty window (start not before end) in the configuration
            candidate = datetime.combine(day + timedelta(days=1), time.min)
            continue
        periods = _periods(day, calls)
        blocked = [nxt for period, counted, nxt in periods if len(counted) >= _limit_of(period, limits)]
        if not blocked:
            return candidate
        candidate = datetime.combine(max(blocked), time.min)
    return None
