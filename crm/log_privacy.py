"""No personal data in logs: addresses lose their query strings in the access log.

Search addresses carry what operators type (phones, passports, names: ``/search?q=79280009977``), and
uvicorn's access log writes every address as requested. The path stays (which page), the query goes.
"""

from __future__ import annotations

import logging


class DropQueryStrings(logging.Filter):
    """For uvicorn's access records: ``(client, method, path?query, http version, status)``."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and '?' in args[2]:
            record.args = (*args[:2], args[2].split('?', 1)[0] + '?…', *args[3:])
        return True


def keep_personal_data_out_of_logs() -> None:
    logging.getLogger('uvicorn.access').addFilter(DropQueryStrings())
