"""``GET /metrics``: this process's counters and gauges in Prometheus' text format, for scraping.

Behind the HTTP API's bearer token (``CRM_API_TOKEN`` or one made on «API-токены»): 401 without it. The
figures are per process — a cluster is scraped process by process, like ``/healthz``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from crm.bootstrap import Services
from crm.services.metrics import Sample

PATH = '/metrics'
CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'
bearer = HTTPBearer(auto_error=False, description='The HTTP API token (CRM_API_TOKEN or «API-токены»)')


def exposition(samples: list[Sample]) -> str:
    """Prometheus' text format: HELP, TYPE and the value of each sample."""
    lines: list[str] = []
    for sample in samples:
        help_text = sample.help.replace('\\', '\\\\').replace('\n', '\\n')
        value = int(sample.value) if sample.value.is_integer() else sample.value
        lines += [
            f'# HELP {sample.name} {help_text}',
            f'# TYPE {sample.name} {sample.kind}',
            f'{sample.name} {value}',
        ]
    return '\n'.join(lines) + '\n'


def install(app: FastAPI, services: Services) -> None:
    def token(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        if credentials is None or services.api_tokens.authenticate(credentials.credentials) is None:
            raise HTTPException(
                status_code=401,
                detail='Missing or invalid bearer token',
                headers={'WWW-Authenticate': 'Bearer'},
            )

    @app.get(
        PATH,
        response_class=PlainTextResponse,
        responses={401: {}},
        tags=['Operations'],
        dependencies=[Depends(token)],
    )
    def metrics() -> PlainTextResponse:
        """Counters and gauges of this process: SQL statements sent, open dashboards, dashboard ticks,
        connected tabs."""
        return PlainTextResponse(
            exposition(services.metrics.samples()),
            media_type=CONTENT_TYPE,
            headers={'Cache-Control': 'no-store'},
        )
