"""The credit bureau of ``CRM_BUREAU_URL``, over HTTP (httpx).

``GET {url}/reports?inn=…&passport=…`` (only the identifiers the borrower has) → 200 with the report's
JSON (``crm.integrations.bureau``). Anything else — a timeout, a refused connection, a status other than
200, a body that is not JSON or not a whole report — is ``BureauUnavailable`` with the reason; the
reason never holds the identifiers (httpx's errors, whose request holds them, are not chained).
"""

from __future__ import annotations

import httpx

from crm.integrations.bureau import BureauReport, BureauUnavailable, parse_report

MAX_BODY = 2 * 1024 * 1024


class HttpBureau:
    """``CreditBureau`` over HTTP; safe to share between threads (one ``httpx.Client``)."""

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        self._endpoint = url.rstrip('/') + '/reports'
        self._timeout = timeout
        self._client = httpx.Client(timeout=timeout, headers={'Accept': 'application/json'})

    def report(self, inn: str | None, passport: str | None) -> BureauReport:
        params = {name: value for name, value in (('inn', inn), ('passport', passport)) if value}
        if not params:
            raise BureauUnavailable('для запроса в БКИ нужен ИНН или паспорт')
        try:
            response = self._client.get(self._endpoint, params=params)
        except httpx.TimeoutException:
            raise BureauUnavailable(f'БКИ не ответило за {self._timeout:g} с') from None
        except httpx.ConnectError:
            raise BureauUnavailable('БКИ недоступно: соединение не установлено') from None
        except httpx.TransportError as error:
            raise BureauUnavailable(f'связь с БКИ прервана ({type(error).__name__})') from None
        if response.status_code != 200:
            raise BureauUnavailable(f'БКИ ответило HTTP {response.status_code}')
        if len(response.content) > MAX_BODY:
            raise BureauUnavailable('ответ БКИ не разобран: слишком большой')
        try:
            data = response.json()
        except (ValueError, UnicodeDecodeError):
            raise BureauUnavailable('ответ БКИ не разобран: это не JSON') from None
        return parse_report(data)

    def close(self) -> None:
        self._client.close()
