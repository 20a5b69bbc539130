"""The composition root: the one place that picks adapters, builds the services and runs their lifecycle.

``build(settings)`` picks every adapter from the settings (the embedded default when a variable is
unset); tests pass their own as keyword arguments — ``build(settings, engine=e, bus=RecordingBus(),
clock=SettableClock(...))`` — and every service is constructed with them, so nothing holds a stale one.
Nothing connects at build time. ``System.start`` starts the event consumer, the PBX simulator and every
background worker; ``System.stop`` stops them and closes the database pool; both may be called twice.

Pages and the API get ``System.services``, the use cases; never the engine or the session factory.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Protocol

from sqlalchemy import Engine

from crm.config import Settings
from crm.db.engine import make_engine, make_sessions
from crm.db.migrate import check_ready
from crm.domain.clock import Clock
from crm.domain.dashboard import parse_thresholds
from crm.domain.messages import Creditor
from crm.integrations.account import AccountSite, EmbeddedAccountSite
from crm.integrations.bureau import CreditBureau, DemoBureau
from crm.integrations.bus import EventBus, InProcessBus, UiHandler
from crm.integrations.chat_simulator import ChatSimulator
from crm.integrations.loan_system_simulator import LoanSystemSimulator
from crm.integrations.mail import Mailer, RecordingMailer
from crm.integrations.pbx_simulator import PbxSimulator
from crm.integrations.sms import RecordingSms, SmsGateway
from crm.services import call_events, chats, dashboard, mail_inbound, outbox, payments, products
from crm.services.api_tokens import ApiTokenService
from crm.services.audit import AuditService
from crm.services.audit_views import AuditViews
from crm.services.auth import AuthService
from crm.services.borrowers import BorrowerService
from crm.services.calls import CallService
from crm.services.chats import ChatService
from crm.services.compliance import ComplianceService
from crm.services.contact_records import ContactRecordService
from crm.services.credit_history import CreditHistoryService
from crm.services.dashboard import DashboardService
from crm.services.dashboard_thresholds import DashboardThresholdsService
from crm.services.erasure import ErasureService
from crm.services.field_visibility import FieldVisibilityService
from crm.services.health import HealthService
from crm.services.hiding import HidingService
from crm.services.inbound import InboundRouter, Route
from crm.services.mailing_worker import MailingWorker
from crm.services.mailings import MailingService
from crm.services.messaging import MessagingService
from crm.services.metrics import Metrics
from crm.services.notifier import Notifier
from crm.services.operator_day import OperatorDayService
from crm.services.operator_states import OperatorStateService, OperatorStateWorker
from crm.services.outbox_dispatcher import DispatchPolicy, OutboxDispatcher
from crm.services.outbox_views import OutboxService
from crm.services.portfolios import PortfolioService
from crm.services.products import ProductService, SaleSweeper
from crm.services.promises import PromiseChecker, PromiseRules, PromiseService
from crm.services.request_hooks import broken_promise_hook
from crm.services.request_views import RequestViews
from crm.services.requests import RequestService
from crm.services.result_codes import ResultCodeService
from crm.services.screen_pops import ScreenPopReads
from crm.services.sessions import SessionService
from crm.services.templates import TemplateService
from crm.services.user_groups import GroupService
from crm.services.users import UserService

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Services:
    """The use cases, as pages and the API see them."""

    clock: Clock
    auth: AuthService
    sessions: SessionService
    borrowers: BorrowerService
    audit: AuditService
    audit_views: AuditViews
    compliance: ComplianceService
    screen_pops: ScreenPopReads
    calls: CallService
    inbound: InboundRouter
    api_tokens: ApiTokenService
    result_codes: ResultCodeService
    outbox: OutboxService
    chats: ChatService
    templates: TemplateService
    messaging: MessagingService
    mailings: MailingService
    credit_history: CreditHistoryService
    promises: PromiseService
    requests: RequestService
    request_views: RequestViews  # «Обращения»: the list, its filters and CSV
    products: ProductService
    contact_records: ContactRecordService  # «Добавить запись»: notes, visits, letters, other phones
    operator_states: OperatorStateService  # Готов / Перерыв, forced breaks and logouts, presence
    users: UserService  # «Пользователи»: users, passwords, locks (admins); anyone's own password
    user_groups: GroupService  # groups of operators and their supervisors
    portfolios: PortfolioService  # «Портфель»: borrowers to operators, by hand or by rule (admins)
    hiding: HidingService  # hiding a communication or a note from operators (admins)
    erasure: ErasureService  # erasing a borrower's personal data on request, with an act (admins)
    dashboard: DashboardService  # «Мониторинг»: the day's figures, once per tick per process
    dashboard_thresholds: DashboardThresholdsService  # «Мониторинг»: «Пороги» of the rows' colours (admins)
    operator_day: OperatorDayService  # «Мониторинг»: an operator's contacts of today
    field_visibility: FieldVisibilityService  # «Видимость полей»: the matrix, reveal, the number to dial
    health: HealthService  # /healthz: the database and the bus, for HAProxy
    metrics: Metrics  # GET /metrics: statements sent, open dashboards, ticks, tabs (per process)
    pbx: PbxSimulator | None = None
    chat_simulator: ChatSimulator | None = None
    loan_system: LoanSystemSimulator | None = None  # the built-in loan system (CRM_LOAN_SYSTEM_SIMULATOR)


class Worker(Protocol):
    """A background worker (the mailing worker, the outbox dispatcher): a thread of its own."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


