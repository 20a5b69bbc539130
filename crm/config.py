"""Settings from CRM_* environment variables. Reading them does no I/O beyond the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

VAR_DIR = Path(os.environ.get('CRM_VAR_DIR', 'var'))


def _default_database_url() -> str:
    return f'sqlite:///{VAR_DIR / "crm.sqlite3"}'


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value == '':
        return default
    return value.strip().lower() in {'1', 'true', 'yes', 'on'}


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

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
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
        )

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
