"""The logged-in user of a browser session, and the middleware that keeps pages behind login."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import app, ui
from starlette.middleware.base import BaseHTTPMiddleware

from crm.domain import Role
from crm.domain.actor import Actor
from crm.pages.off_loop import service
from crm.services.auth import AuthService

TO_WHOM = {Role.OPERATOR: 'сотрудникам', Role.SUPERVISOR: 'руководителю группы', Role.ADMIN: 'администратору'}
OPEN_PATHS = ('/login', '/_nicegui', '/api/', '/docs', '/openapi.json', '/favicon.ico')


def safe_redirect(target: str | None) -> str:
    """Only a relative path on this site: '/borrower/5' stays; 'https://x', '//x', '/\\x' become '/'."""
    if not target or not target.startswith('/') or target.startswith('//') or '\\' in target:
        return '/'
    if any(ord(c) < 32 for c in target):
        return '/'
    return target


class AuthMiddleware(BaseHTTPMiddleware):
    """Sends a browser without a session to the login page, remembering where it was going."""

    async def dispatch(self, request: Request, call_next):
        path = request.url.path
        if not app.storage.user.get('user_id') and not path.startswith(OPEN_PATHS):
            target = path + (f'?{request.url.query}' if request.url.query else '')
            return RedirectResponse(f'/login?redirect_to={quote(target, safe="")}')
        return await call_next(request)


def log_in(actor: Actor) -> None:
    app.storage.user.update(user_id=actor.id, login=actor.login)


def log_out() -> None:
    app.storage.user.clear()


async def current_actor(auth: AuthService) -> Actor | None:
    """The acting user, re-read from the database so a deactivated account is out at once."""
    user_id = app.storage.user.get('user_id')
    if not user_id:
        return None
    actor = await service(auth.actor, user_id)
    if actor is None:
        log_out()
    return actor


async def page_actor(auth: AuthService, *roles: Role) -> Actor | None:
    """The guard of every page: the logged-in user if their role may see it (any role if none given).

    Sends a browser without a session to the login page, and tells a user whose role may not see the
    page so; in both cases the page draws nothing else (None).
    """
    actor = await current_actor(auth)
    if actor is None:
        ui.navigate.to('/login')
        return None
    if roles and actor.role not in roles:
        whom = ' и '.join(TO_WHOM[role] for role in roles)
        ui.label(f'Раздел доступен только {whom}').classes('text-lg m-8')
        return None
    return actor
