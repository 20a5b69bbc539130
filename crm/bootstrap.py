"""The one place that builds the services and picks adapters from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from crm.config import Settings
from crm.db.engine import make_engine, make_sessions
from crm.integrations.bus import EventBus, InProcessBus
from crm.integrations.pbx_simulator import PbxSimulator
from crm.services.api_tokens import ApiTokenService
from crm.services.audit import AuditService
from crm.services.auth import AuthService
from crm.services.borrowers import BorrowerService
from crm.services.calls import CallService
from crm.services.compliance import ComplianceService
from crm.services.result_codes import ResultCodeService


@dataclass
class Services:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    bus: EventBus
    auth: AuthService
    borrowers: BorrowerService
    audit: AuditService
    compliance: ComplianceService
    calls: CallService
    api_tokens: ApiTokenService
    result_codes: ResultCodeService
    pbx: PbxSimulator | None = None

    def close(self) -> None:
        self.engine.dispose()


def make_bus(settings: Settings) -> EventBus:
    if settings.amqp_url:
        from crm.integrations.rabbitmq import RabbitBus

        return RabbitBus(settings.amqp_url)
    return InProcessBus()


def build(settings: Settings, **overrides: object) -> Services:
    """Build every service; keyword overrides replace a piece (tests pass in-memory adapters)."""
    engine = overrides.pop('engine', None) or make_engine(settings.database_url)
    bus = overrides.pop('bus', None) or make_bus(settings)
    sessions = make_sessions(engine)
    compliance = ComplianceService(sessions, settings.call_limits())
    services = Services(
        settings=settings,
        engine=engine,
        sessions=sessions,
        bus=bus,
        auth=AuthService(
            sessions, max_attempts=settings.login_attempts, lockout_minutes=settings.lockout_minutes
        ),
        borrowers=BorrowerService(sessions),
        audit=AuditService(sessions),
        compliance=compliance,
        calls=CallService(sessions, bus, compliance),
        api_tokens=ApiTokenService(sessions, settings.api_token),
        result_codes=ResultCodeService(sessions),
        pbx=PbxSimulator(bus, base_url=f'http://{settings.host}:{settings.port}')
        if settings.pbx_simulator
        else None,
    )
    for name, value in overrides.items():
        if not hasattr(services, name):
            raise TypeError(f'unknown service {name!r}')
        setattr(services, name, value)
    return services
