"""The personal-account site port (a new password for a borrower) and its embedded adapter.

The password a site returns goes to the borrower only: the caller never logs it, never shows it to
the operator and never stores it in clear. The embedded site generates one and keeps only its hash.
"""

from __future__ import annotations

import secrets
import threading
from typing import Protocol

from crm.domain.passwords import hash_password

# No look-alike characters (0/O, 1/l/I): the borrower types it from an SMS.
ALPHABET = 'abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789'


class AccountUnavailable(Exception):
    """The site did not answer with a password; ``reason`` says why (no password in it)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AccountSite(Protocol):
    def reset_password(self, pin: str) -> str:
        """A new password for the borrower's personal account (the old one stops working)."""

    def close(self) -> None: ...


def new_password(length: int = 10) -> str:
    return ''.join(secrets.choice(ALPHABET) for _ in range(length))


class EmbeddedAccountSite:
    """The embedded default: generates a password and keeps only its argon2 hash, per PIN."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.hashes: dict[str, str] = {}

    def reset_password(self, pin: str) -> str:
        password = new_password()
        with self._lock:
            self.hashes[pin] = hash_password(password)
        return password

    def close(self) -> None:
        pass
