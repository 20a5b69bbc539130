"""Who is acting: passed into every service call that depends on rights."""

from __future__ import annotations

from dataclasses import dataclass

from crm.domain import ROLE_LABELS, Role
from crm.domain.errors import AccessDenied


@dataclass(frozen=True)
class Actor:
    id: int
    login: str
    full_name: str
    role: Role
    extension: str | None = None
    # an administrator reset the password: every page but /password and /logout is closed until it changes
    must_change_password: bool = False

    @property
    def role_label(self) -> str:
        return ROLE_LABELS[self.role]

    @property
    def sees_everyone(self) -> bool:
        return self.role in (Role.SUPERVISOR, Role.ADMIN)

    def require(self, *roles: Role) -> None:
        if self.role not in roles:
            raise AccessDenied()
