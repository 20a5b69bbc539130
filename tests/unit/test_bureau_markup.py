"""The bureau's part of the card as markup: every datum escaped, the strip drawn month by month."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest

from crm.domain.errors import ServiceError
from crm.pages.components.bureau_panel import consent_line, consent_moment, render
from crm.services.credit_history import CreditHistory, kept_report
from tests.bureau_server import GOOD_REPORT

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def test_the_report_is_escaped_and_its_strip_has_24_months():
    body = copy.deepcopy(GOOD_REPORT)
    body['records'][0]['lender'] = '<script>alert(1)</script>'
    body['inquiries'][0]['lender'] = '"><img src=x onerror=alert(1)>'
    history = CreditHistory(kept_report(NOW, json.dumps(body), NOW), NOW, True)
    markup = render(history, failure='<b>недоступен</b>')
    assert '<script>' not in markup and '<img' not in markup and '<b>' not in markup
    assert '&lt;script&gt;alert(1)&lt;/script&gt;' in markup and '&lt;b&gt;недоступен' in markup
    assert markup.count('class="crm-pd-') == 48  # two accounts, 24 months each
    assert 'class="crm-pd-2" title="06.2026: просрочка 30–59 дней"' in markup
    assert 'Открытые счета (1)' in markup and 'Закрытые счета (1)' in markup
    assert 'Запросы в БКИ за 30 дней (1 из 2)' in markup


def test_no_report_and_the_consent_lines():
    assert 'ещё не запрашивали' in render(CreditHistory(None, None, False))
    assert consent_line(CreditHistory(None, None, False)) == 'Согласия на запрос в БКИ нет'
    assert 'старше 6 месяцев' in consent_line(CreditHistory(None, NOW, False))
    assert consent_line(CreditHistory(None, NOW, True)) == 'Согласие на запрос в БКИ от 26.11.2026 12:00'


def test_a_consent_date_is_midday_in_the_office_but_never_later_than_now():
    assert consent_moment('01.10.2026', NOW) == datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
    assert consent_moment('26.11.2026', NOW.replace(hour=8)) == NOW.replace(hour=8)


def test_a_consent_date_that_is_not_one_is_refused():
    with pytest.raises(ServiceError, match=r'ДД\.ММ\.ГГГГ'):
        consent_moment('31.02.2026', NOW)
