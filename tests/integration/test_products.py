"""Additional products: the catalogue, offers per loan, the sale and the loan system's answer (in process,
over the API and over RabbitMQ), the sweeper that sends a lost command again, the built-in loan system."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import MetaData, select, text

from crm import bootstrap
from crm.api import routes
from crm.config import Settings
from crm.db.engine import make_engine
from crm.db.migrate import alembic_config, upgrade
from crm.db.models import AuditEntry, Communication, InboundEvent, Loan, ProductSale
from crm.domain import Role
from crm.domain.errors import AccessDenied, ServiceError
from crm.domain.products import ProductDraft
from crm.integrations.bus import Delivery, InProcessBus
from crm.integrations.loan_system_simulator import CLOSED_REASON, LoanSystemSimulator
from crm.services.auth import to_actor
from crm.services.notifier import Notifier
from crm.services.products import SALE_REQUESTED, ProductService, SaleSweeper
from tests.factories import make_borrower, make_user, unique
from tests.integration import test_rabbitmq_bus as rabbit
from tests.integration.test_migrations import BORROWER
from tests.integration.test_rabbitmq_bus import ignore_ui, ready_count, wait_until

TOKEN = 'product-token-for-tests'
broker, make_bus = rabbit.broker, rabbit.make_bus  # the RabbitMQ fixtures, for the round trip


@pytest.fixture
def admin(sessions):
    return to_actor(make_user(sessions, role=Role.ADMIN))


@pytest.fixture
def products(system) -> ProductService:
    return system.services.products


def new_product(products: ProductService, admin, **changes: Any):
    """A product of this test's own (the catalogue is shared with the demo and other tests)."""
    fields: dict[str, Any] = {'code': f'p{unique()}', 'name': f'Продукт {unique()}', 'price': Decimal('990')}
    return products.save(admin, ProductDraft(**(fields | changes)))


def debtor(sessions, *, dpd: int = 10, overdue: str = '4000', state: str = 'active') -> tuple[int, int, str]:
    """A borrower with one loan: (borrower id, loan id, loan number)."""
    borrower = make_borrower(sessions, overdue=Decimal(overdue), days_past_due=dpd)
    with sessions.begin() as session:
        loan = session.scalars(select(Loan).where(Loan.borrower_id == borrower.id)).one()
        loan.total_debt = Decimal(overdue) + Decimal(8000)
        loan.state = state
        return borrower.id, loan.id, loan.number


def sale_row(sessions, sale_id: str) -> ProductSale:
    with sessions() as session:
        return session.scalars(select(ProductSale).where(ProductSale.sale_id == sale_id)).one()


def answer(inbound, kind: str, *bodies: dict[str, Any]) -> list[str | None]:
    return inbound.handle_deliveries(
        [Delivery(f'product.sale.{kind}', json.dumps(b).encode()) for b in bodies]
    )


def offer_for(products: ProductService, actor, borrower_id: int, code: str):
    (loan,) = products.offers(actor, borrower_id).loans
    return next(o for o in loan.offerable + loan.refused if o.code == code)


# --- the catalogue ----------------------------------------------------------------------------------
def test_catalogue_creates_edits_retires_and_restores(products, admin, sessions) -> None:
    made = new_product(products, admin, kind='prolongation', price_base='total_debt', percent=Decimal('7.5'))
    assert made.active and made.price is None and made.price_text.startswith('7,5% от общей задолженности')
    assert made.code in {p.code for p in products.catalogue(admin)}
    changed = products.save(admin, ProductDraft(**(made.draft().__dict__ | {'name': 'Пролонгация+'})))
    assert (changed.id, changed.name) == (made.id, 'Пролонгация+')
    assert not products.retire(admin, made.id).active
    assert products.restore(admin, made.id).active
    with sessions() as session:
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.user_id == admin.id).order_by(AuditEntry.id)
        ).all()
    assert actions == ['product.save', 'product.save', 'product.active', 'product.active']


def test_catalogue_refuses_a_duplicate_code_bad_input_and_non_admins(products, admin, operator) -> None:
    made = new_product(products, admin)
    with pytest.raises(ServiceError, match=f'Продукт с кодом «{made.code}» уже есть'):
        new_product(products, admin, code=made.code.upper())
    with pytest.raises(ServiceError, match='Код продукта не меняется'):
        products.save(admin, ProductDraft(**(made.draft().__dict__ | {'code': f'x{unique()}'})))
    with pytest.raises(ServiceError, match='нижняя граница больше верхней'):
        new_product(products, admin, dpd_min=31, dpd_max=30)
    with pytest.raises(AccessDenied):
        new_product(products, operator)
    with pytest.raises(AccessDenied):
        products.retire(operator, made.id)


