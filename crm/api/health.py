"""``GET /healthz``: whether this process can serve, for HAProxy's ``option httpchk`` and monitoring.

Open without login and without a token: it tells only "ok"/"fail" per part and the process's name in
the cluster — no personal data, no error text. 200 when the database and the bus are fine, else 503.
"""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from crm.bootstrap import Services

PATH = '/healthz'
TIMEOUT_S = 3.0  # HAProxy's check times out after 5 s (deploy/haproxy.cfg.j2): answer before that

Part = Literal['ok', 'fail']


class HealthOut(BaseModel):
    status: Part
    database: Part
    bus: Part
    process: str


def install(app: FastAPI, services: Services) -> None:
    health = services.health

    @app.get(PATH, response_model=HealthOut, responses={503: {'model': HealthOut}}, tags=['Operations'])
    async def healthz() -> JSONResponse:
        """200 when this process reaches the database (``SELECT 1``) and the bus is connected; 503 naming
        the part that failed otherwise."""
        try:
            database = await asyncio.wait_for(run_in_threadpool(health.database), TIMEOUT_S)
        except TimeoutError:
            database = False
        bus = health.bus()
        answer = HealthOut(
            status='ok' if database and bus else 'fail',
            database='ok' if database else 'fail',
            bus='ok' if bus else 'fail',
            process=health.process,
        )
        return JSONResponse(
            answer.model_dump(),
            status_code=200 if answer.status == 'ok' else 503,
            headers={'Cache-Control': 'no-store'},
        )
