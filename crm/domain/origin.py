"""Where an act comes from («откуда» in the audit log): the client address of the browser or API request.

A context variable, so the services' ``audit.record`` calls stay as they are: the login middleware and
the HTTP API set it per request, ``crm.pages.off_loop.service`` per page action (a click arrives over the
page's websocket, not as a request), and it travels into worker threads with the context. The address is
the ASGI client address: behind a load balancer that is the balancer unless the server is told to trust
its X-Forwarded-For (uvicorn's ``forwarded_allow_ips``), which then rewrites the client address.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

MAX_ADDRESS = 64

_address: ContextVar[str | None] = ContextVar('crm_acting_from', default=None)


def current_address() -> str | None:
    """The address of the request this code acts for, None for a worker or the bus."""
    return _address.get()


def set_address(address: str | None) -> None:
    """For the rest of this context (one request's task): acts come from ``address``."""
    _address.set(address[:MAX_ADDRESS] if address else None)


@contextmanager
def acting_from(address: str | None) -> Iterator[None]:
    """Acts inside the block come from ``address``; the previous value is back after it."""
    token = _address.set(address[:MAX_ADDRESS] if address else None)
    try:
        yield
    finally:
        _address.reset(token)
