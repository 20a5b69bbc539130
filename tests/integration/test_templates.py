"""Message templates on the real database: every refusal, rights, audit, retire/restore and previews."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from crm.bootstrap import creditor_of
from crm.config import Settings
from crm.db.demo_templates import DEMO_TEMPLATES
from crm.db.models import AuditEntry, Borrower, Communication, Loan, MessageTemplate, User
from crm.domain import Role
from crm.domain import formatting as fmt
from crm.domain.errors import AccessDenied, NotFound, ServiceError
from crm.domain.messages import PASSWORD_KIND, TEMPLATE_KINDS, Creditor
from crm.domain.sms_text import Encoding
from crm.services.auth import to_actor
from crm.services.message_text import SAMPLE_PASSWORD
from crm.services.templates import TemplateDraft, TemplateService
from tests.conftest import TEST_NOW
from tests.factories import make_borrower, make_user, unique

CREDITOR = creditor_of(Settings())
SIGNED = '{{ creditor_name }}, {{ contact_phone }}'


@pytest.fixture
def templates(sessions, clock) -> TemplateService:
    return TemplateService(sessions, CREDITOR, clock=clock)


@pytest.fixture
def admin(sessions):
    with sessions() as session:
        return to_actor(session.scalar(select(User).where(User.login == 'admin')))


def sms(body: str = 'Оплатите {{ overdue_amount }}. ' + SIGNED, **fields) -> TemplateDraft:
    values = {'channel': 'sms', 'kind': 'overdue', 'name': f'Тест {unique()}', 'body': body} | fields
    return TemplateDraft(**values)


def audit_of(sessions, template_id: int) -> list[tuple[str, dict]]:
    with sessions() as session:
        rows = session.execute(
            select(AuditEntry.action, AuditEntry.details)
            .where(AuditEntry.action.like('template.%'))
            .order_by(AuditEntry.id)
        ).all()
    found = [(action, json.loads(details)) for action, details in rows]
    return [(action, details) for action, details in found if details.get('template_id') == template_id]


def counts(sessions) -> tuple[int, int]:
    with sessions() as session:
        return (
            session.scalar(select(func.count()).select_from(MessageTemplate)) or 0,
            session.scalar(select(func.count()).select_from(AuditEntry)) or 0,
        )


# --- reading -----------------------------------------------------------------------------------------
def test_the_demo_templates_are_offered_by_kind_then_name(templates, operator) -> None:
    offered = templates.offered(operator, 'sms')
    demo = {t.name for t in DEMO_TEMPLATES if t.channel == 'sms' and t.kind != PASSWORD_KIND}
    assert demo <= {t.name for t in offered}
    order = list(TEMPLATE_KINDS)
    keys = [(order.index(t.kind), t.name.casefold()) for t in offered]
    assert keys == sorted(keys)
    assert all(t.channel == 'sms' and t.active for t in offered)
    assert PASSWORD_KIND not in {t.kind for t in offered}  # only the password dialog sends those


def test_the_password_dialog_asks_for_its_kind(templates, operator) -> None:
    offered = templates.offered(operator, 'email', kind=PASSWORD_KIND)
    assert offered and {t.kind for t in offered} == {PASSWORD_KIND}
    assert offered[0].kind_label == 'Пароль ЛК'
    assert offered[0].channel_label == 'E-mail'
    assert offered[0].subject


def test_an_unknown_channel_is_refused_when_listing(templates, operator) -> None:
    with pytest.raises(ServiceError, match='Канал'):
        templates.offered(operator, 'fax')


# --- saving ------------------------------------------------------------------------------------------
def test_an_admin_creates_and_changes_a_template(templates, admin, sessions, clock) -> None:
    n = unique()
    created = templates.save(admin, sms(name=f'  Просрочка   для  теста {n} '))
    assert created.name == f'Просрочка для теста {n}'
    assert (created.active, created.updated_at, created.updated_by_name) == (True, TEST_NOW, admin.full_name)
    assert created.kind_label == 'Просрочка'
    changed = templates.save(
        admin,
        TemplateDraft('sms', 'promise', created.name, 'Ждём {{ promise_amount }}. ' + SIGNED, id=created.id),
    )
    assert (changed.id, changed.kind, changed.body) == (
        created.id,
        'promise',
        'Ждём {{ promise_amount }}. ' + SIGNED,
    )
    assert templates.get(admin, created.id) == changed
    assert audit_of(sessions, created.id) == [
        ('template.save', {'template_id': created.id, 'channel': 'sms', 'kind': 'overdue',
                           'name': created.name, 'created': True}),
        ('template.save', {'template_id': created.id, 'channel': 'sms', 'kind': 'promise',
                           'name': created.name, 'created': False}),
    ]  # fmt: skip


def test_an_email_keeps_its_subject(templates, admin) -> None:
    saved = templates.save(
        admin,
        TemplateDraft(
            'email',
            'requisites',
            f'Письмо {unique()}',
            'Оплата: {{ payment_link }}\n' + SIGNED,
            ' Займ № {{ loan_number }} ',
        ),
    )
    assert saved.subject == 'Займ № {{ loan_number }}'
    assert saved.channel_label == 'E-mail'


TOO_LONG = 'Я' * 700 + ' ' + SIGNED


@pytest.mark.parametrize(
    ('draft', 'message'),
    [
        (sms(name='   '), r'^Название: укажите название'),
        (sms(name='Я' * 201), r'^Название: не длиннее 200'),
        (sms(channel='fax'), r'^Канал: выберите SMS или E-mail'),
        (sms(kind='bogus'), r'^Вид шаблона: выберите вид из списка'),
        (sms(channel='email'), r'^Тема: у шаблона письма должна быть тема'),
        (sms(subject='Тема'), r'^Тема: у SMS темы не бывает'),
        (sms(channel='email', subject='Две\nстроки'), r'^Тема: одна строка'),
        (sms(body='   '), r'^Текст шаблона: введите текст'),
        (sms(body='{{ name ' + SIGNED), r'^Текст шаблона: ошибка в шаблоне'),
        (sms(body='{{ bogus }} ' + SIGNED), r'^Текст шаблона: неизвестная переменная «bogus»'),
        (sms(channel='email', subject='{{ nope }}'), r'^Тема: неизвестная переменная «nope»'),
        (sms(body='Оплатите долг. {{ contact_phone }}'), r'наименование кредитора .*230-ФЗ'),
        (sms(body='Оплатите долг. {{ creditor_name }}'), r'контактный телефон \(8 800 555-35-35\)'),
        (sms(body=TOO_LONG), r'^Текст шаблона: SMS длиннее 10 частей \(UCS-2 · 7\d\d симв. · 11 частей'),
        (sms(kind=PASSWORD_KIND, body='Пароль в ЛК. ' + SIGNED), r'должен быть пароль — \{\{ password \}\}'),
        (sms(body='{{ password }} ' + SIGNED), r'«password» есть только в шаблонах вида «Пароль ЛК»'),
        (
            sms(
                channel='email', kind=PASSWORD_KIND, subject='{{ password }}', body='{{ password }} ' + SIGNED
            ),
            r'^Тема: пароль нельзя ставить в тему',
        ),
    ],
)
def test_bad_templates_are_refused_and_nothing_is_written(templates, admin, sessions, draft, message) -> None:
    before = counts(sessions)
    with pytest.raises(ServiceError, match=message):
        templates.save(admin, draft)
    assert counts(sessions) == before


def test_a_long_email_is_fine_but_not_a_long_sms(templates, admin) -> None:
    saved = templates.save(admin, sms(channel='email', subject='Тема', body=TOO_LONG))
    assert saved.channel == 'email'


def test_a_name_is_taken_once_per_channel(templates, admin, sessions) -> None:
    first = templates.save(admin, sms(name=f'Дубль {unique()}'))
    before = counts(sessions)
    with pytest.raises(ServiceError, match=r'^Название: шаблон .* уже есть'):
        templates.save(admin, sms(name=first.name.upper()))
    assert counts(sessions) == before
    templates.save(admin, sms(name=first.name, channel='email', subject='Тема'))  # another channel
    templates.save(admin, sms(name=first.name, body='Иначе. ' + SIGNED, id=first.id))  # itself


def test_a_saved_template_keeps_its_channel(templates, admin) -> None:
    saved = templates.save(admin, sms())
    with pytest.raises(ServiceError, match=r'^Канал: у сохранённого шаблона канал не меняется'):
        templates.save(admin, sms(channel='email', subject='Тема', name=saved.name, id=saved.id))
    assert templates.get(admin, saved.id).channel == 'sms'


def test_a_missing_template_is_not_found(templates, admin) -> None:
    with pytest.raises(NotFound):
        templates.save(admin, sms(id=10**9))
    with pytest.raises(NotFound):
        templates.retire(admin, 10**9)
    with pytest.raises(NotFound):
        templates.get(admin, 10**9)


# --- rights ------------------------------------------------------------------------------------------
@pytest.mark.parametrize('role', [Role.OPERATOR, Role.SUPERVISOR])
def test_only_admins_edit_others_read(templates, admin, sessions, role) -> None:
    actor = to_actor(make_user(sessions, role=role))
    saved = templates.save(admin, sms())
    before = counts(sessions)
    for attempt in (
        lambda: templates.save(actor, sms()),
        lambda: templates.retire(actor, saved.id),
        lambda: templates.restore(actor, saved.id),
    ):
        with pytest.raises(AccessDenied):
            attempt()
    assert counts(sessions) == before
    assert saved.id in {t.id for t in templates.list(actor)}
    assert templates.preview(actor, saved.id).text.startswith('Оплатите 5 200,00 ₽.')


# --- retire and restore ------------------------------------------------------------------------------
def test_a_retired_template_is_kept_but_not_offered(templates, admin, operator, sessions) -> None:
    saved = templates.save(admin, sms())
    retired = templates.retire(admin, saved.id)
    assert not retired.active
    assert saved.id not in {t.id for t in templates.offered(operator, 'sms')}
    assert saved.id not in {t.id for t in templates.list(admin)}
    assert saved.id in {t.id for t in templates.list(admin, include_retired=True)}
    templates.retire(admin, saved.id)  # again: nothing changes, nothing more in the log
    restored = templates.restore(admin, saved.id)
    assert restored.active
    assert saved.id in {t.id for t in templates.offered(operator, 'sms', kind='overdue')}
    assert [action for action, _ in audit_of(sessions, saved.id)] == [
        'template.save',
        'template.retire',
        'template.restore',
    ]


def test_a_template_that_no_longer_passes_is_not_restored(sessions, admin, clock) -> None:
    """The creditor's phone changed while the template was in the archive, and it was written out."""
    old = Creditor(CREDITOR.name, '8 800 111-11-11', CREDITOR.payment_url)
    before_change = TemplateService(sessions, old, clock=clock)
    saved = before_change.save(admin, sms(body='{{ creditor_name }}, звоните 8 800 111-11-11'))
    before_change.retire(admin, saved.id)
    with pytest.raises(ServiceError, match=r'контактный телефон \(8 800 555-35-35\)'):
        TemplateService(sessions, CREDITOR, clock=clock).restore(admin, saved.id)
    assert not before_change.get(admin, saved.id).active