# --- offers and the sale ----------------------------------------------------------------------------
def test_offers_per_loan_with_price_and_the_rule_that_said_no(products, admin, operator, sessions) -> None:
    borrower_id, _, number = debtor(sessions, dpd=10)
    fits = new_product(products, admin, price_base='overdue', percent=Decimal(10), price_min=Decimal(300))
    late = new_product(products, admin, dpd_min=31)
    retired = new_product(products, admin)
    products.retire(admin, retired.id)
    (loan,) = products.offers(operator, borrower_id).loans
    assert loan.number == number and loan.state_label == 'Действующий'
    assert offer_for(products, operator, borrower_id, fits.code).price == Decimal('400.00')
    assert (
        offer_for(products, operator, borrower_id, late.code).reason
        == 'Просрочка должна быть не меньше 31 дня'
    )
    assert retired.code not in {o.code for o in loan.offerable + loan.refused}
    closed_id, _, _ = debtor(sessions, state='closed')
    assert offer_for(products, operator, closed_id, fits.code).reason == 'Займ закрыт'
    archived_id, _, _ = debtor(sessions, state='archived')
    assert products.offers(operator, archived_id).loans == ()


def test_sell_records_a_pending_sale_a_communication_and_sends_the_command(
    products, admin, operator, sessions, bus
) -> None:
    borrower_id, loan_id, number = debtor(sessions)
    product = new_product(products, admin, name='Страхование', price=Decimal('1490'))
    sale = products.sell(operator, loan_id, product.code)
    assert (sale.status, sale.status_label, sale.price, sale.loan_number) == (
        'pending',
        'Ожидает подтверждения',
        Decimal('1490.00'),
        number,
    )
    assert bus.commands[-1] == (
        SALE_REQUESTED,
        {'sale_id': sale.sale_id, 'loan_number': number, 'product_code': product.code, 'price': '1490.00'},
    )
    row = sale_row(sessions, sale.sale_id)
    assert (row.loan_id, row.borrower_id, row.operator_id, row.status) == (
        loan_id,
        borrower_id,
        operator.id,
        'pending',
    )
    with sessions() as session:
        note = session.get(Communication, row.communication_id)
        assert (note.channel, note.direction, note.operator_id) == ('product', 'out', operator.id)
        assert note.body == f'Страхование по займу {number}: 1 490,00 ₽'
        assert note.result_name == 'Ожидает подтверждения'
    assert {'kind': 'history', 'borrower_id': borrower_id} in bus.ui
    assert products.offers(operator, borrower_id).sales[0].sale_id == sale.sale_id


def test_a_sale_is_refused_when_no_longer_eligible(products, admin, operator, sessions) -> None:
    borrower_id, loan_id, number = debtor(sessions, dpd=30)
    once = new_product(products, admin, once_per_loan=True)
    prolongation = new_product(products, admin, kind='prolongation', dpd_max=30, max_per_loan=5)
    assert offer_for(products, operator, borrower_id, prolongation.code).reason is None
    products.sell(operator, loan_id, once.code)
    with pytest.raises(
        ServiceError, match=f'нельзя оформить по займу {number}: Уже оформлено по этому займу'
    ):
        products.sell(operator, loan_id, once.code)
    for _ in range(5):
        products.sell(operator, loan_id, prolongation.code)
    with pytest.raises(ServiceError, match='Не более 5 пролонгаций по одному займу'):
        products.sell(operator, loan_id, prolongation.code)
    # the card showed it offerable; the debt grew older since: asked again at the sale
    other_id, other_loan, _ = debtor(sessions, dpd=30)
    assert offer_for(products, operator, other_id, prolongation.code).reason is None
    with sessions.begin() as session:
        session.get(Loan, other_loan).days_past_due = 31
    with pytest.raises(ServiceError, match='Просрочка должна быть не больше 30 дней'):
        products.sell(operator, other_loan, prolongation.code)
    with pytest.raises(ServiceError, match='Займ не найден'):
        products.sell(operator, 999_999_999, once.code)
    with sessions() as session:
        assert session.scalar(select(ProductSale).where(ProductSale.loan_id == other_loan)) is None


def test_a_rejected_sale_does_not_count_against_the_limit(
    products, admin, operator, sessions, inbound
) -> None:
    _, loan_id, _ = debtor(sessions)
    once = new_product(products, admin, once_per_loan=True)
    sale = products.sell(operator, loan_id, once.code)
    assert answer(inbound, 'rejected', {'sale_id': sale.sale_id, 'reason': 'Нет'}) == [None]
    assert products.sell(operator, loan_id, once.code).status == 'pending'


