"""HTTP API under /api/v1 for the PBX, chat, SMS gateway and other systems (contract in SPEC).

Thin: authenticate the bearer token, hand the body to a service, shape the answer. Handlers are
plain ``def`` so FastAPI runs them in its thread pool, off the event loop.
"""

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from crm.api import health, metrics
from crm.api.message_schemas import MessageIn, MessageQueued, invalid, refused_by_law
from crm.bootstrap import Services
from crm.domain import Role, status_label
from crm.domain.actor import Actor
from crm.domain.errors import BadQuery, NotFound, ServiceError
from crm.domain.field_visibility import API, birth_date_text
from crm.domain.origin import set_address
from crm.services.api_tokens import TokenInfo
from crm.services.event_schemas import EVENT_TYPES, BadEvent
from crm.services.messaging import BadMessage, RefusedByLaw

MAX_BODY = 64 * 1024  # an event is a few hundred bytes; a chat message at most 10,000 characters
bearer = HTTPBearer(
    auto_error=False, description='A token made on the «API-токены» admin page or CRM_API_TOKEN'
)


class Accepted(BaseModel):
    status: str  # accepted | duplicate
    type: str


class LoanOut(BaseModel):
    number: str
    product: str
    status: str
    overdue_amount: float
    days_past_due: int


class BorrowerOut(BaseModel):
    """A borrower as the API's row of «Видимость полей» shows it: a masked field masked ('**.**.1985',
    '+7 928 ***-**-77', '60 ** ***212'), a hidden one null (phones: empty)."""

    pin: str
    full_name: str
    birth_date: str | None  # ISO date; masked: '**.**.YYYY'
    city: str
    phones: list[str]
    passport: str | None
    loans: list[LoanOut]


class BorrowerList(BaseModel):
    items: list[BorrowerOut]


def unprocessable(field: str | None, message: str) -> JSONResponse:
    """422 in FastAPI's own shape, naming the field."""
    location = ['body', *field.split('.')] if field else ['body']
    return JSONResponse(
        status_code=422, content={'detail': [{'loc': location, 'msg': message, 'type': 'value_error'}]}
    )


async def _json_body(request: Request) -> Any:
    """The request's JSON, read only up to MAX_BODY bytes (413 past that, 422 if it is not JSON)."""
    declared = request.headers.get('content-length')
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
        raise HTTPException(status_code=413, detail=f'The body is limited to {MAX_BODY} bytes')
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise HTTPException(status_code=413, detail=f'The body is limited to {MAX_BODY} bytes')
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # not UTF-8, not JSON, or nested too deep
        raise HTTPException(
            status_code=422,
            detail=[{'loc': ['body'], 'msg': 'the body must be a JSON object', 'type': 'json_invalid'}],
        ) from None


async def acting_from_client(request: Request) -> None:
    """What a call audits comes from its client address (crm.domain.origin); set in the request's own
    task, so the handler and the threads it hands work to see it."""
    set_address(request.client.host if request.client else None)


