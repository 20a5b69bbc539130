"""Erasing a borrower's personal data on the subject's request (152-FZ art. 14, 21), administrators only.

One transaction: the personal fields are overwritten (names → «Удалено», identifiers, address, contacts,
employer → empty, birth date → a placeholder), the phones deleted (they are the search keys), the texts
of contacts, messages, chats and requests blanked; what the law makes the company keep stays: loans,
payments, promises, the amounts, dates, channels and results of communications, consents and the audit
log. An ``erasure_acts`` row records who, when, why, the request's reference and what was erased; one
``borrower.erase`` audit entry points at it. The procedure is docs/personal-data.md.

A borrower with an active loan is refused: the data is needed to perform the contract (152-FZ art. 6
part 1 item 5, art. 21 part 5) — unless ``legal_basis`` states why it must go anyway (a court's
decision, a Roskomnadzor demand under art. 21 part 3 …), which the act and the audit keep.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from crm.db.models import (
    Borrower,
    BorrowerPhone,
    BureauReport,
    Chat,
    Communication,
    ErasureAct,
    Loan,
    OutboxMessage,
    Request,
    RequestEvent,
    User,
)
from crm.domain import Role
from crm.domain.actor import Actor
from crm.domain.clock import Clock
from crm.domain.errors import NotFound, ServiceError
from crm.services import audit

ERASED = 'Удалено'
BIRTH_PLACEHOLDER = date(1900, 1, 1)  # the column is required; this date means «erased»
MAX_REASON = 2000

# the borrower's fields erased, with what they become (shown in the confirmation and kept in the act)
BORROWER_FIELDS: dict[str, Any] = {
    'last_name': ERASED,
    'first_name': ERASED,
    'middle_name': None,
    'search_name': '',
    'birth_date': BIRTH_PLACEHOLDER,
    'passport': None,
    'passport_issued': None,
    'inn': None,
    'snils': None,
    'address': None,
    'email': None,
    'employer': None,
}
FIELD_LABELS = {
    'last_name': 'фамилия',
    'first_name': 'имя',
    'middle_name': 'отчество',
    'birth_date': 'дата рождения',
    'passport': 'паспорт',
    'passport_issued': 'кем выдан паспорт',
    'inn': 'ИНН',
    'snils': 'СНИЛС',
    'address': 'адрес',
    'email': 'e-mail',
    'employer': 'работодатель',
}
WHAT_IS_ERASED = (
    'ФИО, дата рождения, паспорт, ИНН, СНИЛС, адрес, e-mail, работодатель; все телефоны; тексты звонков, '
    'заметок, SMS, писем и чатов (комментарии, тексты, темы, номера); тексты обращений; отчёты БКИ'
)
WHAT_IS_KEPT = (
    'займы, платежи, обещания, суммы и даты контактов, их каналы и результаты, согласия, журнал действий'
)


@dataclass(frozen=True)
class ErasureActView:
    id: int
    borrower_id: int
    pin: str
    at: datetime
    by_name: str | None
    reason: str
    reference: str
    legal_basis: str | None
    erased: dict[str, Any]


class ErasureService:
    def __init__(self, sessions: sessionmaker[Session], *, clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock

    def erase(
        self, actor: Actor, borrower_id: int, reason: str, reference: str, *, legal_basis: str | None = None
    ) -> ErasureActView:
        """Erase the borrower's personal data and write the act; nothing is written if it is refused."""
        actor.require(Role.ADMIN)
        reason, reference = _text(reason, 'Причина', MAX_REASON), _text(reference, 'Номер обращения', 200)
        basis = ' '.join((legal_basis or '').split()) or None
        with self._sessions.begin() as session:
            borrower = session.get(Borrower, borrower_id, with_for_update=True)
            if borrower is None:
                raise NotFound('Заёмщик не найден')
            if session.scalar(select(ErasureAct.id).where(ErasureAct.borrower_id == borrower_id).limit(1)):
                raise ServiceError('Персональные данные этого заёмщика уже удалены')
            active = session.scalar(
                select(func.count()).where(Loan.borrower_id == borrower_id, Loan.state == 'active')
            )
            if active and not basis:
                raise ServiceError(
                    'У заёмщика есть действующий заём: данные нужны для исполнения договора '
                    '(152-ФЗ, ст. 6 ч. 1 п. 5). Удалить можно, только указав правовое основание '
                    '(решение суда, требование Роскомнадзора)'
                )
            erased = _erase(session, borrower)
            act = ErasureAct(
                borrower_id=borrower_id,
                at=self._clock(),
                by_user_id=actor.id,
                reason=reason,
                reference=reference,
                legal_basis=basis,
                erased=json.dumps(erased, ensure_ascii=False),
            )
            session.add(act)
            session.flush()
            audit.record(
                session,
                'borrower.erase',
                user_id=actor.id,
                borrower_id=borrower_id,
                act_id=act.id,
                reason=reason,
                reference=reference,
                legal_basis=basis,
                active_loans=active,
            )
            return _view(act, borrower.pin, actor.full_name)

    def act(self, actor: Actor, borrower_id: int) -> ErasureActView | None:
        """The borrower's erasure act, if there is one (administrators): to view and print."""
        actor.require(Role.ADMIN)
        with self._sessions() as session:
            found = session.execute(
                select(ErasureAct, Borrower.pin, User.full_name)
                .join(Borrower, Borrower.id == ErasureAct.borrower_id)
                .outerjoin(User, User.id == ErasureAct.by_user_id)
                .where(ErasureAct.borrower_id == borrower_id)
            ).first()
            return _view(*found) if found else None


