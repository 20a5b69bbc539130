"""The password policy (issue 11 §3): long enough, not the login, not one kind of character only.

Pure rules and Russian messages; the minimum length is a setting (``CRM_PASSWORD_MIN_LENGTH``).
Also the temporary password an administrator's reset generates: strong, shown once, easy to read out
(no look-alike characters such as 0/O, 1/l/I).
"""

from __future__ import annotations

import secrets
import string

from crm.domain.errors import ServiceError
from crm.domain.text import plural

DEFAULT_MIN_LENGTH = 10
MAX_LENGTH = 128  # argon2 takes anything, but a password field should not take a book
_READABLE = ''.join(c for c in string.ascii_letters + string.digits if c not in '0O1lI')


class PasswordRejected(ServiceError):
    """The password breaks the policy; the message says which rule."""


def _classes(password: str) -> int:
    """How many kinds of character the password has: letters, digits, anything else."""
    return (
        any(c.isalpha() for c in password)
        + any(c.isdigit() for c in password)
        + any(not c.isalnum() for c in password)
    )


def problems(password: str, login: str, *, min_length: int = DEFAULT_MIN_LENGTH) -> list[str]:
    """Every rule the password breaks, in Russian; empty when it is acceptable."""
    found: list[str] = []
    if len(password) < min_length:
        found.append(
            f'Пароль должен быть не короче {min_length} '
            f'{plural(min_length, "символа", "символов", "символов")}'
        )
    if len(password) > MAX_LENGTH:
        found.append(f'Пароль должен быть не длиннее {MAX_LENGTH} символов')
    if login.strip() and login.strip().lower() in password.lower():
        found.append('Пароль не должен содержать логин')
    if password and _classes(password) < 2:
        found.append('Пароль должен содержать символы хотя бы двух видов: буквы, цифры, другие знаки')
    return found


def require_acceptable(password: str, login: str, *, min_length: int = DEFAULT_MIN_LENGTH) -> None:
    """Raise PasswordRejected naming the first rule the password breaks."""
    found = problems(password, login, min_length=min_length)
    if found:
        raise PasswordRejected(found[0])


def describe(min_length: int = DEFAULT_MIN_LENGTH) -> str:
    """The policy in one line, for the forms that ask for a new password."""
    return (
        f'Не короче {min_length} {plural(min_length, "символа", "символов", "символов")}, без логина, '
        'хотя бы два вида символов (буквы, цифры, другие знаки)'
    )


def temporary_password(login: str, *, min_length: int = DEFAULT_MIN_LENGTH) -> str:
    """A random password that passes the policy (at least 12 characters, letters and digits)."""
    length = max(12, min_length)
    while True:
        candidate = ''.join(secrets.choice(_READABLE) for _ in range(length))
        if any(c.isdigit() for c in candidate) and not problems(candidate, login, min_length=min_length):
            return candidate
