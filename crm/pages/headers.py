"""Security headers on every HTTP response (pages, API, static files).

- the CRM may not be framed by another site (clickjacking): ``X-Frame-Options`` and CSP
  ``frame-ancestors``; NiceGUI's pages use inline scripts and styles, so the policy restricts framing only;
- ``X-Content-Type-Options: nosniff``: a browser takes a response for what it says it is;
- ``Referrer-Policy: same-origin``: addresses carry search queries (phones, passports) and must not
  leave the site in a Referer header.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b'x-frame-options', b'DENY'),
    (b'content-security-policy', b"frame-ancestors 'none'"),
    (b'x-content-type-options', b'nosniff'),
    (b'referrer-policy', b'same-origin'),
)


class SecurityHeaders:
    """A plain ASGI middleware (WebSocket traffic passes untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope['type'] != 'http':
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message['type'] == 'http.response.start':
                present = {name.lower() for name, _ in message.get('headers', [])}
                extra = [(name, value) for name, value in HEADERS if name not in present]
                message = {**message, 'headers': [*message.get('headers', []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