# --- the loan system's answer -----------------------------------------------------------------------
def test_confirmed_repeated_and_contradicted(
    products, admin, operator, sessions, inbound, bus, clock
) -> None:
    borrower_id, loan_id, _ = debtor(sessions)
    sale = products.sell(operator, loan_id, new_product(products, admin).code)
    clock.advance(seconds=3)
    bus.ui.clear()
    body = {'sale_id': sale.sale_id, 'reason': None}
    assert answer(inbound, 'confirmed', body, body) == [None, None]
    assert answer(inbound, 'confirmed', body) == [None]  # a repeat later: no second effect
    row = sale_row(sessions, sale.sale_id)
    assert (row.status, row.reason, row.decided_at) == ('confirmed', None, clock())
    assert bus.ui == [{'kind': 'history', 'borrower_id': borrower_id}]
    with sessions() as session:
        assert session.get(Communication, row.communication_id).result_name == 'Подтверждена'
    [reason] = answer(inbound, 'rejected', {'sale_id': sale.sale_id, 'reason': 'Передумали'})
    assert reason is not None and 'already confirmed' in reason  # dead-lettered with the reason
    assert sale_row(sessions, sale.sale_id).status == 'confirmed'
    with sessions() as session:
        key = f'product.sale.rejected:{sale.sale_id}'
        assert session.scalar(select(InboundEvent).where(InboundEvent.key == key)) is None


def test_rejected_with_its_reason_and_repeated(products, admin, operator, sessions, inbound) -> None:
    _, loan_id, _ = debtor(sessions)
    sale = products.sell(operator, loan_id, new_product(products, admin).code)
    body = {'sale_id': sale.sale_id, 'reason': 'Займ на реструктуризации'}
    assert answer(inbound, 'rejected', body) == [None]
    assert answer(inbound, 'rejected', body | {'reason': 'другая'}) == [None]  # the same key: a repeat
    row = sale_row(sessions, sale.sale_id)
    assert (row.status, row.reason) == ('rejected', 'Займ на реструктуризации')
    with sessions() as session:
        note = session.get(Communication, row.communication_id)
        assert (note.result_name, note.comment) == ('Отклонена', 'Займ на реструктуризации')
    [reason] = answer(inbound, 'confirmed', {'sale_id': sale.sale_id})
    assert reason is not None and 'already rejected' in reason
    view = products.offers(operator, row.borrower_id).sales[0]
    assert (view.status_label, view.reason) == ('Отклонена', 'Займ на реструктуризации')


def test_an_answer_for_an_unknown_sale_or_a_bad_body_is_refused(inbound, sessions) -> None:
    unknown = f'no-such-sale-{unique()}'
    reasons = answer(inbound, 'confirmed', {'sale_id': unknown}, {'sale_id': ''}, {'reason': 'x'})
    assert reasons[0] is not None and 'unknown sale' in reasons[0]
    assert all(r is not None and r.startswith('sale_id') for r in reasons[1:])
    with sessions() as session:
        key = f'product.sale.confirmed:{unknown}'
        assert session.scalar(select(InboundEvent).where(InboundEvent.key == key)) is None


def test_answers_over_the_api(engine, database_url, clock, sessions) -> None:
    system = bootstrap.build(
        Settings(database_url=database_url, api_token=TOKEN), engine=engine, bus=InProcessBus(), clock=clock
    )
    app = FastAPI()
    routes.install(app, system.services)
    client = TestClient(app)
    admin = to_actor(make_user(sessions, role=Role.ADMIN))
    _, loan_id, _ = debtor(sessions)
    sale = system.services.products.sell(admin, loan_id, new_product(system.services.products, admin).code)
    headers = {'Authorization': f'Bearer {TOKEN}'}
    body = {'type': 'product.sale.confirmed', 'sale_id': sale.sale_id}
    first = client.post('/api/v1/events', json=body, headers=headers)
    assert (first.status_code, first.json()['status']) == (202, 'accepted')
    assert client.post('/api/v1/events', json=body, headers=headers).json()['status'] == 'duplicate'
    refused = client.post('/api/v1/events', json=body | {'sale_id': 'nope'}, headers=headers)
    assert refused.status_code == 422 and 'sale_id' in refused.text
    assert sale_row(sessions, sale.sale_id).status == 'confirmed'


