"""The bureau report's strict parser and normal form, the demo bureau, and the 6-month consent arithmetic."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from crm.domain.clock import SettableClock
from crm.integrations.bureau import (
    HISTORY_SYMBOLS,
    BureauUnavailable,
    DemoBureau,
    normal_history,
    parse_report,
    report_json,
)
from crm.services.credit_history import add_months, consent_cutoff, kept_report
from tests.bureau_server import GOOD_REPORT

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def test_a_good_report_parses_into_its_normal_form():
    report = parse_report(copy.deepcopy(GOOD_REPORT))
    assert report.generated_at == datetime(2026, 11, 26, 8, 30, tzinfo=UTC)
    first, second = report.records
    assert first.amount == Decimal('150000.00') and first.overdue_amount == Decimal('12500.50')
    assert first.opened == date(2025, 3, 14) and first.closed is None and first.is_open
    assert second.amount == Decimal('15000.00') and second.closed == date(2024, 3, 1)
    assert second.payment_history == '-' * 21 + '00-'  # a list, the latest months, padded on the left
    assert report.inquiries[1].at == datetime(2026, 9, 1, 7, 0, tzinfo=UTC)  # +03:00 to UTC


def test_the_wire_form_reads_back_the_same():
    report = parse_report(copy.deepcopy(GOOD_REPORT))
    assert parse_report(json.loads(report_json(report))) == report


@pytest.mark.parametrize(
    'history',
    ['0' * 25, '00X', [0, 5], [0, True], 24, None, [0, '12']],
)
def test_a_payment_history_out_of_its_form_is_refused(history):
    with pytest.raises(ValueError):
        normal_history(history)


@pytest.mark.parametrize(
    'body',
    [
        [],
        'report',
        {'records': [], 'inquiries': []},
        {'generated_at': 'yesterday', 'records': [], 'inquiries': []},
        {'generated_at': '2026-11-26T08:30:00Z', 'records': None, 'inquiries': []},
        {'generated_at': '2026-11-26T08:30:00Z', 'records': [], 'inquiries': [{'lender': 'X'}]},
        {'generated_at': '2026-11-26T08:30:00Z', 'records': ['x'], 'inquiries': []},
    ],
)
def test_what_is_not_a_whole_report_is_unavailable(body):
    with pytest.raises(BureauUnavailable, match='ответ БКИ не разобран'):
        parse_report(body)


@pytest.mark.parametrize(
    ('name', 'value'),
    [
        ('lender', ''),
        ('lender', 'a\x00b'),
        ('amount', 'NaN'),
        ('amount', True),
        ('amount', 'много'),
        ('overdue_amount', -0.01),
        ('opened', '2025-02-30'),
        ('closed', 20240301),
        ('max_days_past_due', -1),
        ('max_days_past_due', 1.5),
    ],
)
def test_a_bad_field_of_a_record_is_named(name, value):
    body = copy.deepcopy(GOOD_REPORT)
    body['records'][0][name] = value
    with pytest.raises(BureauUnavailable, match=rf'records\[0\]: {name}'):
        parse_report(body)


def test_the_demo_bureau_is_deterministic_and_plausible():
    bureau = DemoBureau(SettableClock(NOW))
    first = bureau.report('7707083893', '4510123456')
    assert first == bureau.report('7707083893', '4510123456')
    assert first.generated_at == NOW
    others = [bureau.report(f'77070838{n:02d}', None) for n in range(20)]
    assert len({report_json(r) for r in others}) == 20  # different borrowers, different reports
    for report in [first, *others]:
        assert 1 <= len(report.records) <= 4 and len(report.inquiries) <= 3
        assert parse_report(json.loads(report_json(report))) == report  # it honours its own contract
        for record in report.records:
            assert len(record.payment_history) == 24 and set(record.payment_history) <= HISTORY_SYMBOLS
            assert record.opened <= NOW.date() and (record.closed is None or record.opened <= record.closed)
    with pytest.raises(BureauUnavailable):
        bureau.report(None, None)


def test_the_kept_report_view_has_the_months_of_the_strip():
    view = kept_report(NOW, json.dumps(GOOD_REPORT), NOW + timedelta(days=25))
    strip = view.open_accounts[0].strip
    assert [m.month for m in strip[-2:]] == [date(2026, 10, 1), date(2026, 11, 1)]
    assert strip[-7].label == 'просрочка 1–29 дней' and strip[-6].label == 'просрочка 30–59 дней'
    assert view.recent_inquiries == ()  # 25 days on, Т-Банк's inquiry is 31 days old, ВТБ's older
    assert kept_report(NOW, json.dumps(GOOD_REPORT), NOW).recent_inquiries[0].lender == 'Т-Банк'


@pytest.mark.parametrize(
    ('day', 'months', 'expected'),
    [
        (date(2026, 8, 31), -6, date(2026, 2, 28)),
        (date(2028, 8, 31), -6, date(2028, 2, 29)),
        (date(2026, 11, 26), -6, date(2026, 5, 26)),
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2026, 12, 1), -23, date(2025, 1, 1)),
    ],
)
def test_months_are_calendar_months(day, months, expected):
    assert add_months(day, months) == expected


def test_the_consent_cutoff_is_six_months_back_to_the_minute():
    assert consent_cutoff(NOW) == datetime(2026, 5, 26, 9, 0, tzinfo=UTC)
