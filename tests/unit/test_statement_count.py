"""Statements counted by where they came from, told by the sending thread's name."""

from __future__ import annotations

import threading

from sqlalchemy import create_engine, text

from crm.db.statement_count import StatementCounter, origin_of
from crm.services.metrics import Metrics


def test_each_thread_counts_for_its_origin() -> None:
    assert origin_of('crm-rabbitmq') == 'events'
    assert origin_of('crm-events') == 'events'
    assert origin_of('crm-live-read_2') == 'pops'
    assert origin_of('crm-outbox-sms') == 'workers'
    assert origin_of('crm-mailings') == 'workers'
    assert origin_of('ThreadPoolExecutor-0_3') == 'pages'
    assert origin_of('MainThread') == 'pages'


def test_statements_of_a_consumer_thread_count_as_events() -> None:
    counter = StatementCounter()
    engine = create_engine('sqlite://')
    from sqlalchemy import event

    event.listen(engine, 'before_cursor_execute', counter.add)

    def run(times: int) -> None:
        with engine.connect() as connection:
            for _ in range(times):
                connection.execute(text('SELECT 1'))

    consumer = threading.Thread(target=run, args=(3,), name='crm-rabbitmq')
    consumer.start()
    consumer.join()
    run(2)  # this thread: a page's service call
    assert (counter.value, counter.of('events'), counter.of('pages'), counter.of('workers')) == (5, 3, 2, 0)


def test_the_metrics_report_each_origin() -> None:
    names = {sample.name for sample in Metrics().samples()}
    assert {f'crm_db_statements_{o}_total' for o in ('events', 'pages', 'pops', 'workers')} <= names
