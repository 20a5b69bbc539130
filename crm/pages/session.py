"""The logged-in user of a browser session (crm.services.sessions), and the middleware that keeps pages
behind login."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.responses import PlainTextResponse, RedirectResponse
from nicegui import ui
from starlette.concurrency import run_in_threadpool
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.types import ASGIApp

from crm.domain import Role
from crm.domain.actor import Actor
from crm.domain.origin import acting_from
from crm.services.sessions import SessionService

TO_WHOM = {Role.OPERATOR: 'сотрудникам', Role.SUPERVISOR: 'руководителю группы', Role.ADMIN: 'администратору'}
COOKIE = 'crm_session'
PASSWORD_PATH = '/password'
# what a user who must change their password may still open
PASSWORD_PATHS = (PASSWORD_PATH, '/logout')
OPEN_PATHS = ('/login', '/_nicegui', '/api/', '/favicon.ico', '/healthz', '/metrics')  # /metrics: its token
# The HTTP API's description: administrators only (it maps the attack surface; integrators get it from
# an administrator or docs/integrations.md).
ADMIN_PATHS = ('/docs', '/redoc', '/openapi.json')


def safe_redirect(target: str | None) -> str:
    """Only a relative path on this site: '/borrower/5' stays; 'https://x', '//x', '/\\x' become '/'."""
    if not target or not target.startswith('/') or target.startswith('//') or '\\' in target:
        return '/'
    if any(ord(c) < 32 for c in target):
        return '/'
    return target


class AuthMiddleware(BaseHTTPMiddleware):
    """Sends a browser without a live session to the login page, remembering where it was going.

    The acting user of a request is left in ``request.state.actor`` for the page, and its client address
    in ``crm.domain.origin`` for the audit log.
    """

    def __init__(self, app: ASGIApp, sessions: SessionService) -> None:
        super().__init__(app)
        self._sessions = sessions

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        # every request, the API's and the login's too: what it audits comes from this client address
        with acting_from(request.client.host if request.client else None):
            return await self._dispatch(request, call_next)

    async def _dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        path = request.url.path
        if path.startswith(OPEN_PATHS):
            return await call_next(request)
        actor = await run_in_threadpool(self._sessions.resolve, request.cookies.get(COOKIE))
        if actor is None:
            target = path + (f'?{request.url.query}' if request.url.query else '')
            response = RedirectResponse(f'/login?redirect_to={quote(target, safe="")}')
            response.delete_cookie(COOKIE, path='/')
            return response
        if actor.must_change_password and not path.startswith(PASSWORD_PATHS):
            target = path + (f'?{request.url.query}' if request.url.query else '')
            return RedirectResponse(f'{PASSWORD_PATH}?redirect_to={quote(target, safe="")}')
        if path.startswith(ADMIN_PATHS) and actor.role != Role.ADMIN:
            return PlainTextResponse('Описание API доступно только администратору', status_code=403)
        request.state.actor = actor
        return await call_next(request)


def set_session_cookie(response: Response, request: Request, token: str, max_age_s: int) -> None:
    """HttpOnly, same-site, and Secure whenever the browser came over TLS (directly or through HAProxy)."""
    secure = request.url.scheme == 'https' or request.headers.get('x-forwarded-proto') == 'https'
    response.set_cookie(
        COOKIE, token, max_age=max_age_s, path='/', httponly=True, samesite='lax', secure=secure
    )


def session_token() -> str | None:
    """The session cookie of the page this code runs for."""
    return ui.context.client.request.cookies.get(COOKIE)


def current_actor() -> Actor | None:
    """The acting user of this page, as the login middleware found it (re-read from the database, so a
    deactivated account or an ended session is out at once)."""
    return getattr(ui.context.client.request.state, 'actor', None)


RefusalPage = Callable[[Actor, str], None]
_refusal_page: list[RefusalPage] = []  # set once by register_pages: the frame lives above this module


def draw_refusals_with(draw: RefusalPage) -> None:
    """How a page refused to a role is drawn (inside the normal frame, with a way back)."""
    _refusal_page[:] = [draw]


def page_actor(*roles: Role) -> Actor | None:
    """The guard of every page: the logged-in user if their role may see it (any role if none given).

    Sends a browser without a session to the login page, and tells a user whose role may not see the
    page so; in both cases the page draws nothing else (None).
    """
    actor = current_actor()
    if actor is None:
        ui.navigate.to('/login')
        return None
    if roles and actor.role not in roles:
        whom = ' и '.join(TO_WHOM[role] for role in roles)
        text = f'Раздел доступен только {whom}'
        if _refusal_page:
            _refusal_page[0](actor, text)
        else:
            ui.label(text).classes('text-lg m-8')
        return None
    return actor
