"""Bearer tokens for the HTTP API: created and revoked by an administrator, kept only as SHA-256."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crm.db.models import ApiToken, User
from crm.domain import Role
from crm.domain.actor import Actor
from crm.domain.clock import Clock, system_clock
from crm.domain.errors import NotFound, ServiceError
from crm.services import audit

SCOPES = {
    'events': 'События и поиск (АТС, чат, SMS-шлюз)',
    'lookup': 'Только поиск заёмщиков',
}
_TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is a hint; don't write on every request


@dataclass(frozen=True)
class TokenInfo:
    id: int | None  # None for the bootstrap token from CRM_API_TOKEN
    name: str
    prefix: str
    scope: str
    created_at: datetime | None
    created_by: str | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    def allows(self, scope: str) -> bool:
        return self.scope == 'events' or self.scope == scope


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiTokenService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        bootstrap_token: str | None = None,
        *,
        clock: Clock = system_clock,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._bootstrap = bootstrap_token

    def create(self, actor: Actor, name: str, scope: str) -> tuple[str, TokenInfo]:
        """A new token: the plain text is returned this once and never stored."""
        actor.require(Role.ADMIN)
        name = name.strip()
        if not name:
            raise ServiceError('Укажите, для какой системы токен')
        if scope not in SCOPES:
            raise ServiceError('Выберите права токена')
        plain = 'crm_' + secrets.token_urlsafe(32)
        with self._sessions.begin() as session:
            row = ApiToken(
                name=name[:100],
                prefix=plain[:12],
                token_hash=_digest(plain),
                scope=scope,
                created_by=actor.id,
                created_at=self._clock(),
            )
            session.add(row)
            session.flush()
            audit.record(session, 'api_token.create', user_id=actor.id, token_id=row.id, name=row.name)
            return plain, self._info(row, actor.login)

    def revoke(self, actor: Actor, token_id: int) -> None:
        actor.require(Role.ADMIN)
        with self._sessions.begin() as session:
            row = session.get(ApiToken, token_id)
            if row is None:
                raise NotFound('Токен не найден')
            if row.revoked_at is None:
                row.revoked_at = self._clock()
                audit.record(session, 'api_token.revoke', user_id=actor.id, token_id=row.id, name=row.name)

    def list(self, actor: Actor) -> list[TokenInfo]:
        actor.require(Role.ADMIN)
        with self._sessions() as session:
            rows = session.execute(
                select(ApiToken, User.login)
                .outerjoin(User, User.id == ApiToken.created_by)
                .order_by(ApiToken.revoked_at.is_not(None), ApiToken.created_at.desc())
            ).all()
            return [self._info(row, login) for row, login in rows]

    def authenticate(self, token: str) -> TokenInfo | None:
        """The token's info if it is valid and not revoked, else None."""
        if not token:
            return None
        if self._bootstrap and hmac.compare_digest(token, self._bootstrap):
            return TokenInfo(None, 'CRM_API_TOKEN', token[:4] + '…', 'events', None, None, None, None)
        now = self._clock()
        with self._sessions.begin() as session:
            row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token)))
            if row is None or row.revoked_at is not None:
                return None
            if row.last_used_at is None or now - row.last_used_at > _TOUCH_EVERY:
                row.last_used_at = now
            return self._info(row, None)

    @staticmethod
    def _info(row: ApiToken, created_by: str | None) -> TokenInfo:
        return TokenInfo(
            id=row.id,
            name=row.name,
            prefix=row.prefix,
            scope=row.scope,
            created_at=row.created_at,
            created_by=created_by,
            revoked_at=row.revoked_at,
            last_used_at=row.last_used_at,
        )
