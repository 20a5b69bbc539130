"""«Видимость полей»: the admin's matrix role × field, read by every process, and the audited reveal.

The matrix is cached per process. At most every ``CHECK_EVERY`` the cache asks the one version row
(``field_visibility_version``, bumped by every save) and re-reads the cells only when the number moved,
so a save in one process takes effect in every other within seconds, without a restart; the process
that saved sees it at once. ``card_for`` / ``row_for`` apply a role's row of the matrix to the views
the borrower services return — the one place the masking happens.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from crm.db.models import Borrower, BorrowerPhone, FieldVisibility, FieldVisibilityVersion
from crm.domain import Role
from crm.domain.actor import Actor
from crm.domain.clock import Clock, system_clock
from crm.domain.errors import AccessDenied, NotFound
from crm.domain.field_visibility import ROLES, Field, Mode, Policy, RoleView
from crm.domain.identifiers import format_passport, format_phone, format_snils
from crm.services import audit
from crm.services import views as v

CHECK_EVERY = timedelta(seconds=3)  # how stale another process's save may be here, at most


class FieldVisibilityService:
    def __init__(self, sessions: sessionmaker[Session], *, clock: Clock = system_clock) -> None:
        self._sessions = sessions
        self._clock = clock
        self._lock = threading.Lock()
        self._policy: Policy | None = None
        self._checked_at: datetime | None = None

    # --- reading ----------------------------------------------------------------------------------
    def policy(self) -> Policy:
        """The matrix as of at most ``CHECK_EVERY`` ago (one small query when that much passed)."""
        now = self._clock()
        with self._lock:
            cached, checked = self._policy, self._checked_at
        if cached is not None and checked is not None and now - checked < CHECK_EVERY:
            return cached
        with self._sessions() as session:
            version = session.scalar(
                select(FieldVisibilityVersion.version).where(FieldVisibilityVersion.id == 1)
            )
            if cached is None or version != cached.version:
                cached = _read(session, version or 0)
        with self._lock:
            self._policy, self._checked_at = cached, now
        return cached

    def view_for(self, role: str) -> RoleView:
        return self.policy().of(role)

    def matrix(self, actor: Actor) -> Policy:
        """The matrix as it is now, for the admin page (read afresh)."""
        actor.require(Role.ADMIN)
        self._forget()
        return self.policy()

    # --- saving -----------------------------------------------------------------------------------
    def save(self, actor: Actor, cells: Mapping[tuple[str, str], Mode]) -> Policy:
        """Replace the matrix (admins); the changed cells are audited as 'field.visibility'."""
        actor.require(Role.ADMIN)
        wanted = {(_role(role), Field(name).value): Mode(mode) for (role, name), mode in cells.items()}
        with self._sessions.begin() as session:
            # the version row, locked by its update, orders concurrent saves
            bumped = session.execute(
                update(FieldVisibilityVersion)
                .where(FieldVisibilityVersion.id == 1)
                .values(
                    version=FieldVisibilityVersion.version + 1, updated_at=self._clock(), updated_by=actor.id
                )
            )
            if bumped.rowcount == 0:  # type: ignore[attr-defined]
                session.execute(
                    insert(FieldVisibilityVersion).values(id=1, version=1, updated_at=self._clock())
                )
            before = _read(session, 0)
            complete = {
                (r, f.value): wanted.get((r, f.value), before.mode(r, f)) for r in ROLES for f in Field
            }
            changes = {
                f'{role}.{name}': f'{before.mode(role, Field(name))}→{mode}'
                for (role, name), mode in complete.items()
                if before.mode(role, Field(name)) != mode
            }
            session.execute(delete(FieldVisibility))
            session.execute(
                insert(FieldVisibility),
                [
                    {'role': role, 'field': name, 'mode': mode.value}
                    for (role, name), mode in complete.items()
                ],
            )
            if changes:
                audit.record(session, 'field.visibility', user_id=actor.id, changes=changes)
        self._forget()
        return self.policy()

    def _forget(self) -> None:
        with self._lock:
            self._policy, self._checked_at = None, None

    # --- revealing and dialling -------------------------------------------------------------------
    def reveal(self, actor: Actor, borrower_id: int, field: str, *, phone_id: int | None = None) -> str:
        """The clear value of a field the actor sees masked, audited as 'field.reveal' (which field, and
        which phone; never the value). Refused for a field the actor's role does not see at all."""
        try:
            name = Field(field)
        except ValueError:
            raise NotFound('Нет такого поля') from None
        if self.view_for(actor.role).modes[name] is Mode.HIDDEN:
            raise AccessDenied('Это поле скрыто для вашей роли')
        with self._sessions.begin() as session:
            value = _clear_value(session, borrower_id, name, phone_id)
            details: dict[str, object] = {'field': name.value}
            if phone_id is not None:
                details['phone_id'] = phone_id
            audit.record(session, 'field.reveal', user_id=actor.id, borrower_id=borrower_id, **details)
        return value

    def dial_number(self, actor: Actor, borrower_id: int, phone_id: int) -> str:
        """The number to dial for one of the borrower's phones, whatever the label shows (never to a page's
        browser: the page hands it to the call service). Refused when the role does not see phones."""
        if self.view_for(actor.role).modes[Field.PHONES] is Mode.HIDDEN:
            raise AccessDenied('Телефоны скрыты для вашей роли')
        with self._sessions() as session:
            number = session.scalar(
                select(BorrowerPhone.phone).where(
                    BorrowerPhone.id == phone_id, BorrowerPhone.borrower_id == borrower_id
                )
            )
        if number is None:
            raise NotFound('Телефон не найден')
        return number

    # --- applying ---------------------------------------------------------------------------------
    def card_for(self, role: str, card: v.BorrowerCard) -> v.BorrowerCard:
        return card_for(self.view_for(role), card)

    def row_for(self, role: str, row: v.BorrowerRow) -> v.BorrowerRow:
        return row_for(self.view_for(role), row)


