"""Demo requests (обращения), made from the demo's inbound contacts of the last weeks.

Each borrower who called or wrote in the last 40 days has a request begun by the first of those contacts,
the later ones joined to it, as the live system would have done. Its status follows its age and a
deterministic draw: the oldest are answered and closed, the recent ones are new in the queue, in work or
waiting for the borrower, so a fresh ``make run`` shows a queue, deadlines near and past, and a history.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from crm.db.models import Borrower, BorrowerPhone, Communication, Request, RequestEvent
from crm.domain.contact_rules import CallLimits
from crm.domain.formatting import OFFICE_TZ
from crm.domain.requests import (
    RequestChannel,
    RequestEventKind,
    RequestOrigin,
    RequestStatus,
    answer_due,
    search_text,
)

WINDOW_DAYS = 40
CHANNELS = {'call_in': RequestChannel.CALL, 'chat': RequestChannel.CHAT, 'email': RequestChannel.EMAIL}
# what an inbound contact was about, by the result its operator recorded (else a default per channel)
TOPICS = {'promise': 'payment', 'paid': 'payment', 'consultation': 'requisites', 'callback': 'payment'}
SUBJECTS = {
    'payment': 'Вопрос об оплате',
    'requisites': 'Реквизиты для оплаты',
    'prolongation': 'Продление займа',
    'restructuring': 'Реструктуризация долга',
    'account_access': 'Не могу войти в личный кабинет',
    'complaint': 'Жалоба на звонки',
    'documents': 'Справка о задолженности',
}
ANSWERS = {
    'payment': 'Платёж зачислен, задолженность пересчитана.',
    'requisites': 'Реквизиты для оплаты отправлены заёмщику.',
    'prolongation': 'Условия пролонгации разъяснены, заявка передана.',
    'restructuring': 'Заявление о реструктуризации принято к рассмотрению.',
    'account_access': 'Пароль от личного кабинета сброшен и отправлен по SMS.',
    'complaint': 'Жалоба рассмотрена, график звонков скорректирован.',
    'documents': 'Справка направлена на e-mail заёмщика.',
}


def seed_requests(session: Session, today: date, *, seed: int, limits: CallLimits | None = None) -> int:
    """Requests for the inbound contacts of the last ``WINDOW_DAYS`` days; how many were made."""
    limits = limits or CallLimits()
    rng = random.Random(seed)
    since = datetime.combine(today - timedelta(days=WINDOW_DAYS), datetime.min.time(), OFFICE_TZ)
    contacts = session.execute(
        select(
            Communication.id,
            Communication.borrower_id,
            Communication.channel,
            Communication.started_at,
            Communication.result_code,
            Communication.comment,
            Communication.body,
            Borrower.assigned_operator_id,
        )
        .join(Borrower, Borrower.id == Communication.borrower_id)
        .where(
            Communication.direction == 'in',
            Communication.channel.in_(list(CHANNELS)),
            Communication.started_at >= since,
        )
        .order_by(Communication.borrower_id, Communication.started_at, Communication.id)
    ).all()
    by_borrower: dict[int, list[Any]] = defaultdict(list)
    for contact in contacts:
        by_borrower[contact.borrower_id].append(contact)
    facts = _borrower_facts(session, list(by_borrower))
    requests, lines = [], []
    for borrower_id, its in by_borrower.items():
        request, its_lines = _request(rng, today, limits, its, facts[borrower_id])
        requests.append(request)
        lines.append(its_lines)
    if not requests:
        return 0
    table = Request.__table__
    assert isinstance(table, Table)
    ids = session.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), requests)
    events = [
        line | {'request_id': request_id}
        for request_id, its_lines in zip(ids.scalars(), lines, strict=True)
        for line in its_lines
    ]
    session.execute(insert(RequestEvent), events)
    return len(requests)


def _borrower_facts(session: Session, ids: list[int]) -> dict[int, tuple[str, str, list[str]]]:
    """Name, PIN and phones of each borrower: what the request's search text holds."""
    phones: dict[int, list[str]] = defaultdict(list)
    for borrower_id, phone in session.execute(
        select(BorrowerPhone.borrower_id, BorrowerPhone.phone).where(BorrowerPhone.borrower_id.in_(ids))
    ):
        phones[borrower_id].append(phone)
    rows = session.execute(
        select(
            Borrower.id, Borrower.last_name, Borrower.first_name, Borrower.middle_name, Borrower.pin
        ).where(Borrower.id.in_(ids))
    )
    return {
        row.id: (
            ' '.join(p for p in (row.last_name, row.first_name, row.middle_name) if p),
            row.pin,
            phones[row.id],
        )
        for row in rows
    }


