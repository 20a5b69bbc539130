"""The body and answers of ``POST /api/v1/borrowers/{pin}/messages``: a message from another system."""

from __future__ import annotations

from typing import Any, Literal

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from crm.services.message_checks import MAX_EMAIL_TEXT, MAX_SUBJECT, RefusedByLaw


class MessageIn(BaseModel):
    """``text``, or ``template_id`` alone: the template rendered for the borrower (subject too)."""

    model_config = ConfigDict(extra='forbid')

    channel: Literal['sms', 'email']
    text: str | None = Field(default=None, min_length=1, max_length=MAX_EMAIL_TEXT)
    subject: str | None = Field(default=None, max_length=MAX_SUBJECT)
    template_id: int | None = Field(default=None, ge=1, le=2**31 - 1)

    @field_validator('text', 'subject', mode='after')
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        """A NUL character is no part of any text, and PostgreSQL refuses to store one."""
        if value is not None and '\x00' in value:
            raise ValueError('must not contain NUL characters')
        return value


class MessageQueued(BaseModel):
    id: int  # the outbox message's id
    status: str  # queued
    channel: str


def invalid(error: ValidationError) -> tuple[str | None, str]:
    """The first problem of a body: (the field, what is wrong)."""
    first = error.errors()[0]
    return '.'.join(str(part) for part in first['loc']) or None, first['msg']


def refused_by_law(refused: RefusedByLaw) -> JSONResponse:
    """409: the request is sound, but 230-FZ forbids the message now; the rule and when it may go."""
    verdict = refused.verdict
    detail: dict[str, Any] = {
        'loc': ['body'],
        'msg': refused.message,
        'type': 'refused_by_law',
        'rule': verdict.rule,
        'next_allowed_at': verdict.next_allowed_at.isoformat() if verdict.next_allowed_at else None,
    }
    return JSONResponse(status_code=409, content={'detail': [detail]})