def _text(value: str | None, label: str, limit: int) -> str:
    value = ' '.join((value or '').split())
    if not value or len(value) > limit:
        raise ServiceError(f'{label}: обязательно, до {limit} символов')
    return value


def _erase(session: Session, borrower: Borrower) -> dict[str, Any]:
    """Overwrite and delete, set-wise; returns what was erased (fields and row counts) for the act."""
    bid = borrower.id
    fields = [name for name, label in FIELD_LABELS.items() if getattr(borrower, name) is not None]
    for name, value in BORROWER_FIELDS.items():
        setattr(borrower, name, value)
    session.flush()
    connection = session.connection()

    def run(statement: Any) -> int:
        return int(connection.execute(statement).rowcount or 0)

    comms, outbox, requests = (cast(Table, m.__table__) for m in (Communication, OutboxMessage, Request))
    return {
        'borrower': fields,
        'phones': run(delete(BorrowerPhone).where(BorrowerPhone.borrower_id == bid)),
        'communications': run(
            update(comms)
            .where(comms.c.borrower_id == bid)
            .values(comment=None, body=None, subject=None, phone=None, hidden_reason=None)
        ),
        'outbox_messages': run(
            update(outbox).where(outbox.c.borrower_id == bid).values(to_address=ERASED, subject=None, body='')
        ),
        'chats': run(update(Chat).where(Chat.borrower_id == bid).values(sender=ERASED)),
        'requests': run(
            update(requests)
            .where(requests.c.borrower_id == bid)
            .values(subject=ERASED, text='', search_text='')
        ),
        'request_events': run(
            update(RequestEvent)
            .where(RequestEvent.request_id.in_(select(Request.id).where(Request.borrower_id == bid)))
            .values(text='')
        ),
        'bureau_reports': run(delete(BureauReport).where(BureauReport.borrower_id == bid)),
    }


def _view(act: ErasureAct, pin: str, by_name: str | None) -> ErasureActView:
    return ErasureActView(
        id=act.id,
        borrower_id=act.borrower_id,
        pin=pin,
        at=act.at,
        by_name=by_name,
        reason=act.reason,
        reference=act.reference,
        legal_basis=act.legal_basis,
        erased=json.loads(act.erased),
    )