# --- previews ----------------------------------------------------------------------------------------
def demo_borrower_with_a_promise(sessions) -> Borrower:
    with sessions() as session:
        borrower = session.scalars(
            select(Borrower)
            .join(Communication, Communication.borrower_id == Borrower.id)
            .join(Loan, Loan.borrower_id == Borrower.id)
            .where(
                Communication.promise_amount.is_not(None), Loan.state == 'active', Borrower.days_past_due > 0
            )
            .order_by(Borrower.id)
            .limit(1)
        ).one()
        session.expunge(borrower)
        return borrower


def test_the_preview_fills_a_demo_borrowers_variables(templates, admin, sessions) -> None:
    borrower = demo_borrower_with_a_promise(sessions)
    with sessions() as session:
        loan = session.scalars(
            select(Loan)
            .where(Loan.borrower_id == borrower.id, Loan.state == 'active')
            .order_by(Loan.issued_on.desc())
        ).first()
        promise = session.scalar(
            select(Communication.promise_amount)
            .where(Communication.borrower_id == borrower.id, Communication.promise_amount.is_not(None))
            .order_by(Communication.started_at.desc())
            .limit(1)
        )
    body = (
        '{{ name }}, долг {{ overdue_amount }} по № {{ loan_number }}, обещано {{ promise_amount }}. '
        + SIGNED
    )
    saved = templates.save(admin, sms(body=body))
    shown = templates.preview(admin, saved.id, borrower.id)
    name = ' '.join(p for p in (borrower.first_name, borrower.middle_name) if p)
    assert loan is not None
    owed, promised = fmt.money(borrower.overdue_amount), fmt.money(promise)
    assert shown.text == (
        f'{name}, долг {owed} по № {loan.number}, обещано {promised}. {CREDITOR.name}, {CREDITOR.phone}'
    )
    assert shown.borrower_name == borrower.full_name
    assert shown.problem is None
    assert shown.parts is not None and shown.parts.encoding is Encoding.UCS2
    with sessions() as session:
        viewed = session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == 'template.preview', AuditEntry.borrower_id == borrower.id)
        )
    assert viewed == 1  # the borrower's data was shown: in the log (152-FZ)


