"""Requests (обращения, issue 10 §1): what operators, supervisors and administrators do with them.

Every inbound contact opens a request for the borrower or joins their open one (``request_hooks``); an
operator may also write one down by hand (``open``). Operators see theirs and the unassigned queue and
take one (``take``: of two operators clicking at once, one gets it); they move only their own requests on.
Supervisors and administrators move any and (re)assign them. Statuses go by
``crm.domain.requests.TRANSITIONS``; ``answer`` records the operator's answer (a history line and a
``note`` communication in the borrower's history; nothing is sent) and resolves the request. Each change
is a line of the request's history (that is its audit) and, after the commit, a ``RequestsChanged`` with
the count of new requests for every tab's header.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from crm.db.models import Borrower, Communication, Request, RequestTopic, User
from crm.domain import Role
from crm.domain.actor import Actor
from crm.domain.clock import Clock, system_clock
from crm.domain.contact_rules import CallLimits
from crm.domain.errors import AccessDenied, NotFound, ServiceError
from crm.domain.notifications import HistoryChanged, Notification, RequestsChanged
from crm.domain.requests import (
    OPEN_STATUSES,
    REQUEST_STATUS_LABELS,
    TRANSITIONS,
    RequestChannel,
    RequestEventKind,
    RequestOrigin,
    RequestStatus,
)
from crm.services import request_reads as reads
from crm.services.notifier import Notifier
from crm.services.request_reads import RequestEventView, RequestView, TopicView
from crm.services.request_store import OPEN_SQL, Opening, add_lines, line, new_count, open_or_join

__all__ = ['RequestEventView', 'RequestService', 'RequestView', 'TopicView']

MAX_SUBJECT = 200
MAX_TEXT = 4000
MAX_TOPIC_NAME = 100
TOPIC_CODE = re.compile(r'[a-z][a-z0-9_]{1,31}')
BY_HAND = frozenset(c for c in RequestChannel if c != RequestChannel.SYSTEM)
NOT_FOUND = 'Обращение не найдено'
TAKE_FIRST = 'Сначала возьмите обращение в работу'
NOT_YOURS = 'Это обращение другого сотрудника'
FINISHED = 'Обращение уже решено или закрыто'

Act = Callable[[Session, Request, datetime], list[Notification]]


class RequestService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        notifier: Notifier,
        *,
        limits: CallLimits,
        clock: Clock = system_clock,
    ) -> None:
        self._sessions = sessions
        self._notifier = notifier
        self._limits = limits  # the production calendar of the 230-FZ rules: the deadline's working days
        self._clock = clock

    # --- reading ------------------------------------------------------------------------------
    def get(self, request_id: int) -> RequestView:
        with self._sessions() as session:
            return self._view(session, request_id)

    def history(self, request_id: int) -> list[RequestEventView]:
        with self._sessions() as session:
            return reads.history(session, request_id)

    def of_borrower(self, borrower_id: int) -> list[RequestView]:
        with self._sessions() as session:
            return reads.views(session, Request.borrower_id == borrower_id, self._clock(), self._limits)

    def new_count(self) -> int:
        """Requests in status «Новое»: the header's badge."""
        with self._sessions() as session:
            return new_count(session)

    def queue_count(self, actor: Actor) -> int:
        """New requests for this actor to act on: an operator's own and the unassigned ones; all for a
        supervisor or an administrator."""
        where = Request.status == RequestStatus.NEW.value
        if not actor.sees_everyone:
            where = where & ((Request.assignee_id == actor.id) | Request.assignee_id.is_(None))
        with self._sessions() as session:
            return reads.count(session, where)

    def topics(self, include_retired: bool = False) -> list[TopicView]:
        with self._sessions() as session:
            return reads.topics(session, include_retired)

    # --- opening ------------------------------------------------------------------------------
    def open(
        self, actor: Actor, borrower_id: int, *, channel: str, topic_code: str, subject: str, text: str
    ) -> RequestView:
        """Written down by hand: joins the borrower's open request (a history line with the text) or
        opens one, assigned to the operator who wrote it (a supervisor's goes to the queue)."""
        if channel not in BY_HAND:
            raise ServiceError('Выберите канал обращения')
        subject = _text(subject, 'Тема', MAX_SUBJECT, required=True)
        body = _text(text, 'Текст обращения', MAX_TEXT)
        now = self._clock()
        with self._sessions.begin() as session:
            if session.get(Borrower, borrower_id) is None:
                raise NotFound('Заёмщик не найден')
            _active_topic(session, topic_code)
            opening = Opening(
                borrower_id=borrower_id,
                channel=channel,
                at=now,
                subject=subject,
                text=body,
                topic_code=topic_code,
                assignee_id=actor.id if actor.role == Role.OPERATOR else None,
                actor_id=actor.id,
                note=f'{subject}\n{body}'.strip(),
            )
            (joined,) = open_or_join(session, RequestOrigin.CONTACT, [opening], self._limits)
            if not joined.opened:  # the open request gets the topic if it had none
                session.execute(
                    update(Request)
                    .where(Request.id == joined.request_id, Request.topic_code.is_(None))
                    .values(topic_code=topic_code)
                )
            notes = self._changed(session, joined.request_id, borrower_id)
            view = self._view(session, joined.request_id)
        self._notifier.publish(notes)
        return view

    # --- acting -------------------------------------------------------------------------------
    def take(self, actor: Actor, request_id: int) -> RequestView:
        """Take an unassigned request: it is the actor's and «В работе». The UPDATE is the check: of two
        operators taking it at once, the second finds it taken and is told by whom."""
        now = self._clock()
        with self._sessions.begin() as session:
            row = session.execute(
                select(Request.status, Request.assignee_id).where(Request.id == request_id)
            ).first()
            if row is None:
                raise NotFound(NOT_FOUND)
            status = (
                RequestStatus.IN_PROGRESS if row.status == RequestStatus.NEW else RequestStatus(row.status)
            )
            taken = session.execute(
                update(Request)
                .where(
                    Request.id == request_id,
                    Request.assignee_id.is_(None),
                    Request.status == row.status,
                    text(OPEN_SQL),
                )
                .values(assignee_id=actor.id, status=status.value, updated_at=now)
            ).rowcount  # type: ignore[attr-defined]
            if not taken:
                return self._not_taken(session, actor, request_id)
            add_lines(
                session,
                [
                    line(
                        request_id,
                        now,
                        RequestEventKind.TAKEN,
                        actor_id=actor.id,
                        from_status=row.status,
                        to_status=status,
                        assignee_id=actor.id,
                    )
                ],
            )
            session.expire_all()
            view = self._view(session, request_id)
            notes = self._changed(session, request_id, view.borrower_id)
        self._notifier.publish(notes)
        return view

    def _not_taken(self, session: Session, actor: Actor, request_id: int) -> RequestView:
        view = self._view(session, request_id)
        if not view.is_open:
            raise ServiceError(FINISHED)
        if view.assignee_id == actor.id:
            return view  # a second click of the same operator
        if view.assignee_id is None:  # its status changed between the read and the update
            raise ServiceError('Обращение только что изменилось: попробуйте ещё раз')
        raise ServiceError(f'Обращение уже взял в работу {view.assignee_name}')

    def assign(self, actor: Actor, request_id: int, operator_id: int) -> RequestView:
        """Supervisors and administrators give a request to an active operator (or supervisor)."""
        if not actor.sees_everyone:
            raise AccessDenied('Назначать обращения могут руководители групп и администраторы')

        def act(session: Session, request: Request, now: datetime) -> list[Notification]:
            user = session.get(User, operator_id)
            if user is None or not user.active or user.role not in (Role.OPERATOR, Role.SUPERVISOR):
                raise ServiceError('Назначить можно только действующего сотрудника')
            if request.status not in OPEN_STATUSES:
                raise ServiceError(FINISHED)
            if request.assignee_id != operator_id:
                request.assignee_id = operator_id
                _add(session, request, now, actor, RequestEventKind.ASSIGNED, assignee_id=operator_id)
            return []

        return self._act(actor, request_id, act, check=False)

    def set_status(self, actor: Actor, request_id: int, status: str, comment: str = '') -> RequestView:
        """Move a request on (``TRANSITIONS``); an operator only their own («В работе» of an unassigned
        one takes it). «Решено» stamps resolved_at; reopening clears it."""
        try:
            target = RequestStatus(status)
        except ValueError:
            raise ServiceError('Неизвестный статус обращения') from None
        note = _text(comment, 'Комментарий', MAX_TEXT)

        def act(session: Session, request: Request, now: datetime) -> list[Notification]:
            current = RequestStatus(request.status)
            if request.assignee_id is None and target == RequestStatus.IN_PROGRESS:
                request.assignee_id = actor.id
            else:
                _may_change(actor, request)
            if target == current:
                raise ServiceError(f'Обращение уже в статусе «{REQUEST_STATUS_LABELS[target]}»')
            if target not in TRANSITIONS[current]:
                raise ServiceError(
                    f'Из статуса «{REQUEST_STATUS_LABELS[current]}» нельзя перейти '
                    f'в «{REQUEST_STATUS_LABELS[target]}»'
                )
            if current not in OPEN_STATUSES and target in OPEN_STATUSES:
                _no_other_open(session, request)
            request.status = target.value
            request.resolved_at = now if target == RequestStatus.RESOLVED else request.resolved_at
            if target in OPEN_STATUSES:
                request.resolved_at = None
            _add(
                session,
                request,
                now,
                actor,
                RequestEventKind.STATUS,
                from_status=current,
                to_status=target,
                assignee_id=request.assignee_id,
                text=note,
            )
            return []

        return self._act(actor, request_id, act, check=False)

    def set_topic(self, actor: Actor, request_id: int, topic_code: str) -> RequestView:
        def act(session: Session, request: Request, now: datetime) -> list[Notification]:
            if request.status == RequestStatus.CLOSED:
                raise ServiceError('Обращение закрыто')
            name = _active_topic(session, topic_code)
            if request.topic_code != topic_code:
                request.topic_code = topic_code
                _add(session, request, now, actor, RequestEventKind.TOPIC, text=name)
            return []

        return self._act(actor, request_id, act)

    def comment(self, actor: Actor, request_id: int, text: str) -> RequestView:
        """A comment in the history: anyone who sees the request may write one."""
        note = _text(text, 'Комментарий', MAX_TEXT, required=True)

        def act(session: Session, request: Request, now: datetime) -> list[Notification]:
            _add(session, request, now, actor, RequestEventKind.COMMENT, text=note)
            return []

        return self._act(actor, request_id, act, check=False)

    def answer(self, actor: Actor, request_id: int, text: str) -> RequestView:
        """The operator's answer: a ``note`` communication in the borrower's history (recorded, not sent)
        and the history line; the request is «Решено»."""
        body = _text(text, 'Ответ', MAX_TEXT, required=True)

        def act(session: Session, request: Request, now: datetime) -> list[Notification]:
            if request.status not in OPEN_STATUSES:
                raise ServiceError(FINISHED)
            communication = Communication(
                borrower_id=request.borrower_id,
                operator_id=actor.id,
                channel='note',
                direction='out',
                started_at=now,
                comment=body,
                collection=False,
            )
            session.add(communication)
            session.flush()
            current = request.status
            request.status = RequestStatus.RESOLVED.value
            request.resolved_at = now
            _add(
                session,
                request,
                now,
                actor,
                RequestEventKind.ANSWER,
                from_status=current,
                to_status=RequestStatus.RESOLVED,
                communication_id=communication.id,
                text=body,
            )
            return [HistoryChanged(request.borrower_id)]

        return self._act(actor, request_id, act)

    def _act(self, actor: Actor, request_id: int, act: Act, *, check: bool = True) -> RequestView:
        """One change of one request, its row locked; ``check``: an operator only on their own."""
        now = self._clock()
        with self._sessions.begin() as session:
            request = session.get(Request, request_id, with_for_update=True)
            if request is None:
                raise NotFound(NOT_FOUND)
            if check:
                _may_change(actor, request)
            notes = act(session, request, now)
            request.updated_at = now
            session.flush()
            notes += self._changed(session, request.id, request.borrower_id)
            view = self._view(session, request.id)
        self._notifier.publish(notes)
        return view

    # --- topics (administrators) ----------------------------------------------------------------
    def save_topic(self, actor: Actor, code: str, name: str, active: bool, *, new: bool = False) -> TopicView:
        """Create a topic (``new``, or a code not known yet) or rename / retire / restore one."""
        actor.require(Role.ADMIN)
        code = (code or '').strip()
        if not TOPIC_CODE.fullmatch(code):
            raise ServiceError('Код темы: 2–32 латинские строчные буквы, цифры или «_», начиная с буквы')
        name = _text(name, 'Название темы', MAX_TOPIC_NAME, required=True)
        with self._sessions.begin() as session:
            topic = session.get(RequestTopic, code)
            if topic is not None and new:
                raise ServiceError(f'Тема с кодом «{code}» уже есть')
            taken = session.scalar(
                select(RequestTopic.code).where(RequestTopic.name == name, RequestTopic.code != code)
            )
            if taken is not None:
                raise ServiceError(f'Тема «{name}» уже есть')
            if topic is None:
                last = session.scalar(select(func.max(RequestTopic.position))) or 0
                topic = RequestTopic(code=code, name=name, active=active, position=last + 1)
                session.add(topic)
            else:
                topic.name, topic.active = name, active
            return TopicView(topic.code, topic.name, topic.active)

    # --- helpers --------------------------------------------------------------------------------
    def _view(self, session: Session, request_id: int) -> RequestView:
        found = reads.views(session, Request.id == request_id, self._clock(), self._limits)
        if not found:
            raise NotFound(NOT_FOUND)
        return found[0]

    @staticmethod
    def _changed(session: Session, request_id: int, borrower_id: int) -> list[Notification]:
        return [RequestsChanged(new_count(session), (borrower_id,), (request_id,))]


