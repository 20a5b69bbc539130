"""E-mails in (``email.received``): the mail system hands over each letter to the lender's mailbox.

The sender is found by e-mail address, case-insensitive (``lower(email)``, the index
``ix_borrowers_email_lower``). A letter is an ``email`` communication of direction ``in`` (its subject in
``subject``, its text in ``body``) and, from a known borrower, a contact that opens their request or joins
the open one (``request_hooks.join_contacts``, channel ``email``), all in the router's transaction.

Nothing is lost: a letter from an address no borrower has — or one that several active borrowers share,
where picking one would put a stranger's letter into someone's card — is recorded without a borrower, with
the sender in ``comment``, and opens no request. Only a body that fails validation is dead-lettered (by the
router, before this module sees it).

The borrower wrote first, so nothing here counts against the 230-FZ limits (``collection=False``).
The router hands ``email_received`` a run of events whose keys it claimed; the run costs the same handful
of statements for one letter or a hundred.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from crm.db.bulk import insert_many
from crm.db.models import Borrower, Communication
from crm.domain import INBOUND_EMAIL_LABEL
from crm.domain.contact_rules import CallLimits
from crm.domain.notifications import HistoryChanged
from crm.services.chats import LAST_CONTACT
from crm.services.event_schemas import EmailReceived, Event
from crm.services.inbound import Outcome
from crm.services.request_hooks import DEFAULT_LIMITS, Contact, contacts_changed, join_contacts

log = logging.getLogger(__name__)

MAX_SUBJECT = 300  # communications.subject's size; the whole subject stays in inbound_events
UNKNOWN_SENDER = 'Отправитель не найден среди заёмщиков: {address}'
SHARED_SENDER = 'Адрес есть у нескольких заёмщиков: {address}'

_communications = cast(Table, Communication.__table__)


def email_received(session: Session, events: Sequence[Event], limits: CallLimits = DEFAULT_LIMITS) -> Outcome:
    """Record a run of letters; a known sender's open or join their request; their cards redraw."""
    letters = sorted((e for e in events if isinstance(e, EmailReceived)), key=lambda e: e.at)
    outcome = Outcome()
    if not letters:
        return outcome
    owners = senders_of(session, {m.from_ for m in letters})
    ids = insert_many(
        session.connection(),
        _communications,
        [_communication(m, owners) for m in letters],
    )
    contacts = [
        Contact(borrower_id, 'email', communication_id, m.at, m.subject or INBOUND_EMAIL_LABEL, m.text)
        for m, communication_id in zip(letters, ids, strict=True)
        if (borrower_id := owners.get(m.from_.lower())) is not None
    ]
    outcome.notifications += contacts_changed(session, join_contacts(session, contacts, limits=limits))
    latest: dict[int, datetime] = {c.borrower_id: c.at for c in contacts}  # in time order: the last wins
    if latest:
        session.connection().execute(
            LAST_CONTACT, [{'b_id': b, 'b_at': at} for b, at in sorted(latest.items())]
        )
    outcome.notifications += [HistoryChanged(b) for b in sorted(latest)]
    return outcome


def _communication(letter: EmailReceived, owners: dict[str, int | None]) -> dict[str, object]:
    subject = letter.subject
    if len(subject) > MAX_SUBJECT:
        subject = subject[: MAX_SUBJECT - 1] + '…'
    address = letter.from_.lower()
    borrower_id = owners.get(address)
    comment = None
    if borrower_id is None:  # the sender is all there is to go by later: kept beside the letter
        log.info('e-mail %s: no single borrower has its sender; recorded without one', letter.message_id)
        comment = (SHARED_SENDER if address in owners else UNKNOWN_SENDER).format(address=letter.from_)
    return {
        'borrower_id': borrower_id,
        'operator_id': None,
        'channel': 'email',
        'direction': 'in',
        'started_at': letter.at,
        'subject': subject or None,
        'body': letter.text,
        'comment': comment,
        'collection': False,
    }


def senders_of(session: Session, addresses: Iterable[str]) -> dict[str, int | None]:
    """The borrower each address (lower-cased) belongs to; None when several share it.

    Active borrowers before archived ones: an address that one active borrower has is theirs even if an
    archived record has it too. An address nobody has is not in the result.
    """
    wanted = sorted({a.lower() for a in addresses})
    address = func.lower(Borrower.email)
    rows = session.execute(
        select(address, Borrower.id, Borrower.archived).where(address.in_(wanted)).order_by(Borrower.id)
    ).all()
    holders: dict[str, dict[bool, list[int]]] = {}
    for lowered, borrower_id, archived in rows:
        holders.setdefault(lowered, {}).setdefault(bool(archived), []).append(borrower_id)
    found: dict[str, int | None] = {}
    for lowered, by_archived in holders.items():
        first = by_archived.get(False) or by_archived.get(True) or []
        found[lowered] = first[0] if len(first) == 1 else None
    return found