def _request(
    rng: random.Random,
    today: date,
    limits: CallLimits,
    contacts: list[Any],
    facts: tuple[str, str, list[str]],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    first, last = contacts[0], contacts[-1]
    opened_at = _aware(first.started_at)
    opened_on = opened_at.astimezone(OFFICE_TZ).date()
    topic = TOPICS.get(first.result_code or '') or rng.choice(list(SUBJECTS))
    subject = SUBJECTS[topic]
    text = first.comment or first.body or subject
    age = (today - opened_on).days
    status = _status(rng, age)
    assignee = None if status == RequestStatus.NEW and rng.random() < 0.7 else first.assigned_operator_id
    updated_at = _aware(last.started_at)
    lines = [_line(opened_at, RequestEventKind.OPENED, None, text, first.id, to_status=RequestStatus.NEW)]
    lines += [
        _line(_aware(c.started_at), RequestEventKind.CONTACT, None, c.comment or c.body or '', c.id)
        for c in contacts[1:]
    ]
    if status != RequestStatus.NEW and assignee is not None:
        taken = max(updated_at, opened_at + timedelta(minutes=rng.randint(5, 240)))
        lines.append(
            _line(taken, RequestEventKind.TAKEN, assignee, '', None, to_status=RequestStatus.IN_PROGRESS)
        )
        updated_at = taken
    resolved_at = None
    if status in (RequestStatus.RESOLVED, RequestStatus.CLOSED):
        resolved_at = updated_at + timedelta(hours=rng.randint(1, 72))
        lines.append(_line(resolved_at, RequestEventKind.ANSWER, assignee, ANSWERS[topic], None))
        updated_at = resolved_at
    elif status == RequestStatus.WAITING:
        updated_at += timedelta(hours=rng.randint(1, 24))
        lines.append(
            _line(
                updated_at, RequestEventKind.STATUS, assignee, 'Запрошены документы', None, to_status=status
            )
        )
    name, pin, phones = facts
    request = {
        'borrower_id': first.borrower_id,
        'origin': RequestOrigin.CONTACT.value,
        'channel': CHANNELS[first.channel].value,
        'topic_code': topic,
        'status': status.value,
        'assignee_id': assignee,
        'subject': subject,
        'text': text,
        'search_text': search_text(subject, text, name, pin, phones),
        'opened_at': opened_at,
        'updated_at': updated_at,
        'due_on': answer_due(opened_on, limits),
        'resolved_at': resolved_at,
    }
    return request, lines


def _status(rng: random.Random, age_days: int) -> RequestStatus:
    if age_days > 21:
        return RequestStatus.CLOSED
    if age_days > 10:
        return rng.choice([RequestStatus.RESOLVED, RequestStatus.CLOSED, RequestStatus.IN_PROGRESS])
    return rng.choice(
        [RequestStatus.NEW, RequestStatus.NEW, RequestStatus.IN_PROGRESS, RequestStatus.WAITING]
    )


def _line(
    at: datetime,
    kind: RequestEventKind,
    actor_id: int | None,
    text: str,
    communication_id: int | None,
    *,
    to_status: RequestStatus | None = None,
) -> dict[str, Any]:
    return {
        'at': at,
        'actor_id': actor_id,
        'kind': kind.value,
        'from_status': None,
        'to_status': to_status.value if to_status else None,
        'assignee_id': actor_id if kind == RequestEventKind.TAKEN else None,
        'communication_id': communication_id,
        'text': text,
    }


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
