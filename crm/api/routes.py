"""HTTP API under /api/v1 for the PBX, chat, SMS gateway and other systems (contract in SPEC).

Thin: authenticate the bearer token, hand the body to a service, shape the answer. Handlers are
plain ``def`` so FastAPI runs them in its thread pool, off the event loop.
"""

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from crm.bootstrap import Services
from crm.domain import Role, status_label
from crm.domain.actor import Actor
from crm.domain.errors import QueryTooShort
from crm.services.api_tokens import TokenInfo
from crm.services.event_schemas import EVENT_TYPES, BadEvent

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
    pin: str
    full_name: str
    birth_date: date
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


def build_router(services: Services) -> APIRouter:
    router = APIRouter(prefix='/api/v1', tags=['CRM API'])

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

    @router.post('/events', status_code=202, response_model=Accepted, responses={401: {}, 403: {}, 422: {}})
    def post_event(
        info: Annotated[TokenInfo, Depends(token)],
        body: Annotated[dict[str, Any], Body(examples=[_EXAMPLE])],
    ) -> Any:
        """Accept an event (the same ones as on the AMQP exchange crm.events, with "type" = routing key).

        202 once its effect is committed; a repeat of the same call_id / message_id is answered 202
        with status "duplicate" and has no second effect.
        """
        if not info.allows('events'):
            raise HTTPException(status_code=403, detail='This token may only look borrowers up')
        event_type = body.get('type')
        if not isinstance(event_type, str) or event_type not in EVENT_TYPES:
            return unprocessable('type', f'must be one of: {", ".join(EVENT_TYPES)}')
        try:
            fresh = services.inbound.accept(event_type, body)
        except BadEvent as error:
            return unprocessable(error.field, error.message)
        return Accepted(status='accepted' if fresh else 'duplicate', type=event_type)

    @router.get('/borrowers', response_model=BorrowerList, responses={401: {}, 422: {}})
    def find_borrowers(
        info: Annotated[TokenInfo, Depends(token)],
        q: Annotated[str, Query(description='name part, phone, passport, PIN, INN or SNILS')],
        archive: bool = False,
    ) -> Any:
        """Look borrowers up by anything the search line understands."""
        system = Actor(id=0, login=f'api:{info.name}', full_name=info.name, role=Role.OPERATOR)
        try:
            result = services.borrowers.search(system, q, archive=archive)
        except QueryTooShort as error:
            return JSONResponse(
                status_code=422,
                content={'detail': [{'loc': ['query', 'q'], 'msg': error.message, 'type': 'value_error'}]},
            )
        return BorrowerList(
            items=[
                BorrowerOut(
                    pin=row.pin,
                    full_name=row.full_name,
                    birth_date=row.birth_date,
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

    return router


def install(app: FastAPI, services: Services) -> None:
    app.include_router(build_router(services))

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
