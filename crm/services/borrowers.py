"""Borrowers: the operator's list, search by any identifier, and the card (every view audited)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, union
from sqlalchemy.orm import InstrumentedAttribute, Session, selectinload, sessionmaker

from crm.db.models import (
    Borrower,
    BorrowerPhone,
    Loan,
    User,
)
from crm.domain import Role, search_query
from crm.domain.actor import Actor
from crm.domain.clock import Clock, system_clock
from crm.domain.contact_rules import LegalFlag, Verdict
from crm.domain.errors import AccessDenied, NotFound
from crm.services import audit, cards
from crm.services import views as v
from crm.services.compliance import ComplianceService, legal_flags
from crm.services.field_visibility import FieldVisibilityService, row_for
from crm.services.promises import flagged, promise_filter
from crm.services.views import SORTS, ListQuery

SORT_COLUMNS: dict[str, InstrumentedAttribute] = {  # ListQuery.sort → the column (views.SORTS)
    'name': Borrower.search_name,
    'total_debt': Borrower.total_debt,
    'overdue_amount': Borrower.overdue_amount,
    'days_past_due': Borrower.days_past_due,
    'last_contact_at': Borrower.last_contact_at,
}
SEARCH_LIMIT = 50
assert set(SORT_COLUMNS) == set(SORTS)


@dataclass(frozen=True)
class OperatorOption:
    id: int
    login: str
    full_name: str


class BorrowerService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        compliance: ComplianceService | None = None,
        clock: Clock = system_clock,
        visibility: FieldVisibilityService | None = None,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        # what each role sees of the personal fields: applied to every card and row leaving this service
        self.visibility = visibility or FieldVisibilityService(sessions, clock=clock)
        self._compliance = compliance or ComplianceService(sessions)  # the card's verdict on a call now

    # --- the list -------------------------------------------------------------------------------
    def list_borrowers(self, actor: Actor, query: ListQuery | None = None) -> v.Page:
        """Borrowers assigned to the operator (supervisors and admins: anyone's, or everyone's)."""
        query = query or ListQuery()
        operator_id = self._list_scope(actor, query.operator_id)
        if query.sort not in SORT_COLUMNS:
            raise ValueError(f'unknown sort column {query.sort!r}')
        per_page = min(max(query.per_page, 1), 200)
        page = max(query.page, 1)
        conditions: list[ColumnElement[bool]] = [Borrower.archived.is_(False)]
        if operator_id is not None:
            conditions.append(Borrower.assigned_operator_id == operator_id)
        if query.overdue_only:
            conditions.append(Borrower.days_past_due > 0)
        if query.promises is not None:
            conditions.append(promise_filter(query.promises, self._clock()))
        column = SORT_COLUMNS[query.sort]
        order = column.desc().nulls_last() if query.descending else column.asc().nulls_last()
        tiebreak = Borrower.id.desc() if query.descending else Borrower.id.asc()
        with self._sessions() as session:
            total = session.scalar(select(func.count()).select_from(Borrower).where(*conditions)) or 0
            rows = session.scalars(
                self._rows_query()
                .where(*conditions)
                .order_by(order, tiebreak)
                .offset((page - 1) * per_page)
                .limit(per_page)
            ).all()
            broken = flagged(session, [b.id for b in rows], self._clock())  # «Нарушено обещание»
            items = self._to_rows(session, rows, broken)
        return v.Page(items=self._visible(actor.role, items), total=total, page=page, per_page=per_page)

    def _list_scope(self, actor: Actor, operator_id: int | None) -> int | None:
        if actor.sees_everyone:
            return operator_id
        if operator_id not in (None, actor.id):
            raise AccessDenied('Сотрудник видит в списке только своих заёмщиков')
        return actor.id

    def operators(self, actor: Actor) -> list[OperatorOption]:
        """Operators to filter the list by (supervisors and admins)."""
        actor.require(Role.SUPERVISOR, Role.ADMIN)
        with self._sessions() as session:
            users = session.scalars(
                select(User).where(User.role == Role.OPERATOR, User.active.is_(True)).order_by(User.login)
            )
            return [OperatorOption(id=u.id, login=u.login, full_name=u.full_name) for u in users]

    def sample_phones(self, actor: Actor, limit: int = 200) -> list[str]:
        """Main phones of active borrowers, for an administrator to ring from on the PBX simulator."""
        actor.require(Role.ADMIN)
        with self._sessions() as session:
            return list(
                session.scalars(
                    select(BorrowerPhone.phone)
                    .join(Borrower, Borrower.id == BorrowerPhone.borrower_id)
                    .where(BorrowerPhone.is_primary.is_(True), Borrower.archived.is_(False))
                    .order_by(BorrowerPhone.id)
                    .limit(limit)
                )
            )

    # --- search ---------------------------------------------------------------------------------
    def search(
        self,
        actor: Actor,
        text: str,
        *,
        archive: bool = False,
        limit: int = SEARCH_LIMIT,
        seen_as: str | None = None,
    ) -> v.SearchResult:
        """Any borrower by name parts, phone, passport, PIN, INN or SNILS (BadQuery if too short or too long).

        Operators may find any borrower, not only their own: they take calls from anyone. The rows show
        what ``seen_as`` (the HTTP API's row of «Видимость полей»; by default the actor's role) may see.
        """
        parsed = search_query.parse(text)
        with self._sessions() as session:
            if isinstance(parsed, search_query.Identifier):
                condition = _identifier_condition(parsed, session.get_bind().dialect.name)
            elif isinstance(parsed, search_query.Email):
                condition = func.lower(Borrower.email) == parsed.address
            else:
                condition = _name_condition(parsed)
            conditions = [condition] if archive else [condition, Borrower.archived.is_(False)]
            ordered = self._rows_query().order_by(Borrower.search_name, Borrower.id)
            if not isinstance(parsed, search_query.NameParts):  # a handful of rows at most: one query
                rows = session.scalars(ordered.where(*conditions).limit(limit + 1)).all()
                more, rows = len(rows) > limit, rows[:limit]
            else:
                # Take the first matches as the index finds them, then sort only those: sorting every
                # match of a common fragment (thousands of rows) before the limit is what costs.
                ids = session.scalars(select(Borrower.id).where(*conditions).limit(limit + 1)).all()
                rows = session.scalars(ordered.where(Borrower.id.in_(ids[:limit]))).all()
                more = len(ids) > limit
            items = self._to_rows(session, rows)
        return v.SearchResult(items=self._visible(seen_as or actor.role, items), more=more)

    # --- the card -------------------------------------------------------------------------------
    def card(self, actor: Actor, borrower_id: int) -> v.BorrowerCard:
        """Everything about one borrower; the view is written to the audit log in the same transaction."""
        with self._sessions.begin() as session:
            borrower = cards.viewed(session, actor.id, borrower_id)
            card = cards.card(session, borrower, with_hidden=actor.role == Role.ADMIN)
        return self.visibility.card_for(actor.role, card)

    def card_again(self, actor: Actor, borrower_id: int) -> v.BorrowerCard:
        """The card once more, for a tab that shows it already (a payment, a contact arrived): not a new
        view, so not audited."""
        with self._sessions() as session:
            borrower = session.get(Borrower, borrower_id)
            if borrower is None:
                raise NotFound('Заёмщик не найден')
            card = cards.card(session, borrower, with_hidden=actor.role == Role.ADMIN)
        return self.visibility.card_for(actor.role, card)

    def card_with_verdict(self, actor: Actor, borrower_id: int) -> tuple[v.BorrowerCard, Verdict]:
        """The card and whether the borrower may be called now, in one transaction: what a tab shows."""
        with self._sessions.begin() as session:
            return self.card_with_verdict_in(
                session, actor.id, borrower_id, with_hidden=actor.role == Role.ADMIN, role=actor.role
            )

    def card_with_verdict_in(
        self,
        session: Session,
        user_id: int,
        borrower_id: int,
        *,
        with_hidden: bool = False,
        role: str | None = None,
    ) -> tuple[v.BorrowerCard, Verdict]:
        """The same in the caller's transaction (a screen pop read with the commit of its call; hidden
        records only ``with_hidden``, for an administrator). The fields are shown as ``role`` (by default
        the user's) may see them."""
        borrower = cards.viewed(session, user_id, borrower_id)
        card = cards.card(session, borrower, with_hidden=with_hidden)
        role = role or session.scalar(select(User.role).where(User.id == user_id)) or ''
        return self.visibility.card_for(role, card), self._compliance.verdict_on(session, borrower)

    def set_legal_flags(
        self, actor: Actor, borrower_id: int, flags: Iterable[LegalFlag]
    ) -> tuple[LegalFlag, ...]:
        """Record the borrower's legal status (supervisors and admins; every change is audited)."""
        actor.require(Role.SUPERVISOR, Role.ADMIN)
        wanted = set(flags)
        with self._sessions.begin() as session:
            borrower = session.get(Borrower, borrower_id)
            if borrower is None:
                raise NotFound('Заёмщик не найден')
            before = set(legal_flags(borrower))
            for flag in LegalFlag:
                setattr(borrower, flag.value, flag in wanted)
            if before != wanted:
                audit.record(
                    session,
                    'borrower.legal_status',
                    user_id=actor.id,
                    borrower_id=borrower_id,
                    added=sorted(wanted - before),
                    removed=sorted(before - wanted),
                )
            return tuple(legal_flags(borrower))

    def history(self, actor: Actor, borrower_id: int) -> tuple[tuple[v.CommunicationItem, ...], int]:
        """The newest communications and their total, to refresh a card that is already open."""
        with self._sessions() as session:
            return cards.history_of(session, borrower_id, with_hidden=actor.role == Role.ADMIN)

    # --- shared ---------------------------------------------------------------------------------
    def _visible(self, role: str, rows: tuple[v.BorrowerRow, ...]) -> tuple[v.BorrowerRow, ...]:
        seen = self.visibility.view_for(role)
        return tuple(row_for(seen, row) for row in rows)

    @staticmethod
    def _rows_query() -> Select[Borrower]:
        return select(Borrower).options(selectinload(Borrower.phones))

    @staticmethod
    def _to_rows(
        session: Session, borrowers: Sequence[Borrower], broken: Set[int] = frozenset()
    ) -> tuple[v.BorrowerRow, ...]:
        ids = [b.id for b in borrowers]
        loans = _loans_of(session, ids)
        operators = _operators(session, {b.assigned_operator_id for b in borrowers})
        return tuple(
            v.BorrowerRow(
                id=b.id,
                pin=b.pin,
                full_name=b.full_name,
                birth_date=b.birth_date,
                city=b.city,
                phones=tuple(p.phone for p in b.phones),
                passport=b.passport,
                total_debt=b.total_debt,
                overdue_amount=b.overdue_amount,
                days_past_due=b.days_past_due,
                last_contact_at=b.last_contact_at,
                operator_login=operators.get(b.assigned_operator_id, (None, None))[0],
                operator_name=operators.get(b.assigned_operator_id, (None, None))[1],
                archived=b.archived,
                loan=next(iter(loans.get(b.id, ())), None),
                loans=tuple(loans.get(b.id, ())),
                broken_promise=b.id in broken,
            )
            for b in borrowers
        )


def _identifier_condition(key: search_query.Identifier, dialect: str) -> ColumnElement[bool]:
    """One index lookup per key the digits could be, united: an OR across tables would scan."""
    lookups = [select(Borrower.id).where(Borrower.pin == key.pin)]
    if key.loan_number:
        lookups.append(select(Loan.borrower_id).where(Loan.number == key.loan_number))
    if key.phone_tail:
        lookups.append(select(BorrowerPhone.borrower_id).where(_phone_ends_with(key.phone_tail, dialect)))
    if key.passport:
        lookups.append(select(Borrower.id).where(Borrower.passport == key.passport))
    if key.inn:
        lookups.append(select(Borrower.id).where(Borrower.inn == key.inn))
    if key.snils:
        lookups.append(select(Borrower.id).where(Borrower.snils == key.snils))
    if key.phone:
        lookups.append(select(BorrowerPhone.borrower_id).where(BorrowerPhone.phone == key.phone))
    return Borrower.id.in_(union(*lookups) if len(lookups) > 1 else lookups[0])


def _phone_ends_with(tail: str, dialect: str) -> ColumnElement[bool]:
    """Phones ending with these digits. PostgreSQL finds them by the prefix of the reversed number (an
    index, migration 0004); SQLite, the embedded default with a small base, reads the phones."""
    if dialect == 'postgresql':
        return func.reverse(BorrowerPhone.phone).like(tail[::-1] + '%')
    return BorrowerPhone.phone.like('%' + tail)


def _name_condition(parts: search_query.NameParts) -> ColumnElement[bool]:
    # search_name is stored normalised, and parse() normalised the fragments the same way
    conditions = [Borrower.search_name.contains(f, autoescape=True) for f in parts.fragments]
    conditions += [
        or_(Borrower.search_name.startswith(i, autoescape=True), Borrower.search_name.contains(f' {i}'))
        for i in parts.initials
    ]
    return and_(*conditions)


def _loans_of(session: Session, borrower_ids: Iterable[int]) -> dict[int, list[v.LoanBrief]]:
    """Each borrower's loans, newest first."""
    ids = list(borrower_ids)
    if not ids:
        return {}
    loans: dict[int, list[v.LoanBrief]] = {}
    rows = session.scalars(
        select(Loan)
        .where(Loan.borrower_id.in_(ids))
        .order_by(Loan.borrower_id, Loan.issued_on.desc(), Loan.id.desc())
    )
    for loan in rows:
        loans.setdefault(loan.borrower_id, []).append(
            v.LoanBrief(
                number=loan.number,
                product=loan.product,
                state=loan.state,
                status_code=loan.status_code,
                status_name=loan.status_name,
                overdue_amount=loan.overdue_amount,
                days_past_due=loan.days_past_due,
            )
        )
    return loans


def _operators(session: Session, ids: set[int | None]) -> dict[int | None, tuple[str, str]]:
    """Login and full name of each operator."""
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    rows = session.execute(select(User.id, User.login, User.full_name).where(User.id.in_(wanted)))
    return {row.id: (row.login, row.full_name) for row in rows}
