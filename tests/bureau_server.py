"""The credit bureau of ``CRM_BUREAU_URL``, for real, on 127.0.0.1 (tests and demos).

``GET /reports?inn=…&passport=…`` → ``200`` with ``body`` (a good report by default, ``GOOD_REPORT``);
every query it got is in ``queries``. ``mode``: ``ok``; ``fail500`` (500 ``{"error": …}``); ``hang``
(no answer for ``hang_seconds``); ``garbage`` (200 with an HTML page). A test changes ``body`` to send
a report with a field missing or wrong.
"""

from __future__ import annotations

import copy
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from tests.loopback import Request, _HttpPeer

BureauMode = Literal['ok', 'fail500', 'hang', 'garbage']

GOOD_REPORT: dict[str, Any] = {
    'generated_at': '2026-11-26T08:30:00+00:00',
    'records': [
        {
            'lender': 'ПАО Сбербанк',
            'type': 'Потребительский кредит',
            'amount': 150000,
            'opened': '2025-03-14',
            'closed': None,
            'status': 'Просрочка',
            'overdue_amount': '12500.50',
            'max_days_past_due': 45,
            'payment_history': '------000000000001200000',
        },
        {
            'lender': 'МФК «Займер»',
            'type': 'Микрозайм',
            'amount': 15000.0,
            'opened': '2024-01-10',
            'closed': '2024-03-01',
            'status': 'Закрыт',
            'overdue_amount': 0,
            'max_days_past_due': 0,
            'payment_history': [0, 0, None],
        },
    ],
    'inquiries': [
        {'lender': 'Т-Банк', 'at': '2026-11-20T10:00:00Z'},
        {'lender': 'ВТБ', 'at': '2026-09-01T10:00:00+03:00'},
    ],
}


class BureauServer(_HttpPeer):
    def __init__(self, *, mode: BureauMode = 'ok', hang_seconds: float = 10.0) -> None:
        super().__init__(hang_seconds)
        self.mode: BureauMode = mode
        self.body: dict[str, Any] = copy.deepcopy(GOOD_REPORT)
        self._queries: list[dict[str, str]] = []

    def __enter__(self) -> BureauServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def queries(self) -> list[dict[str, str]]:
        """The query parameters of every GET /reports, in order."""
        with self._lock:
            return list(self._queries)

    def handle(self, request: Request) -> tuple[int, bytes | dict[str, Any]]:
        url = urlsplit(request.path)
        if request.method != 'GET' or url.path.rstrip('/') != '/reports':
            return 404, {'error': 'not found'}
        with self._lock:
            self._queries.append({k: v[0] for k, v in parse_qs(url.query).items()})
        if self.mode == 'fail500':
            return 500, {'error': 'internal error'}
        if self.mode == 'hang':
            self.hang()
            return 504, {'error': 'gave up'}
        if self.mode == 'garbage':
            return 200, b'<html><body>OK</body></html>'
        return 200, self.body
