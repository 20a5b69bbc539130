"""Settings from CRM_* environment variables. Reading them does no I/O beyond the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from pathlib import Path

from crm.domain.clock import Clock, RunningClock, system_clock
from crm.domain.contact_rules import CallLimits

VAR_DIR = Path(os.environ.get('CRM_VAR_DIR', 'var'))


def _default_database_url() -> str:
    return f'sqlite:///{VAR_DIR / "crm.sqlite3"}'


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value == '':
        return default
    return value.strip().lower() in {'1', 'true', 'yes', 'on'}


def _hours(text: str, name: str) -> tuple[time, time]:
    try:
        start, end = (time.fromisoformat(part.strip()) for part in text.split('-'))
    except ValueError:
        raise ValueError(f'{name}: expected HH:MM-HH:MM, got {text!r}') from None
    return start, end


def _dates(text: str, name: str) -> frozenset[date]:
    try:
        return frozenset(date.fromisoformat(part.strip()) for part in text.split(',') if part.strip())
    except ValueError:
        raise ValueError(f'{name}: expected comma-separated YYYY-MM-DD dates, got {text!r}') from None


# CRM_* values that win over the process environment in ``Settings.from_env()``. For an app started in
# the test process (NiceGUI's ``user`` fixture): tests put their settings here, because changing
# os.environ (setenv) while other threads run is not thread-safe in glibc and crashed a run.
ENV_OVERRIDES: dict[str, str] = {}


@dataclass(frozen=True)
class Settings:
    database_url: str = field(default_factory=_default_database_url)
    amqp_url: str | None = None
    smtp_url: str | None = None
    sms_gateway_url: str | None = None
    bureau_url: str | None = None
    port: int = 8080
    host: str = '127.0.0.1'
    demo: bool = True
    secret: str | None = None
    login_attempts: int = 5
    lockout_minutes: int = 15
    password_min_length: int = 10  # the password policy (crm/domain/password_policy.py)
    api_token: str | None = None
    pbx_simulator: bool = True
    calls_per_day: int = 1
    calls_per_week: int = 2
    calls_per_month: int = 8
    call_hours_weekday: str = '08:00-22:00'
    call_hours_weekend: str = '09:00-20:00'
    extra_holidays: str = ''
    extra_workdays: str = ''
    clock_start: str = ''
    statement_timeout_ms: int = 5000
    session_idle_minutes: int = 30
    session_max_days: int = 14
    sms_gateway_token: str | None = None
    sms_sender: str = 'DEMOZAIM'
    smtp_from: str = 'Демо Займ <noreply@demozaim.ru>'
    account_url: str | None = None
    # every message to a debtor names the creditor and gives a contact phone (230-FZ since 01.09.2025)
    creditor_name: str = 'ООО МКК «Демо Займ»'
    creditor_phone: str = '8 800 555-35-35'
    payment_url: str = 'https://pay.demozaim.ru/'
    messages_per_day: int = 2
    messages_per_week: int = 4
    messages_per_month: int = 16
    sms_per_second: float = 100.0  # the cluster's rate per channel (a token bucket in the database)
    emails_per_second: float = 20.0
    outbox_max_attempts: int = 8
    outbox_ttl_hours: int = 72  # a message not sent by then expires (held ones wait for the law's window)
    outbox_lease_s: float = 60.0  # a claimed row is due again after this if its process died mid-send
    outbox_dispatcher: bool = True  # this process sends the outbox (any number of processes may)
    promise_kept_share: float = 1.0  # a promise is kept when payments reach this share of its amount
    promise_grace_days: int = 1  # payments up to this many days after the promised date still count
    promise_max_days: int = 30  # a promise may be due at most this many days ahead
    loan_system_simulator: bool = True  # the built-in loan system confirms sales (embedded default)
    loan_system_delay_s: float = 2.0  # how long the built-in loan system takes to answer
    quiet_hours_every_call: bool = True  # the 230-FZ hours bind calls without overdue debt too
    wrap_up_timeout_s: float = 120.0  # Постобработка ends after this long without a saved result
    offline_after_s: float = 60.0  # an operator none of whose tabs was seen this long is Не в сети
    dashboard_tick_s: float = 2.0  # «Мониторинг»: how often each process re-reads the figures
    service_level_s: int = 20  # «Мониторинг»: an inbound call answered within this many seconds is in time
    dashboard_thresholds: str = ''  # «Мониторинг»: state:a/b/c,… seconds (crm/domain/dashboard.py)
    instance: str = ''  # this process's name in a cluster (nodeK); /healthz tells it

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ | ENV_OVERRIDES if env is None else env)
        return cls(
            database_url=env.get('CRM_DATABASE_URL') or _default_database_url(),
            amqp_url=env.get('CRM_AMQP_URL') or None,
            smtp_url=env.get('CRM_SMTP_URL') or None,
            sms_gateway_url=env.get('CRM_SMS_GATEWAY_URL') or None,
            bureau_url=env.get('CRM_BUREAU_URL') or None,
            port=int(env.get('CRM_PORT') or 8080),
            host=env.get('CRM_HOST') or '127.0.0.1',
            demo=_flag(env.get('CRM_DEMO'), True),
            secret=env.get('CRM_SECRET') or None,
            api_token=env.get('CRM_API_TOKEN') or None,
            password_min_length=int(env.get('CRM_PASSWORD_MIN_LENGTH') or 10),
            pbx_simulator=_flag(env.get('CRM_PBX_SIMULATOR'), _flag(env.get('CRM_DEMO'), True)),
            calls_per_day=int(env.get('CRM_CALLS_PER_DAY') or 1),
            calls_per_week=int(env.get('CRM_CALLS_PER_WEEK') or 2),
            calls_per_month=int(env.get('CRM_CALLS_PER_MONTH') or 8),
            call_hours_weekday=env.get('CRM_CALL_HOURS_WEEKDAY') or '08:00-22:00',
            call_hours_weekend=env.get('CRM_CALL_HOURS_WEEKEND') or '09:00-20:00',
            extra_holidays=env.get('CRM_EXTRA_HOLIDAYS') or '',
            extra_workdays=env.get('CRM_EXTRA_WORKDAYS') or '',
            clock_start=env.get('CRM_CLOCK_START') or '',
            statement_timeout_ms=int(env.get('CRM_STATEMENT_TIMEOUT_MS') or 5000),
            session_idle_minutes=int(env.get('CRM_SESSION_IDLE_MINUTES') or 30),
            session_max_days=int(env.get('CRM_SESSION_MAX_DAYS') or 14),
            sms_gateway_token=env.get('CRM_SMS_GATEWAY_TOKEN') or None,
            sms_sender=env.get('CRM_SMS_SENDER') or cls.sms_sender,
            smtp_from=env.get('CRM_SMTP_FROM') or cls.smtp_from,
            account_url=env.get('CRM_ACCOUNT_URL') or None,
            creditor_name=env.get('CRM_CREDITOR_NAME') or cls.creditor_name,
            creditor_phone=env.get('CRM_CREDITOR_PHONE') or cls.creditor_phone,
            payment_url=env.get('CRM_PAYMENT_URL') or cls.payment_url,
            messages_per_day=int(env.get('CRM_MESSAGES_PER_DAY') or 2),
            messages_per_week=int(env.get('CRM_MESSAGES_PER_WEEK') or 4),
            messages_per_month=int(env.get('CRM_MESSAGES_PER_MONTH') or 16),
            sms_per_second=float(env.get('CRM_SMS_PER_SECOND') or 100),
            emails_per_second=float(env.get('CRM_EMAILS_PER_SECOND') or 20),
            outbox_max_attempts=int(env.get('CRM_OUTBOX_MAX_ATTEMPTS') or 8),
            outbox_ttl_hours=int(env.get('CRM_OUTBOX_TTL_HOURS') or 72),
            outbox_lease_s=float(env.get('CRM_OUTBOX_LEASE_S') or 60),
            outbox_dispatcher=_flag(env.get('CRM_OUTBOX_DISPATCHER'), True),
            promise_kept_share=float(env.get('CRM_PROMISE_KEPT_SHARE') or 1.0),
            promise_grace_days=int(env.get('CRM_PROMISE_GRACE_DAYS') or 1),
            promise_max_days=int(env.get('CRM_PROMISE_MAX_DAYS') or 30),
            loan_system_simulator=_flag(
                env.get('CRM_LOAN_SYSTEM_SIMULATOR'), _flag(env.get('CRM_DEMO'), True)
            ),
            loan_system_delay_s=float(env.get('CRM_LOAN_SYSTEM_DELAY_S') or 2.0),
            quiet_hours_every_call=_flag(env.get('CRM_QUIET_HOURS_EVERY_CALL'), True),
            wrap_up_timeout_s=float(env.get('CRM_WRAP_UP_TIMEOUT_S') or 120),
            offline_after_s=float(env.get('CRM_OFFLINE_AFTER_S') or 60),
            dashboard_tick_s=float(env.get('CRM_DASHBOARD_TICK_S') or 2.0),
            service_level_s=int(env.get('CRM_SERVICE_LEVEL_S') or 20),
            dashboard_thresholds=env.get('CRM_DASHBOARD_THRESHOLDS') or '',
            instance=env.get('CRM_INSTANCE') or '',
        )

    def call_limits(self) -> CallLimits:
        """230-FZ limits for outgoing calls; the defaults are the legal values."""
        weekday_start, weekday_end = _hours(self.call_hours_weekday, 'CRM_CALL_HOURS_WEEKDAY')
        weekend_start, weekend_end = _hours(self.call_hours_weekend, 'CRM_CALL_HOURS_WEEKEND')
        return CallLimits(
            per_day=self.calls_per_day,
            per_week=self.calls_per_week,
            per_month=self.calls_per_month,
            weekday_start=weekday_start,
            weekday_end=weekday_end,
            weekend_start=weekend_start,
            weekend_end=weekend_end,
            extra_holidays=_dates(self.extra_holidays, 'CRM_EXTRA_HOLIDAYS'),
            extra_workdays=_dates(self.extra_workdays, 'CRM_EXTRA_WORKDAYS'),
            quiet_hours_for_every_call=self.quiet_hours_every_call,
        )

    def message_limits(self) -> CallLimits:
        """230-FZ limits for messages about overdue debt: their own counts, the calls' hours."""
        return replace(
            self.call_limits(),
            per_day=self.messages_per_day,
            per_week=self.messages_per_week,
            per_month=self.messages_per_month,
        )

    def clock(self) -> Clock:
        """The system clock, or with CRM_CLOCK_START a clock that starts at that moment and runs on
        (a training room replaying a working day, an end-to-end test at a known hour)."""
        if not self.clock_start:
            return system_clock
        try:
            start = datetime.fromisoformat(self.clock_start)
        except ValueError:
            raise ValueError(
                f'CRM_CLOCK_START: expected an ISO 8601 moment, got {self.clock_start!r}'
            ) from None
        return RunningClock(start)

    def storage_secret(self) -> str:
        """CRM_SECRET, or a random secret generated once and kept under ./var."""
        if self.secret:
            return self.secret
        path = VAR_DIR / 'secret'
        if not path.exists():
            import secrets

            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()