@dataclass(frozen=True)
class Gateways:
    """The outside systems messages go to: the real adapters, or the embedded ones that keep everything."""

    sms: SmsGateway
    mail: Mailer
    account: AccountSite
    bureau: CreditBureau

    def close(self) -> None:
        for gateway in (self.sms, self.mail, self.account, self.bureau):
            gateway.close()


class System:
    """Everything built from the settings, and when it runs."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        bus: EventBus,
        services: Services,
        gateways: Gateways,
        workers: Sequence[Worker] = (),
        dispatcher: OutboxDispatcher | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.bus = bus
        self.services = services
        self.gateways = gateways
        self.workers = tuple(workers)  # background workers: started after the bus, stopped before it
        self.dispatcher = dispatcher  # in workers when this process sends the outbox; run_once for tests
        self._lock = threading.Lock()
        self._started = False
        self._stopped = False

    def check_ready(self) -> None:
        """Raise DatabaseNotReady / BusUnavailable with one line naming the variable to fix."""
        check_ready(self.engine)
        if self.settings.amqp_url:
            from crm.integrations.rabbitmq import check_reachable

            check_reachable(self.settings.amqp_url)

    def start(self, on_ui: UiHandler, watched: Callable[[str], bool] | None = None) -> None:
        """Consume events (they go to the inbound router) and hand UI notifications to ``on_ui``;
        ``watched`` tells for which extensions this process has tabs (their pops are read with the call)."""
        with self._lock:
            if self._started:
                return
            self._started = True
            if watched is not None:
                self.services.screen_pops.watch(watched)
            self.bus.start(self.services.inbound.handle_deliveries, on_ui)
            if self.services.pbx is not None:
                self.services.pbx.attach()
            if self.services.chat_simulator is not None:
                self.services.chat_simulator.attach()
            if self.services.loan_system is not None:
                self.services.loan_system.attach()
            for worker in self.workers:
                worker.start()

    def stop(self, *, keep_engine: bool = False) -> None:
        """Stop the workers, the bus and the gateways; dispose of the engine unless the caller owns it
        (tests share one engine between the systems they build)."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            if self._started:
                for worker in reversed(self.workers):
                    worker.stop()
                self.bus.stop()
            if self.dispatcher is not None:  # its send threads, also when it was never started
                self.dispatcher.stop()
            self.gateways.close()
            if not keep_engine:
                self.engine.dispose()


def make_bus(settings: Settings) -> EventBus:
    if settings.amqp_url:
        from crm.integrations.rabbitmq import RabbitBus

        return RabbitBus(settings.amqp_url)
    return InProcessBus()


def make_gateways(
    settings: Settings,
    sms: SmsGateway | None = None,
    mail: Mailer | None = None,
    account: AccountSite | None = None,
    bureau: CreditBureau | None = None,
    *,
    clock: Clock | None = None,
) -> Gateways:
    """The given adapters, else the real ones the settings name (CRM_SMS_GATEWAY_URL, CRM_SMTP_URL,
    CRM_ACCOUNT_URL, CRM_BUREAU_URL), else the embedded ones."""
    if sms is None and settings.sms_gateway_url:
        from crm.integrations.sms_http import HttpSmsGateway

        sms = HttpSmsGateway(settings.sms_gateway_url, settings.sms_gateway_token)
    if mail is None and settings.smtp_url:
        from crm.integrations.mail_smtp import SmtpMailer

        mail = SmtpMailer(settings.smtp_url, settings.smtp_from)
    if account is None and settings.account_url:
        from crm.integrations.account_http import HttpAccountSite

        account = HttpAccountSite(settings.account_url)
    if bureau is None and settings.bureau_url:
        from crm.integrations.bureau_http import HttpBureau

        bureau = HttpBureau(settings.bureau_url)
    return Gateways(
        sms or RecordingSms(),
        mail or RecordingMailer(),
        account or EmbeddedAccountSite(),
        bureau or DemoBureau(clock or settings.clock()),
    )


