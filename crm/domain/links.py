"""Links from outside (a PBX's recording URL, a gateway's receipt): only plain web addresses are shown.

A URL another system sends is data, not markup: ``javascript:…``, ``data:…`` or a protocol-relative
``//host`` would run or leave the site on a click. Only absolute ``http`` / ``https`` URLs with a host,
and no control characters, are ever rendered as links.
"""

from __future__ import annotations

from urllib.parse import urlsplit

MAX_URL_LENGTH = 2000


def web_url(url: str | None) -> str | None:
    """The URL if it is an absolute http(s) address that is safe to link to, else None."""
    if not url or len(url) > MAX_URL_LENGTH or any(ord(c) < 32 or ord(c) == 127 for c in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ('http', 'https') or not parts.hostname:
        return None
    return url