def build_router(services: Services) -> APIRouter:
    router = APIRouter(prefix='/api/v1', tags=['CRM API'], dependencies=[Depends(acting_from_client)])

    def token(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> TokenInfo:
        info = services.api_tokens.authenticate(credentials.credentials) if credentials else None
        if info is None:
            raise HTTPException(
                status_code=401,
                detail='Missing or invalid bearer token',
                headers={'WWW-Authenticate': 'Bearer'},
            )
        return info

    @router.post(
        '/events',
        status_code=202,
        response_model=Accepted,
        responses={401: {}, 403: {}, 413: {}, 422: {}},
        openapi_extra={'requestBody': {'required': True, 'content': {'application/json': _EVENT_SCHEMA}}},
    )
    async def post_event(request: Request, info: Annotated[TokenInfo, Depends(token)]) -> Any:
        """Accept an event (the same ones as on the AMQP exchange crm.events, with "type" = routing key).

        202 once its effect is committed; a repeat of the same call_id / message_id is answered 202
        with status "duplicate" and has no second effect. The token is checked before the body is read;
        a body over 64 KiB is refused with 413 unread.
        """
        if not info.allows('events'):
            raise HTTPException(status_code=403, detail='This token may only look borrowers up')
        body = await _json_body(request)
        if not isinstance(body, dict):
            return unprocessable(None, 'the body must be a JSON object')
        event_type = body.get('type')
        if not isinstance(event_type, str) or event_type not in EVENT_TYPES:
            return unprocessable('type', f'must be one of: {", ".join(EVENT_TYPES)}')
        try:
            fresh = await run_in_threadpool(services.inbound.accept, event_type, body)
        except BadEvent as error:
            return unprocessable(error.field, error.message)
        return Accepted(status='accepted' if fresh else 'duplicate', type=event_type)

    @router.get('/borrowers', response_model=BorrowerList, responses={401: {}, 422: {}})
    def find_borrowers(
        info: Annotated[TokenInfo, Depends(token)],
        q: Annotated[
            str,
            Query(description='name part, phone or its last digits, passport, PIN, INN, SNILS, loan, e-mail'),
        ],
        archive: bool = False,
    ) -> Any:
        """Look borrowers up by anything the search line understands."""
        system = Actor(id=0, login=f'api:{info.name}', full_name=info.name, role=Role.OPERATOR)
        try:
            result = services.borrowers.search(system, q, archive=archive, seen_as=API)
        except BadQuery as error:
            return JSONResponse(
                status_code=422,
                content={'detail': [{'loc': ['query', 'q'], 'msg': error.message, 'type': 'value_error'}]},
            )
        return BorrowerList(
            items=[
                BorrowerOut(
                    pin=row.pin,
                    full_name=row.full_name,
                    birth_date=birth_date_text(row.birth_date, row.birth_year),
                    city=row.city,
                    phones=list(row.phones),
                    passport=row.passport,
                    loans=[
                        LoanOut(
                            number=loan.number,
                            product=loan.product,
                            status=status_label(loan.status_code, loan.status_name),
                            overdue_amount=float(loan.overdue_amount),
                            days_past_due=loan.days_past_due,
                        )
                        for loan in row.loans
                    ],
                )
                for row in result.items
            ]
        )

    @router.post(
        '/borrowers/{pin}/messages',
        status_code=202,
        response_model=MessageQueued,
        responses={401: {}, 403: {}, 404: {}, 409: {}, 413: {}, 422: {}},
        openapi_extra={
            'requestBody': {
                'required': True,
                'content': {'application/json': {'schema': MessageIn.model_json_schema()}},
            }
        },
    )
    async def post_message(pin: str, request: Request, info: Annotated[TokenInfo, Depends(token)]) -> Any:
        """Queue an SMS or e-mail to the borrower with this PIN, checked as one from the card.

        202 with the outbox id once it is queued (the dispatcher sends it); 404 for an unknown PIN; 409
        when 230-FZ forbids it now (``rule`` and ``next_allowed_at`` beside the reason); 422 naming the
        field (a text over 10 SMS parts, no mobile phone or valid e-mail: ``channel``, an unknown
        template). Nothing is written unless it is queued.
        """
        if not info.allows('events'):
            raise HTTPException(status_code=403, detail='This token may only look borrowers up')
        body = await _json_body(request)
        if not isinstance(body, dict):
            return unprocessable(None, 'the body must be a JSON object')
        try:
            message = MessageIn.model_validate(body)
        except ValidationError as error:
            return unprocessable(*invalid(error))
        system = Actor(id=0, login=f'api:{info.name}', full_name=info.name, role=Role.OPERATOR)
        send = services.messaging.send
        try:
            queued = await run_in_threadpool(
                send,
                system,
                pin,
                message.channel,
                message.text,
                subject=message.subject,
                template_id=message.template_id,
            )
        except NotFound as error:
            return JSONResponse(status_code=404, content={'detail': error.message})
        except RefusedByLaw as refused:
            return refused_by_law(refused)
        except BadMessage as bad:
            return unprocessable(bad.field, bad.message)
        except ServiceError as error:
            return unprocessable(None, error.message)
        return MessageQueued(id=queued.outbox_id, status=queued.status.value, channel=queued.channel.value)

    return router


def install(app: FastAPI, services: Services) -> None:
    app.include_router(build_router(services))
    health.install(app, services)  # GET /healthz, open: HAProxy asks it
    metrics.install(app, services)  # GET /metrics, Prometheus text, behind the API token

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        """A body that is not a JSON object, a bad query parameter: 422 naming the field."""
        details = [
            {
                'loc': list(e.get('loc', ())),
                'msg': e.get('msg', 'invalid'),
                'type': e.get('type', 'value_error'),
            }
            for e in error.errors()
        ]
        return JSONResponse(status_code=422, content={'detail': details})


_EXAMPLE = {
    'type': 'telephony.call.incoming',
    'call_id': 'pbx-2026-000123',
    'from': '79280009977',
    'to_extension': '101',
    'at': '2026-11-26T10:15:00+03:00',
}


def _event_schemas() -> dict[str, Any]:
    """The request body's schema: one object per event type, "type" naming it (for /docs and fuzzers)."""
    variants = []
    for name, model in EVENT_TYPES.items():
        schema = model.model_json_schema(by_alias=True)
        schema['properties'] = {'type': {'const': name, 'type': 'string'}, **schema['properties']}
        schema['required'] = ['type', *schema.get('required', [])]
        variants.append(schema)
    return {'schema': {'oneOf': variants}, 'example': _EXAMPLE}


_EVENT_SCHEMA = _event_schemas()
