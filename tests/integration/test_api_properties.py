"""Property tests of the HTTP API (schemathesis over its own OpenAPI schema): no input makes a server error.

Hypothesis draws requests from each operation's schema — valid ones and, with schemathesis' negative
mode, invalid ones — a bounded number per operation to stay inside CI's time; with a token (to reach what
lies behind the door) and without (where everything must be 401).
"""

from __future__ import annotations

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from crm import bootstrap
from crm.api import routes
from crm.config import Settings
from crm.integrations.bus import RecordingBus

TOKEN = 'schemathesis-token'
EXAMPLES = 120
OPEN = {'GET /healthz'}  # HAProxy's health check: no token (tests/integration/test_health.py)


@pytest.fixture(scope='module')
def api_schema(database_url):
    from crm.db.engine import make_engine

    engine = make_engine(database_url)
    system = bootstrap.build(
        Settings(database_url=database_url, api_token=TOKEN), engine=engine, bus=RecordingBus()
    )
    app = FastAPI()
    routes.install(app, system.services)
    yield schemathesis.openapi.from_asgi('/openapi.json', app)
    engine.dispose()


def operations(schema, mode: GenerationMode = GenerationMode.POSITIVE, *, open_ones: bool = True):
    """The operations to draw requests for; in negative mode only those with an input to make invalid."""
    found = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in found} >= {'POST /api/v1/events', 'GET /api/v1/borrowers', *OPEN}
    if mode is GenerationMode.NEGATIVE:
        found = [op for op in found if list(op.iter_parameters()) or op.get_request_payload_content_types()]
    return [op for op in found if open_ones or op.label not in OPEN]


@pytest.mark.parametrize('mode', [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=['valid', 'invalid'])
def test_no_request_with_a_token_makes_a_server_error(api_schema, mode) -> None:
    for operation in operations(api_schema, mode):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        def call(case) -> None:
            case.call_and_validate(headers={'Authorization': f'Bearer {TOKEN}'}, checks=[not_a_server_error])

        call()


def test_without_a_token_every_request_is_401(api_schema) -> None:
    for operation in operations(api_schema, GenerationMode.NEGATIVE, open_ones=False):

        @given(case=operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
        @settings(max_examples=EXAMPLES // 2, deadline=None, suppress_health_check=list(HealthCheck))
        def call(case) -> None:
            response = case.call()
            assert response.status_code == 401, (case.method, case.path, response.status_code)

        call()
