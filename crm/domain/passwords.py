"""Password hashing: argon2 through libpass (the maintained passlib fork)."""

from __future__ import annotations

from passlib.context import CryptContext

_context = CryptContext(schemes=['argon2'], deprecated='auto')


def hash_password(password: str) -> str:
    return _context.hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    try:
        return _context.verify(password, password_hash)
    except (ValueError, TypeError):
        return False


# A real hash to verify against when the login is unknown, so both paths take the same time.
DUMMY_HASH = _context.hash('not-a-password')
