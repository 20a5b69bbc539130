"""The personal-account site of ``CRM_ACCOUNT_URL``, over HTTP (httpx).

``POST {url}/borrowers/{pin}/password-reset`` (the PIN URL-quoted) → ``2xx {"password": "…"}``. Anything
else — another status, no or an empty password, a body that is not JSON, a timeout, a refused
connection — is ``AccountUnavailable(reason)``; the reason names what happened and never holds the
password nor anything of the body of a successful answer, and the exception is raised without its
httpx cause. The request line (with the PIN, an internal number, not a secret) is what httpx logs; the
answer's body is logged by nobody.
"""

from __future__ import annotations

from urllib.parse import quote

import httpx

from crm.integrations.account import AccountUnavailable

MAX_PASSWORD = 128


class HttpAccountSite:
    """``AccountSite`` over HTTP. One pooled keep-alive client, safe to share between threads."""

    def __init__(self, url: str, *, timeout: float = 5.0, client: httpx.Client | None = None) -> None:
        self._base = url.rstrip('/')
        self._timeout = timeout
        self._owns_client = client is None
        self._client = client or httpx.Client(timeout=timeout, follow_redirects=False)

    def reset_password(self, pin: str) -> str:
        """A new password for the borrower's personal account, or ``AccountUnavailable``."""
        if not pin.strip():
            raise AccountUnavailable('у заёмщика нет номера (PIN) для личного кабинета')
        url = f'{self._base}/borrowers/{quote(pin, safe="")}/password-reset'
        try:
            response = self._client.post(url, timeout=self._timeout)
        except httpx.TimeoutException:
            raise AccountUnavailable(f'сайт личного кабинета не ответил за {self._timeout:g} с') from None
        except httpx.ConnectError:
            raise AccountUnavailable('сайт личного кабинета недоступен: соединение не установлено') from None
        except httpx.TransportError as error:
            raise AccountUnavailable(
                f'связь с сайтом личного кабинета прервана ({type(error).__name__})'
            ) from None
        return _password(response)

    def close(self) -> None:
        if self._owns_client:
            self._client.close()


def _password(response: httpx.Response) -> str:
    """The password of a 2xx answer; the reason of any other names only the status."""
    status = response.status_code
    if not 200 <= status < 300:
        raise AccountUnavailable(f'сайт личного кабинета ответил HTTP {status}')
    try:
        data = response.json()
    except (ValueError, UnicodeDecodeError):
        data = None
    password = data.get('password') if isinstance(data, dict) else None
    if not isinstance(password, str) or not password.strip():
        raise AccountUnavailable(f'сайт личного кабинета ответил HTTP {status} без пароля')
    if len(password) > MAX_PASSWORD or not password.isprintable() or password != password.strip():
        raise AccountUnavailable(f'сайт личного кабинета ответил HTTP {status} непригодным паролем')
    return password
