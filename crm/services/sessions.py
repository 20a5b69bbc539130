"""Browser sessions, held in the database: new at every login, ended at logout, refused when idle or old.

The login form runs over the page's WebSocket, which cannot set a cookie; so a right password makes a
session row holding a one-time **ticket** (valid for a minute), the browser is sent to an HTTP route
with it, and that route exchanges the ticket for the session **token** in an HttpOnly cookie. A cookie
planted before the login is never the one that is logged in (no session fixation), and the previous
session of that browser is ended. Only SHA-256 of tickets and tokens is stored.

A session is refused after ``idle`` without a request or an open tab (an open workplace tab reports in
every few minutes, see ``HEARTBEAT_S``) and after ``max_age`` in any case. Sessions in the database are
shared by every app process: a tab that reconnects to another process is still logged in.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from crm.db.models import User, WebSession
from crm.domain.actor import Actor
from crm.domain.clock import Clock, system_clock
from crm.services import audit
from crm.services.auth import to_actor

TICKET_TTL = timedelta(minutes=1)
TOUCH_EVERY = timedelta(minutes=1)  # last_seen_at is written at most this often per session
HEARTBEAT_S = 300  # how often an open tab reports that its session is in use


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class SessionService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        idle: timedelta = timedelta(minutes=30),
        max_age: timedelta = timedelta(days=14),
        clock: Clock = system_clock,
    ) -> None:
        self._sessions = sessions
        self.idle = idle
        self.max_age = max_age
        self._clock = clock

    def begin(self, actor: Actor) -> str:
        """After a right password: a one-time ticket the browser exchanges for its session cookie."""
        ticket = secrets.token_urlsafe(32)
        now = self._clock()
        with self._sessions.begin() as session:
            session.add(
                WebSession(ticket_hash=digest(ticket), user_id=actor.id, created_at=now, last_seen_at=now)
            )
        return ticket

    def exchange(self, ticket: str, previous_token: str | None = None) -> tuple[str, Actor] | None:
        """The new session's token for a fresh ticket (once); the browser's previous session ends."""
        if not ticket:
            return None
        token = secrets.token_urlsafe(32)
        now = self._clock()
        with self._sessions.begin() as session:
            user_id = session.scalar(
                update(WebSession)
                .where(
                    WebSession.ticket_hash == digest(ticket),
                    WebSession.token_hash.is_(None),
                    WebSession.ended_at.is_(None),
                    WebSession.created_at > now - TICKET_TTL,
                )
                .values(ticket_hash=None, token_hash=digest(token), last_seen_at=now)
                .returning(WebSession.user_id)
            )
            user = session.get(User, user_id) if user_id is not None else None
            if user is None or not user.active:
                return None
            if previous_token:
                self._end(session, previous_token)
        return token, to_actor(user)

    def resolve(self, token: str | None) -> Actor | None:
        """The user of a live session, or None (unknown, ended, idle, too old, or the account is off)."""
        if not token:
            return None
        now = self._clock()
        with self._sessions.begin() as session:
            row = session.execute(
                select(WebSession, User)
                .join(User, User.id == WebSession.user_id)
                .where(WebSession.token_hash == digest(token), WebSession.ended_at.is_(None))
            ).first()
            if row is None:
                return None
            web_session, user = row
            if (
                not user.active
                or now - web_session.last_seen_at > self.idle
                or now - web_session.created_at > self.max_age
            ):
                web_session.ended_at = now
                return None
            if now - web_session.last_seen_at > TOUCH_EVERY:
                web_session.last_seen_at = now
            return to_actor(user)

    def end(self, token: str | None) -> None:
        """Logout: the session is over in every tab and process."""
        if not token:
            return
        with self._sessions.begin() as session:
            user_id = self._end(session, token)
            if user_id is not None:
                audit.record(session, 'logout', user_id=user_id)

    def _end(self, session: Session, token: str) -> int | None:
        return session.scalar(
            update(WebSession)
            .where(WebSession.token_hash == digest(token), WebSession.ended_at.is_(None))
            .values(ended_at=self._clock())
            .returning(WebSession.user_id)
        )


def end_user_sessions(session: Session, user_id: int, now: datetime) -> int:
    """End every live session of a user (blocked, or their password reset), in the caller's transaction;
    their open tabs are logged out at their next request. Returns how many were live."""
    ended = session.execute(
        update(WebSession)
        .where(WebSession.user_id == user_id, WebSession.ended_at.is_(None))
        .values(ended_at=now, ticket_hash=None)
    )
    return int(ended.rowcount)  # type: ignore[attr-defined]
