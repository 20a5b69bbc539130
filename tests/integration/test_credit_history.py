"""The credit bureau: the HTTP adapter against a real server on loopback, the consent rule, the audit,
and that a failed request keeps nothing (``CreditHistoryService`` on the test database)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from crm.bootstrap import make_gateways
from crm.config import Settings
from crm.db.models import AuditEntry, BureauReport
from crm.domain.errors import ServiceError
from crm.integrations.bureau import BureauUnavailable, DemoBureau
from crm.integrations.bureau_http import HttpBureau
from crm.services.credit_history import NO_CONSENT, CreditHistoryService
from tests.bureau_server import BureauServer
from tests.conftest import TEST_NOW
from tests.factories import make_borrower
from tests.loopback import closed_port


@pytest.fixture
def server() -> Iterator[BureauServer]:
    with BureauServer(hang_seconds=3) as server:
        yield server


@pytest.fixture
def bureau(server: BureauServer) -> Iterator[HttpBureau]:
    bureau = HttpBureau(server.url, timeout=0.3)
    yield bureau
    bureau.close()


@pytest.fixture
def history(sessions, bureau, clock) -> CreditHistoryService:
    return CreditHistoryService(sessions, bureau, clock=clock)


@pytest.fixture
def borrower(sessions):
    return make_borrower(sessions)


def requests_of(sessions, borrower_id: int) -> list[dict]:
    with sessions() as session:
        rows = session.scalars(
            select(AuditEntry.details)
            .where(AuditEntry.borrower_id == borrower_id, AuditEntry.action == 'bureau.request')
            .order_by(AuditEntry.id)
        )
        return [json.loads(row or '{}') for row in rows]


def kept(sessions, borrower_id: int) -> int:
    with sessions() as session:
        return session.scalar(
            select(func.count()).select_from(BureauReport).where(BureauReport.borrower_id == borrower_id)
        )


def test_a_good_report_is_kept_and_shown_as_open_and_closed_accounts(
    history, server, borrower, operator, sessions, clock
):
    history.record_consent(operator, borrower.id, TEST_NOW - timedelta(days=10))
    shown = history.refresh(operator, borrower.id)

    assert server.queries == [{'inn': borrower.inn, 'passport': borrower.passport}]
    report = shown.report
    assert report is not None and shown.consent_valid
    assert report.taken_at == TEST_NOW
    assert [a.lender for a in report.open_accounts] == ['ПАО Сбербанк']
    assert [a.lender for a in report.closed_accounts] == ['МФК «Займер»']
    account = report.open_accounts[0]
    assert account.amount == Decimal('150000.00') and account.overdue_amount == Decimal('12500.50')
    assert len(account.strip) == 24
    assert account.strip[0].month.isoformat() == '2024-12-01'  # 24 months to the report's November
    assert account.strip[-1].month.isoformat() == '2026-11-01'
    assert ''.join(m.symbol for m in account.strip) == '------000000000001200000'
    assert ''.join(m.symbol for m in report.closed_accounts[0].strip) == '-' * 21 + '00-'
    assert [i.lender for i in report.recent_inquiries] == ['Т-Банк']  # ВТБ asked 86 days ago
    assert report.inquiries_total == 2
    assert kept(sessions, borrower.id) == 1
    assert requests_of(sessions, borrower.id) == [{'outcome': 'ok', 'records': 2}]

    clock.advance(days=3)
    again = history.latest(operator, borrower.id)
    assert again.report is not None and again.report.taken_at == TEST_NOW
    assert len(server.queries) == 1  # the card reads the kept report, never the bureau


@pytest.mark.parametrize('failure', ['hang', 'fail500', 'garbage', 'missing_field', 'bad_history', 'down'])
def test_a_bureau_that_fails_keeps_nothing_and_says_when_the_last_report_was_taken(
    history, server, borrower, operator, sessions, clock, failure
):
    history.record_consent(operator, borrower.id, TEST_NOW - timedelta(days=1))
    history.refresh(operator, borrower.id)  # the one kept from before
    clock.advance(days=2)
    if failure == 'missing_field':
        del server.body['records'][0]['amount']
    elif failure == 'bad_history':
        server.body['records'][1]['payment_history'] = '0' * 25
    elif failure == 'down':  # a new client: the old one's keep-alive connection would still answer
        history = CreditHistoryService(
            sessions, HttpBureau(f'http://127.0.0.1:{closed_port()}', timeout=0.5), clock=clock
        )
    elif failure in ('hang', 'fail500', 'garbage'):
        server.mode = failure

    with pytest.raises(ServiceError) as refused:
        history.refresh(operator, borrower.id)

    assert 'Отчёт БКИ сейчас недоступен' in refused.value.message
    assert 'последний получен 26.11.2026 12:00' in refused.value.message  # Moscow time of TEST_NOW
    assert kept(sessions, borrower.id) == 1
    shown = history.latest(operator, borrower.id)
    assert shown.report is not None and shown.report.taken_at == TEST_NOW
    outcomes = requests_of(sessions, borrower.id)
    assert [o['outcome'] for o in outcomes] == ['ok', 'unavailable']
    assert borrower.inn not in outcomes[1]['reason'] and borrower.passport not in outcomes[1]['reason']


@pytest.mark.parametrize(
    ('change', 'reason'),
    [
        (lambda body: body.pop('generated_at'), 'generated_at'),
        (lambda body: body['records'][0].update(opened='14.03.2025'), 'records[0]: opened'),
        (lambda body: body['records'][0].update(amount=-1), 'records[0]: amount'),
        (lambda body: body['records'][0].update(max_days_past_due='45'), 'max_days_past_due'),
        (lambda body: body['inquiries'][0].pop('lender'), 'inquiries[0]: lender'),
        (lambda body: body.update(records={}), 'records'),
    ],
)
def test_the_adapter_refuses_a_report_that_does_not_parse_naming_the_field(bureau, server, change, reason):
    change(server.body)
    with pytest.raises(BureauUnavailable) as failed:
        bureau.report('7700000001', None)
    assert failed.value.reason.startswith('ответ БКИ не разобран') and reason in failed.value.reason


def test_the_adapter_says_why(server):
    slow = HttpBureau(server.url, timeout=0.2)
    server.mode = 'hang'
    with pytest.raises(BureauUnavailable, match=r'не ответило за 0\.2 с'):
        slow.report('7700000001', '4510123456')
    server.mode = 'fail500'
    with pytest.raises(BureauUnavailable, match='HTTP 500'):
        slow.report('7700000001', None)
    server.mode = 'garbage'
    with pytest.raises(BureauUnavailable, match='это не JSON'):
        slow.report(None, '4510123456')
    slow.close()
    down = HttpBureau(f'http://127.0.0.1:{closed_port()}', timeout=0.5)
    with pytest.raises(BureauUnavailable, match='соединение не установлено'):
        down.report('7700000001', None)
    down.close()
    assert server.queries[-1] == {'passport': '4510123456'}  # only what the borrower has is sent


def test_no_consent_or_one_older_than_six_months_is_refused_without_asking_the_bureau(
    history, server, borrower, operator, sessions, clock
):
    with pytest.raises(ServiceError, match=re.escape(NO_CONSENT)):
        history.refresh(operator, borrower.id)
    history.record_consent(operator, borrower.id, TEST_NOW)
    clock.advance(days=181)  # 26.05.2027: still within 6 calendar months of 26.11.2026
    history.refresh(operator, borrower.id)
    clock.advance(days=2)  # 28.05.2027: older than 6 months
    shown = history.latest(operator, borrower.id)
    assert not shown.consent_valid and shown.consent_given_at == TEST_NOW
    with pytest.raises(ServiceError, match='Нет согласия заёмщика'):
        history.refresh(operator, borrower.id)

    assert len(server.queries) == 1
    assert [o['outcome'] for o in requests_of(sessions, borrower.id)] == ['no_consent', 'ok', 'no_consent']
    assert kept(sessions, borrower.id) == 1


def test_a_consent_is_recorded_only_for_a_moment_in_the_last_six_months(history, borrower, operator, clock):
    with pytest.raises(ServiceError, match='в будущем'):
        history.record_consent(operator, borrower.id, TEST_NOW + timedelta(minutes=1))
    with pytest.raises(ServiceError, match='больше 6 месяцев'):
        history.record_consent(operator, borrower.id, TEST_NOW - timedelta(days=200))
    with pytest.raises(ServiceError, match='Заёмщик не найден'):
        history.record_consent(operator, 10**9, TEST_NOW)
    assert history.latest(operator, borrower.id).consent_given_at is None


def test_the_settings_pick_the_bureau(server, clock):
    real = make_gateways(Settings(bureau_url=server.url), clock=clock)
    embedded = make_gateways(Settings(), clock=clock)
    try:
        assert isinstance(real.bureau, HttpBureau)
        assert isinstance(embedded.bureau, DemoBureau)
        assert embedded.bureau.report('7700000001', None).generated_at == TEST_NOW
    finally:
        real.close()
        embedded.close()