def test_a_borrower_without_a_promise_names_the_variable(templates, admin, sessions) -> None:
    borrower = make_borrower(sessions)  # a loan, and no promise ever made
    saved = templates.save(admin, sms(kind='promise', body='Ждём {{ promise_amount }}. ' + SIGNED))
    before = counts(sessions)
    with pytest.raises(ServiceError, match=r'у заёмщика нет значения переменной «promise_amount» \(Сумма'):
        templates.preview(admin, saved.id, borrower.id)
    assert counts(sessions) == before  # nothing shown, nothing in the log


def test_a_draft_previews_against_the_sample_borrower(templates, operator) -> None:
    shown = templates.preview(operator, sms(body='{{ full_name }}: {{ days_past_due }} дн. ' + SIGNED))
    assert shown.text == f'Иванов Иван Петрович: 12 дн. {CREDITOR.name}, {CREDITOR.phone}'
    assert shown.borrower_name is None
    assert shown.parts is not None and shown.parts.parts == 1


def test_a_password_preview_shows_a_sample_password_only(templates, admin, sessions) -> None:
    borrower = make_borrower(sessions)
    draft = sms(kind=PASSWORD_KIND, body='Пароль: {{ password }}. ' + SIGNED)
    assert SAMPLE_PASSWORD in templates.preview(admin, draft, borrower.id).text


def test_a_preview_that_lacks_the_creditor_says_so(templates, admin) -> None:
    shown = templates.preview(admin, sms(body='Оплатите {{ overdue_amount }}'))
    assert shown.problem is not None and 'наименование кредитора' in shown.problem


def test_a_preview_for_a_missing_borrower_is_not_found(templates, admin) -> None:
    with pytest.raises(NotFound, match='Заёмщик не найден'):
        templates.preview(admin, sms(), 10**9)
