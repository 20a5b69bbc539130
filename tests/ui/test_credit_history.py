"""The card's «Кредитная история»: the bureau's part (the app's embedded demo bureau), consent, refresh."""

from __future__ import annotations

import pytest
from nicegui import ui
from nicegui.testing import User
from sqlalchemy import select

from crm.db.models import AuditEntry
from crm.domain import Role
from crm.domain.clock import SettableClock
from crm.integrations.bureau import DemoBureau
from crm.services.auth import to_actor
from crm.services.credit_history import CreditHistoryService
from tests.conftest import TEST_NOW, set_app_env
from tests.factories import make_borrower, make_user
from tests.loopback import closed_port
from tests.ui.conftest import WAIT, log_in, until


def bureau_part(user: User) -> ui.html | None:
    """The bureau's part of the card, or None while it (or the card, right after the login) is not drawn."""
    try:
        shown = user.find(kind=ui.html).elements
    except AssertionError:  # no markup on the page yet: the login's navigation has not happened
        return None
    found = [h for h in shown if 'data-testid="card-bureau"' in h.content]
    return found[0] if found else None


async def test_the_tab_shows_the_kept_report_and_asks_the_bureau_only_with_consent(
    user: User, sessions
) -> None:
    borrower = make_borrower(sessions, last='Бюров')
    await log_in(user, 'operator1', 'operator', path=f'/borrower/{borrower.id}')
    await user.should_see('Займ №', retries=WAIT)
    (tabs,) = [h for h in user.find(kind=ui.html).elements if 'crm-tabs' in h.content]
    assert f'id="crm-bureau-{borrower.id}"' in tabs.content  # the place the bureau's part is drawn into
    await until(lambda: (part := bureau_part(user)) is not None and 'ещё не запрашивали' in part.content)
    part = bureau_part(user)
    assert part is not None and 'Согласия на запрос в БКИ нет' in part.content

    user.find('Запросить отчёт БКИ').click()
    await user.should_see('Нет согласия заёмщика на запрос в БКИ', retries=WAIT)

    user.find('Согласие на запрос в БКИ').click()
    await user.should_see('Дата согласия', retries=WAIT)
    user.find('Записать').click()
    await user.should_see('Согласие записано', retries=WAIT)
    await until(lambda: 'Согласие на запрос в БКИ от 26.11.2026' in bureau_part(user).content)

    user.find('Запросить отчёт БКИ').click()
    await user.should_see('Отчёт БКИ получен', retries=WAIT)
    await until(lambda: 'Открытые счета' in bureau_part(user).content)
    content = bureau_part(user).content
    assert 'Закрытые счета' in content and 'Запросы в БКИ за 30 дней' in content
    assert content.count('class="crm-pd-') % 24 == 0 and 'Получен 26.11.2026' in content

    with sessions() as session:
        outcomes = session.scalars(
            select(AuditEntry.details)
            .where(AuditEntry.borrower_id == borrower.id, AuditEntry.action == 'bureau.request')
            .order_by(AuditEntry.id)
        ).all()
    assert ['no_consent' in o for o in outcomes] == [True, False] and '"ok"' in outcomes[1]


@pytest.fixture
def bureau_down(app_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The app's bureau (CRM_BUREAU_URL) refuses connections; requested before ``user`` starts the app."""
    set_app_env(monkeypatch, 'CRM_BUREAU_URL', f'http://127.0.0.1:{closed_port()}')


async def test_a_bureau_that_is_down_leaves_the_kept_report_and_says_when_it_was_taken(
    bureau_down: None, user: User, sessions
) -> None:
    borrower = make_borrower(sessions, last='Бюрин')
    clock = SettableClock(TEST_NOW)
    before = CreditHistoryService(sessions, DemoBureau(clock), clock=clock)
    actor = to_actor(make_user(sessions, role=Role.OPERATOR))
    before.record_consent(actor, borrower.id, TEST_NOW)
    before.refresh(actor, borrower.id)

    await log_in(user, 'operator1', 'operator', path=f'/borrower/{borrower.id}')
    await until(lambda: (part := bureau_part(user)) is not None and 'Открытые счета' in part.content)
    user.find('Запросить отчёт БКИ').click()
    await user.should_see('Отчёт БКИ сейчас недоступен', retries=WAIT)
    await until(lambda: 'crm-warning' in bureau_part(user).content)
    content = bureau_part(user).content
    assert 'соединение не установлено' in content and 'последний получен 26.11.2026 12:00' in content
    assert 'Открытые счета' in content  # the kept report stays
