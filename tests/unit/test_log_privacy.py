"""The access log keeps the page, not what was searched for."""

from __future__ import annotations

import logging

from crm.log_privacy import DropQueryStrings


def test_an_access_record_loses_its_query_string() -> None:
    record = logging.LogRecord(
        'uvicorn.access',
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ('127.0.0.1:5000', 'GET', '/search?q=79280009977&archive=1', '1.1', 200),
        None,
    )
    assert DropQueryStrings().filter(record)
    assert '79280009977' not in record.getMessage()
    assert record.getMessage() == '127.0.0.1:5000 - "GET /search?… HTTP/1.1" 200'
