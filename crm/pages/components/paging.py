"""A server-side paged table's request from the browser: page and rows per page, read defensively."""

from __future__ import annotations

from typing import Any


def page_number(value: Any, default: int) -> int:
    """A page number or size from the browser (the service bounds it); the default for anything else."""
    try:
        return int(value) if value else default
    except (TypeError, ValueError, OverflowError):
        return default