def _may_change(actor: Actor, request: Request) -> None:
    """An operator acts only on their own requests; supervisors and administrators on any."""
    if actor.sees_everyone or request.assignee_id == actor.id:
        return
    raise ServiceError(TAKE_FIRST if request.assignee_id is None else NOT_YOURS)


def _no_other_open(session: Session, request: Request) -> None:
    """Reopening: the borrower may have opened another request of this origin meanwhile."""
    other = session.scalar(
        select(Request.id).where(
            Request.borrower_id == request.borrower_id,
            Request.origin == request.origin,
            Request.id != request.id,
            text(OPEN_SQL),
        )
    )
    if other is not None:
        raise ServiceError(f'У заёмщика уже есть открытое обращение № {other}: продолжите его')


def _add(
    session: Session, request: Request, now: datetime, actor: Actor, kind: RequestEventKind, **values: object
) -> None:
    add_lines(session, [line(request.id, now, kind, actor_id=actor.id, **values)])  # type: ignore[arg-type]


def _active_topic(session: Session, code: str | None) -> str:
    topic = session.get(RequestTopic, code) if code else None
    if topic is None or not topic.active:
        raise ServiceError('Выберите тему обращения из списка')
    return topic.name


def _text(value: str | None, what: str, limit: int, *, required: bool = False) -> str:
    value = (value or '').strip()
    if required and not value:
        raise ServiceError(f'{what}: заполните поле')
    if len(value) > limit:
        raise ServiceError(f'{what}: не длиннее {limit} символов (сейчас {len(value)})')
    if '\x00' in value:
        raise ServiceError(f'{what}: недопустимый символ (NUL)')
    return value