# --- the sweeper --------------------------------------------------------------------------------------
class FailingCommands(InProcessBus):
    """A broker that is away when the sale is committed: the command is lost."""

    def __init__(self) -> None:
        super().__init__()
        self.away = True

    def publish_command(self, routing_key: str, body: dict[str, Any]) -> None:
        if self.away:
            raise ConnectionError('broker away')
        super().publish_command(routing_key, body)


def test_the_sweeper_sends_a_lost_command_again(sessions, clock, admin, operator, inbound) -> None:
    bus = FailingCommands()
    service = ProductService(sessions, bus, Notifier(bus), clock=clock)
    _, loan_id, number = debtor(sessions)
    code = new_product(service, admin).code
    sale = service.sell(operator, loan_id, code)
    assert sale.status == 'pending' and bus.commands == []  # committed all the same
    sweeper = SaleSweeper(sessions, bus, clock=clock, resend_after=timedelta(minutes=1), batch_size=10_000)
    bus.away = False
    clock.advance(seconds=59)
    assert sale.sale_id not in {body['sale_id'] for _, body in resent(sweeper, bus)}  # not due yet
    clock.advance(seconds=2)
    again = [body for _, body in resent(sweeper, bus) if body['sale_id'] == sale.sale_id]
    assert again == [
        {'sale_id': sale.sale_id, 'loan_number': number, 'product_code': code, 'price': '990.00'}
    ]
    assert sale.sale_id not in {
        body['sale_id'] for _, body in resent(sweeper, bus)
    }  # stamped: not twice at once
    assert answer(inbound, 'confirmed', {'sale_id': sale.sale_id}) == [None]
    clock.advance(minutes=5)
    assert sale.sale_id not in {body['sale_id'] for _, body in resent(sweeper, bus)}  # decided: never again


def resent(sweeper: SaleSweeper, bus: InProcessBus) -> list[tuple[str, dict[str, Any]]]:
    bus.commands.clear()
    sweeper.run_once()
    return list(bus.commands)


# --- the built-in loan system -------------------------------------------------------------------------
def test_the_built_in_loan_system_confirms_and_rejects_a_loan_it_holds_closed(
    sessions, clock, admin, operator, inbound
) -> None:
    bus = InProcessBus()
    simulator = LoanSystemSimulator(bus, delay_s=0)
    simulator.attach()
    bus.start(inbound.handle_deliveries, ignore_ui)
    try:
        service = ProductService(sessions, bus, Notifier(bus), clock=clock)
        code = new_product(service, admin).code
        _, loan_id, _ = debtor(sessions)
        _, closed_loan, closed_number = debtor(sessions)
        simulator.close(closed_number)
        confirmed = service.sell(operator, loan_id, code)
        rejected = service.sell(operator, closed_loan, code)
        bus.publish_command(SALE_REQUESTED, bus.commands[-1][1])  # the sweeper's repeat: the same answer
        bus.drain()
    finally:
        bus.stop()
    assert sale_row(sessions, confirmed.sale_id).status == 'confirmed'
    row = sale_row(sessions, rejected.sale_id)
    assert (row.status, row.reason) == ('rejected', CLOSED_REASON)
    assert bus.dead_letters == []


class HeardEvents(InProcessBus):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, dict[str, Any]]] = []

    def publish_event(self, routing_key: str, body: dict[str, Any]) -> None:
        self.events.append((routing_key, body))


def test_the_built_in_loan_system_answers_after_its_delay() -> None:
    bus = HeardEvents()
    scheduled: list[tuple[float, Any]] = []
    simulator = LoanSystemSimulator(
        bus, delay_s=2.0, schedule=lambda s, action: scheduled.append((s, action))
    )
    simulator.on_command('telephony.dial', {'call_id': 'x'})  # not for the loan system
    simulator.on_command(
        SALE_REQUESTED, {'sale_id': 's-1', 'loan_number': 'L1', 'product_code': 'p', 'price': '1'}
    )
    assert [delay for delay, _ in scheduled] == [2.0] and bus.events == []  # nothing before the delay
    scheduled[0][1]()
    assert bus.events == [('product.sale.confirmed', {'sale_id': 's-1', 'reason': None})]
    simulator.close('L1')  # decided once: the same sale is confirmed again, a new one on L1 is rejected
    simulator.on_command(SALE_REQUESTED, {'sale_id': 's-1', 'loan_number': 'L1'})
    simulator.on_command(SALE_REQUESTED, {'sale_id': 's-2', 'loan_number': 'L1'})
    for _, action in scheduled[1:]:
        action()
    assert bus.events[1:] == [
        ('product.sale.confirmed', {'sale_id': 's-1', 'reason': None}),
        ('product.sale.rejected', {'sale_id': 's-2', 'reason': CLOSED_REASON}),
    ]