def creditor_of(settings: Settings) -> Creditor:
    return Creditor(settings.creditor_name, settings.creditor_phone, settings.payment_url)


def build(
    settings: Settings,
    *,
    engine: Engine | None = None,
    bus: EventBus | None = None,
    clock: Clock | None = None,
    sms: SmsGateway | None = None,
    mail: Mailer | None = None,
    account: AccountSite | None = None,
    bureau: CreditBureau | None = None,
    dispatcher: bool | None = None,
) -> System:
    """Build every service with the given adapters, or the ones the settings name.

    ``dispatcher``: whether ``System.start`` runs the outbox dispatcher (default: the setting
    ``CRM_OUTBOX_DISPATCHER``); ``System.dispatcher`` is built either way, for ``run_once``.
    """
    engine = engine or make_engine(settings.database_url, statement_timeout_ms=settings.statement_timeout_ms)
    bus = bus or make_bus(settings)
    clock = clock or settings.clock()
    gateways = make_gateways(settings, sms, mail, account, bureau, clock=clock)
    sessions = make_sessions(engine, clock)
    call_limits = settings.call_limits()  # also the requests' calendar (their 15 working days)
    compliance = ComplianceService(
        sessions, call_limits, message_limits=settings.message_limits(), clock=clock
    )
    promise_rules = PromiseRules(
        share=settings.promise_kept_share,
        grace_days=settings.promise_grace_days,
        max_days=settings.promise_max_days,
    )
    calls = CallService(sessions, bus, compliance, clock=clock, promise_max_days=promise_rules.max_days)
    field_visibility = FieldVisibilityService(sessions, clock=clock)  # one per process: its cache
    borrowers = BorrowerService(sessions, compliance=compliance, clock=clock, visibility=field_visibility)
    screen_pops = ScreenPopReads(borrowers)
    # the three kinds of a call's events share one route: a mixed run of them is applied at once
    calls_events = Route(partial(call_events.calls_events, pops=screen_pops, limits=call_limits), batch=True)
    inbound = InboundRouter(
        sessions,
        Notifier(bus),
        {
            'telephony.call.incoming': calls_events,
            'telephony.call.answered': calls_events,
            'telephony.call.ended': calls_events,
            'chat.message.received': Route(partial(chats.chat_received, limits=call_limits), batch=True),
            'email.received': Route(partial(mail_inbound.email_received, limits=call_limits), batch=True),
            'sms.status': Route(outbox.sms_status),
            'loan.payment.received': Route(
                partial(payments.payment_received, rules=promise_rules), batch=True
            ),
            'product.sale.confirmed': Route(products.sale_decided),
            'product.sale.rejected': Route(products.sale_decided),
            'telephony.queue.status': Route(dashboard.queue_status),
        },
        clock=clock,
    )
    pbx = None
    if settings.pbx_simulator:
        pbx = PbxSimulator(bus, base_url=f'http://{settings.host}:{settings.port}', clock=clock)
    # the built-in chat system («Симулятор чата») comes with the built-in PBX: both are the demo's peers
    chat_simulator = ChatSimulator(bus, clock=clock) if settings.pbx_simulator else None
    promise_service = PromiseService(sessions, Notifier(bus), rules=promise_rules, clock=clock)
    services = Services(
        clock=clock,
        auth=AuthService(
            sessions,
            max_attempts=settings.login_attempts,
            lockout_minutes=settings.lockout_minutes,
            clock=clock,
        ),
        sessions=SessionService(
            sessions,
            idle=timedelta(minutes=settings.session_idle_minutes),
            max_age=timedelta(days=settings.session_max_days),
            clock=clock,
        ),
        borrowers=borrowers,
        field_visibility=field_visibility,
        health=HealthService(sessions, bus, instance=settings.instance),
        metrics=Metrics(),
        screen_pops=screen_pops,
        audit=AuditService(sessions),
        users=UserService(sessions, min_password_length=settings.password_min_length, clock=clock),
        user_groups=GroupService(sessions),
        portfolios=PortfolioService(sessions, clock=clock),
        hiding=HidingService(sessions, Notifier(bus), clock=clock),
        erasure=ErasureService(sessions, clock=clock),
        audit_views=AuditViews(sessions),
        compliance=compliance,
        calls=calls,
        inbound=inbound,
        api_tokens=ApiTokenService(sessions, settings.api_token, clock=clock),
        result_codes=ResultCodeService(sessions),
        chats=ChatService(
            sessions,
            bus,
            TemplateService(sessions, creditor_of(settings), clock=clock),
            creditor_of(settings),
            clock,
            limits=call_limits,
        ),
        templates=TemplateService(sessions, creditor_of(settings), clock=clock),
        messaging=MessagingService(
            sessions,
            compliance,
            gateways.account,
            creditor_of(settings),
            Notifier(bus),
            ttl=timedelta(hours=settings.outbox_ttl_hours),
            clock=clock,
        ),
        mailings=MailingService(
            sessions,
            compliance,
            creditor_of(settings),
            notifier=Notifier(bus),
            clock=clock,
            ttl=timedelta(hours=settings.outbox_ttl_hours),
            visibility=field_visibility,
        ),
        outbox=OutboxService(
            sessions, clock, notifier=Notifier(bus), ttl=timedelta(hours=settings.outbox_ttl_hours)
        ),
        credit_history=CreditHistoryService(sessions, gateways.bureau, clock=clock),
        promises=promise_service,
        operator_day=OperatorDayService(sessions, clock=clock),
        dashboard=DashboardService(
            sessions,
            promise_service,
            clock=clock,
            service_level_s=settings.service_level_s,
            thresholds=parse_thresholds(settings.dashboard_thresholds),
            tick_s=settings.dashboard_tick_s,
        ),
        dashboard_thresholds=DashboardThresholdsService(
            sessions, parse_thresholds(settings.dashboard_thresholds), clock=clock
        ),
        requests=RequestService(sessions, Notifier(bus), limits=call_limits, clock=clock),
        request_views=RequestViews(sessions, limits=call_limits, clock=clock),
        products=ProductService(sessions, bus, Notifier(bus), clock=clock),
        contact_records=ContactRecordService(
            sessions, compliance, Notifier(bus), clock=clock, promise_max_days=promise_rules.max_days
        ),
        operator_states=OperatorStateService(sessions, Notifier(bus), clock=clock),
        pbx=pbx,
        chat_simulator=chat_simulator,
        loan_system=LoanSystemSimulator(bus, delay_s=settings.loan_system_delay_s)
        if settings.loan_system_simulator
        else None,
    )
    outbox_dispatcher = OutboxDispatcher(
        sessions,
        sms=gateways.sms,
        mail=gateways.mail,
        compliance=compliance,
        notifier=Notifier(bus),
        policy=dispatch_policy(settings),
        clock=clock,
    )
    workers: list[Worker] = [
        MailingWorker(
            sessions,
            compliance,
            creditor_of(settings),
            Notifier(bus),
            clock=clock,
            ttl=timedelta(hours=settings.outbox_ttl_hours),
        )
    ]
    broken = broken_promise_hook(Notifier(bus), limits=call_limits)  # «Нарушено обещание» requests
    workers.append(
        PromiseChecker(sessions, Notifier(bus), rules=promise_rules, clock=clock, on_closed=broken)
    )
    workers.append(SaleSweeper(sessions, bus, clock=clock))  # sends a lost product.sale.requested again
    workers.append(  # the wrap-up and offline time-outs, in every process (SKIP LOCKED)
        OperatorStateWorker(
            sessions,
            Notifier(bus),
            clock=clock,
            wrap_up_timeout_s=settings.wrap_up_timeout_s,
            offline_after_s=settings.offline_after_s,
        )
    )
    sends_outbox = settings.outbox_dispatcher if dispatcher is None else dispatcher
    if sends_outbox:
        workers.append(outbox_dispatcher)
    return System(settings, engine, bus, services, gateways, workers, outbox_dispatcher)


def dispatch_policy(settings: Settings) -> DispatchPolicy:
    return DispatchPolicy(
        rates={'sms': settings.sms_per_second, 'email': settings.emails_per_second},
        max_attempts=settings.outbox_max_attempts,
        lease=timedelta(seconds=settings.outbox_lease_s),
        sms_sender=settings.sms_sender,
        mail_from=settings.smtp_from,
    )
