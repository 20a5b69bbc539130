"""The one place that builds the services and picks adapters from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from crm.config import Settings
from crm.db.engine import make_engine, make_sessions
from crm.services.audit import AuditService
from crm.services.auth import AuthService
from crm.services.borrowers import BorrowerService


@dataclass
class Services:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    auth: AuthService
    borrowers: BorrowerService
    audit: AuditService

    def close(self) -> None:
        self.engine.dispose()


def build(settings: Settings, **overrides: object) -> Services:
    """Build every service; keyword overrides replace a piece (tests pass in-memory adapters)."""
    engine = overrides.pop('engine', None) or make_engine(settings.database_url)
    sessions = make_sessions(engine)
    services = Services(
        settings=settings,
        engine=engine,
        sessions=sessions,
        auth=AuthService(
            sessions, max_attempts=settings.login_attempts, lockout_minutes=settings.lockout_minutes
        ),
        borrowers=BorrowerService(sessions),
        audit=AuditService(sessions),
    )
    for name, value in overrides.items():
        if not hasattr(services, name):
            raise TypeError(f'unknown service {name!r}')
        setattr(services, name, value)
    return services