def _role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f'unknown role {role!r}')
    return role


def _read(session: Session, version: int) -> Policy:
    rows = session.execute(select(FieldVisibility.role, FieldVisibility.field, FieldVisibility.mode)).all()
    cells = {(role, name): Mode(mode) for role, name, mode in rows if name in Field.__members__.values()}
    return Policy(cells=cells, version=version)


def _clear_value(session: Session, borrower_id: int, field: Field, phone_id: int | None) -> str:
    borrower = session.get(Borrower, borrower_id)
    if borrower is None:
        raise NotFound('Заёмщик не найден')
    if field is Field.PHONES:
        phones = [p for p in borrower.phones if phone_id is None or p.id == phone_id]
        if not phones:
            raise NotFound('Телефон не найден')
        return ', '.join(format_phone(p.phone) for p in phones)
    if field is Field.BIRTH_DATE:
        return borrower.birth_date.strftime('%d.%m.%Y')
    raw: str | None = getattr(borrower, field.value)
    if raw is None:
        return '—'
    if field is Field.PASSPORT:
        return format_passport(raw)
    return format_snils(raw) if field is Field.SNILS else raw


def card_for(view: RoleView, card: v.BorrowerCard) -> v.BorrowerCard:
    """The card as a role may see it: hidden fields None, masked ones masked and named in ``masked``."""
    birth_date, birth_year = view.birth_date(card.birth_date) if card.birth_date else (None, None)
    numbers = view.phones(tuple(p.number for p in card.phones))
    return replace(
        card,
        birth_date=birth_date,
        birth_year=birth_year,
        inn=view.text(Field.INN, card.inn),
        snils=view.text(Field.SNILS, card.snils),
        passport=view.text(Field.PASSPORT, card.passport),
        passport_issued=view.text(Field.PASSPORT_ISSUED, card.passport_issued),
        email=view.text(Field.EMAIL, card.email),
        address=view.text(Field.ADDRESS, card.address, city=card.city),
        employer=view.text(Field.EMPLOYER, card.employer),
        phones=tuple(replace(p, number=n) for p, n in zip(card.phones, numbers, strict=False)),
        communications=tuple(_contact_for(view, item) for item in card.communications),
        masked=frozenset(f.value for f in view.masked()),
        hidden=frozenset(f.value for f in view.hidden()),
    )


def _contact_for(view: RoleView, item: v.CommunicationItem) -> v.CommunicationItem:
    """A contact of the card's history: the number it was with, as the role sees phones."""
    if item.phone is None or view.modes[Field.PHONES] is Mode.VISIBLE:
        return item
    shown = view.phones((item.phone,))
    return replace(item, phone=shown[0] if shown else None)


def row_for(view: RoleView, row: v.BorrowerRow) -> v.BorrowerRow:
    """A line of the list or of search results as a role may see it."""
    birth_date, birth_year = view.birth_date(row.birth_date) if row.birth_date else (None, None)
    return replace(
        row,
        birth_date=birth_date,
        birth_year=birth_year,
        phones=view.phones(row.phones),
        passport=view.text(Field.PASSPORT, row.passport),
    )
