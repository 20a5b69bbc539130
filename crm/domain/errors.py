"""Errors a service raises for the user to read: the message is Russian and safe to show."""

from __future__ import annotations


class ServiceError(Exception):
    """A refusal the caller shows as it is (ui.notify, a 4xx body)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AccessDenied(ServiceError):
    def __init__(self, message: str = 'Недостаточно прав для этого действия') -> None:
        super().__init__(message)


class NotFound(ServiceError):
    pass


class LoginFailed(ServiceError):
    pass


class BadQuery(ServiceError):
    """A search the service will not run; the message says how to put it."""


class QueryTooShort(BadQuery):
    pass


class QueryTooLong(BadQuery):
    pass