def test_settings_turn_the_built_in_loan_system_on_and_set_its_delay() -> None:
    assert Settings.from_env({}).loan_system_simulator
    assert not Settings.from_env({'CRM_DEMO': '0'}).loan_system_simulator
    assert not Settings.from_env({'CRM_LOAN_SYSTEM_SIMULATOR': 'off'}).loan_system_simulator
    assert Settings.from_env({'CRM_LOAN_SYSTEM_DELAY_S': '0.5'}).loan_system_delay_s == 0.5


# --- over RabbitMQ ------------------------------------------------------------------------------------
def test_round_trip_over_rabbitmq_confirmed_and_rejected_each_repeated(
    make_bus, broker, names, inbound, sessions, clock, admin, operator
) -> None:
    bus = make_bus()
    simulator = LoanSystemSimulator(bus, delay_s=0)
    simulator.attach()
    handled: list[str] = []

    def counting(deliveries):  # type: ignore[no-untyped-def]
        outcomes = inbound.handle_deliveries(deliveries)
        handled.extend(d.routing_key for d in deliveries)
        return outcomes

    bus.start(counting, ignore_ui)
    service = ProductService(sessions, bus, Notifier(bus), clock=clock)
    code = new_product(service, admin).code
    _, loan_id, _ = debtor(sessions)
    _, closed_loan, closed_number = debtor(sessions)
    simulator.close(closed_number)
    confirmed = service.sell(operator, loan_id, code)
    rejected = service.sell(operator, closed_loan, code)
    wait_until(lambda: sale_row(sessions, confirmed.sale_id).status == 'confirmed', what='the confirmation')
    wait_until(lambda: sale_row(sessions, rejected.sale_id).status == 'rejected', what='the rejection')
    decided = sale_row(sessions, confirmed.sale_id).decided_at
    # each repeated: the command again (the loan system answers again), and the answers again directly
    clock.advance(minutes=2)
    assert SaleSweeper(sessions, bus, clock=clock, batch_size=10_000).run_once() == 0  # nothing pending
    for sale in (confirmed, rejected):
        loan_number = closed_number if sale is rejected else sale.loan_number
        bus.publish_command(SALE_REQUESTED, {'sale_id': sale.sale_id, 'loan_number': loan_number})
    bus.publish_event('product.sale.confirmed', {'sale_id': confirmed.sale_id})
    bus.publish_event('product.sale.rejected', {'sale_id': rejected.sale_id, 'reason': CLOSED_REASON})
    bus.publish_event('product.sale.confirmed', {'sale_id': f'unknown-{unique()}'})
    # two answers, two answered again by the loan system, two repeated by hand, one unknown
    wait_until(lambda: len(handled) == 7, what='every answer handled')
    assert ready_count(broker, names.dead_letter_queue) == 1 and ready_count(broker, names.events_queue) == 0
    [(_, headers)] = bus.dead_letters()
    assert 'unknown sale' in headers['x-dead-reason']
    assert (
        sale_row(sessions, confirmed.sale_id).status,
        sale_row(sessions, confirmed.sale_id).decided_at,
    ) == (
        'confirmed',
        decided,
    )
    assert (sale_row(sessions, rejected.sale_id).status, sale_row(sessions, rejected.sale_id).reason) == (
        'rejected',
        CLOSED_REASON,
    )


# --- the migration -------------------------------------------------------------------------------------
def test_migration_keeps_the_sales_made_before_it(tmp_path: Path) -> None:
    url = f'sqlite:///{tmp_path / "old.sqlite3"}'
    command.upgrade(alembic_config(url), '0008')
    engine = make_engine(url)
    with engine.begin() as connection:
        tables = MetaData()
        tables.reflect(connection)
        connection.execute(
            tables.tables['products'].insert(),
            {'id': 1, 'code': 'old', 'name': 'Старый', 'price': 99000, 'active': True},
        )
        connection.execute(tables.tables['borrowers'].insert(), BORROWER)
        connection.execute(
            tables.tables['product_sales'].insert(),
            {'borrower_id': 1, 'product_id': 1, 'price': 99000, 'sold_at': datetime(2026, 1, 2)},
        )
    upgrade(url)
    with engine.connect() as connection:
        row = connection.execute(text('SELECT sale_id, status, loan_id FROM product_sales')).one()
        product = connection.execute(
            text('SELECT price_base, allowed_states, once_per_loan FROM products')
        ).one()
    engine.dispose()
    assert tuple(row) == ('legacy-1', 'confirmed', None)
    assert tuple(product) == ('fixed', 'active', 0)
