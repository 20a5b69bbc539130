"""The demo templates: every one passes the editor's checks, and the SMS ones are short."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from crm.config import Settings
from crm.db.demo_templates import DEMO_TEMPLATES
from crm.db.engine import make_engine, make_sessions
from crm.db.models import MessageTemplate, User
from crm.domain.messages import PASSWORD_KIND, TEMPLATE_KINDS, Creditor
from crm.domain.sms_text import Encoding, sms_parts
from crm.manage import prepare
from crm.services.message_text import check_template
from crm.services.templates import TemplateDraft, check_draft
from tests.conftest import TEST_NOW

CREDITORS = [
    Creditor('ООО МКК «Демо Займ»', '8 800 555-35-35', 'https://pay.demozaim.ru/'),
    Creditor('АО «Другой кредитор»', '+7 (495) 123-45-67', 'https://pay.example/'),
]


@pytest.mark.parametrize('creditor', CREDITORS, ids=['demo', 'another'])
@pytest.mark.parametrize('template', DEMO_TEMPLATES, ids=[f'{t.channel}-{t.name}' for t in DEMO_TEMPLATES])
def test_every_demo_template_saves(template, creditor) -> None:
    draft = TemplateDraft(template.channel, template.kind, template.name, template.body, template.subject)
    assert check_draft(draft, creditor) == draft  # already trimmed as the editor would keep it
    if template.channel == 'sms':
        parts = sms_parts(check_template(template.kind, None, template.body, creditor).text)
        assert parts.encoding is Encoding.UCS2 and parts.parts <= 2


def test_there_is_an_sms_of_every_kind_and_the_main_emails() -> None:
    sms_kinds = {t.kind for t in DEMO_TEMPLATES if t.channel == 'sms'}
    assert sms_kinds == set(TEMPLATE_KINDS) - {'other'}
    email_kinds = {t.kind for t in DEMO_TEMPLATES if t.channel == 'email'}
    assert {'overdue', 'requisites', PASSWORD_KIND} <= email_kinds
    assert 8 <= len(DEMO_TEMPLATES) <= 12
    assert len({(t.channel, t.name.casefold()) for t in DEMO_TEMPLATES}) == len(DEMO_TEMPLATES)


def test_prepare_gives_an_older_demo_database_the_templates_once(tmp_path: Path) -> None:
    """A demo database filled before templates existed gets them at the next start, and only then."""
    url = f'sqlite:///{tmp_path / "older.sqlite3"}'
    settings = Settings(database_url=url, demo=True, clock_start=TEST_NOW.isoformat())
    prepare(settings, borrowers=3)
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            assert connection.scalar(select(func.count()).select_from(MessageTemplate)) == len(DEMO_TEMPLATES)
            connection.execute(delete(MessageTemplate))  # as it was before there were templates
        prepare(settings, borrowers=3)
        prepare(settings, borrowers=3)
        with make_sessions(engine)() as session:
            seeded = session.execute(
                select(MessageTemplate.name, MessageTemplate.updated_by, User.login).join(
                    User, User.id == MessageTemplate.updated_by
                )
            ).all()
    finally:
        engine.dispose()
    assert sorted(name for name, *_ in seeded) == sorted(t.name for t in DEMO_TEMPLATES)
    assert {login for *_, login in seeded} == {'admin'}
