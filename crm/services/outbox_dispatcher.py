"""The outbox dispatcher: a background worker that claims due messages, checks the law again, sends them
and records what came of each. Any number of app processes may run one against the same database.

One pass (``run_once``; the worker runs ``lanes`` of them at once, so one sends while another claims or
records):

1. **Claim**, in one short transaction. Per channel the cluster's token bucket (``send_rates``, the row
   locked ``FOR UPDATE``, refilled by the time elapsed × the rate, at most one second's worth) says how
   many may go; that many due rows — ``status IN ('queued', 'sending') AND not_before <= now`` ordered by
   ``not_before, created_at`` (never by id: rows commit out of order) — are locked ``FOR UPDATE SKIP
   LOCKED``, so two processes never take the same row. A collection message is checked against 230-FZ
   again, now, in the borrower's zone: held ones go back to ``queued`` until the next allowed moment, a
   legal flag or no allowed moment before ``expires_at`` refuses it; a queued row past ``expires_at``
   expires. The rest become ``sending`` with one more attempt, **leased**: ``not_before`` moves to now +
   the lease, so if this process dies mid-send the row is due again after the lease and goes again
   under the same key, which the gateway dedupes.
2. **Send** outside any transaction, several at once (a thread pool).
3. **Record**, in one transaction with set-wise statements (``outbox_store``): accepted → ``sent`` (a
   secret body masked in the same statement); a temporary failure → ``queued`` after an exponential
   backoff with full jitter, or ``failed`` after the last attempt; a permanent one → ``failed`` with the
   gateway's reason (a secret masked too). Every try is an ``outbox_attempts`` row. A delivery report
   that came first is not downgraded, and one that came by the gateway's id is applied now.
4. **Notify** after each commit: one ``HistoryChanged`` per borrower touched.

Logs name row ids and keys, never texts, phones or addresses.
"""

from __future__ import annotations

import html
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crm.db.models import Borrower
from crm.domain.clock import Clock, system_clock
from crm.domain.messages import MessageChannel, OutboxStatus, Purpose
from crm.integrations.delivery import PermanentFailure, TemporaryFailure
from crm.integrations.mail import EmailMessage, Mailer
from crm.integrations.sms import SmsGateway, SmsMessage
from crm.services import outbox_store as store
from crm.services.compliance import LEDGER_DAYS, VERDICT_COLUMNS, ComplianceService, ContactSubject
from crm.services.notifier import Notifier
from crm.services.outbox import apply_stored_reports, history_changed

log = logging.getLogger(__name__)

EXPIRED = 'Истёк срок отправки'
NO_WINDOW = 'до истечения срока отправки нет разрешённого момента'


@dataclass(frozen=True)
class DispatchPolicy:
    """How fast and how often: the rates hold for the whole cluster (a channel without one is unlimited)."""

    rates: Mapping[str, float] = field(default_factory=dict)  # messages per second, per channel
    max_attempts: int = 8
    sms_sender: str = 'CRM'
    mail_from: str = 'CRM <noreply@localhost>'
    batch: int = 500  # rows claimed per channel and pass
    concurrency: int = 8  # sends at once
    lanes: int = 2  # passes at once in the worker: one claims and records while another sends
    lease: timedelta = timedelta(seconds=60)  # longer than any gateway's timeout
    backoff_base: float = 2.0  # seconds; the n-th retry waits up to base × 2^(n-1), at most backoff_cap
    backoff_cap: float = 600.0
    poll_seconds: float = 0.5  # the pause when nothing is due


@dataclass(frozen=True)
class _Claimed:
    id: int
    key: str
    channel: str
    borrower_id: int | None
    communication_id: int | None
    to: str
    subject: str | None
    body: str
    secret: bool
    attempts: int  # with this one


@dataclass(frozen=True)
class _Result:
    message: _Claimed
    outcome: str  # accepted | retry | failed
    at: datetime
    duration_ms: int
    gateway_id: str | None = None
    detail: str | None = None


@dataclass
class _Pass:
    handled: int = 0
    limited: bool = False  # a token bucket had less than a batch


class OutboxDispatcher:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        sms: SmsGateway,
        mail: Mailer,
        compliance: ComplianceService,
        notifier: Notifier,
        policy: DispatchPolicy = DispatchPolicy(),  # frozen, so sharing the default is safe
        clock: Clock = system_clock,
        rng: random.Random | None = None,
    ) -> None:
        self._sessions = sessions
        self._sms = sms
        self._mail = mail
        self._compliance = compliance
        self._notifier = notifier
        self.policy = policy
        self._clock = clock
        self._rng = rng or random.Random()
        self._pool = ThreadPoolExecutor(policy.concurrency, thread_name_prefix='crm-outbox-send')
        self._lock = threading.Lock()
        # One claim at a time in this process: on SQLite, which ignores FOR UPDATE, that is what keeps
        # two lanes from taking the same rows (SQLite is one process); on PostgreSQL the locks do it.
        self._claiming = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            if self._threads:
                return
            self._stopping.clear()
            self._threads = [
                threading.Thread(target=self._run, name=f'crm-outbox-{lane}', daemon=True)
                for lane in range(max(self.policy.lanes, 1))
            ]
            for thread in self._threads:
                thread.start()

    def stop(self) -> None:
        """Finish the passes in flight (their sends are recorded), then stop; idempotent."""
        with self._lock:
            threads, self._threads = self._threads, []
            self._stopping.set()
        for thread in threads:
            thread.join(timeout=60)
        self._pool.shutdown(wait=True)

    def _run(self) -> None:
        log.info('outbox dispatcher started')
        while not self._stopping.is_set():
            try:
                done = self._pass(None)
            except Exception as error:  # the database is away, say: try again a little later
                log.warning('outbox pass failed (%s); retrying', type(error).__name__, exc_info=True)
                self._stopping.wait(2.0)
                continue
            if done.handled >= self.policy.batch:
                continue
            self._stopping.wait(0.05 if done.limited else self.policy.poll_seconds)
        log.info('outbox dispatcher stopped')

    # --- one pass -------------------------------------------------------------------------------
    def run_once(self, now: datetime | None = None) -> int:
        """One pass: claim, send, record. The number of messages dealt with (sent, retried, failed,
        held, refused or expired); 0 when nothing was due or the rate let nothing go."""
        return self._pass(now).handled

    def _pass(self, now: datetime | None) -> _Pass:
        done = _Pass()
        with self._claiming, self._sessions.begin() as session:
            claimed, settled, done.limited = self._claim(session, now or self._clock())
        done.handled = len(claimed) + len(settled)
        self._notifier.publish(history_changed(s.borrower_id for s in settled))
        if not claimed:
            return done
        results = self._send_all(claimed, now)
        with self._sessions.begin() as session:
            touched = self._record(session, results)
        self._notifier.publish(history_changed(touched))
        counts = {kind: sum(r.outcome == kind for r in results) for kind in ('accepted', 'retry', 'failed')}
        log.info(
            'outbox: %d sent, %d to retry, %d failed, %d held/refused/expired',
            counts['accepted'],
            counts['retry'],
            counts['failed'],
            len(settled),
        )
        return done

    # --- claim ----------------------------------------------------------------------------------
    def _claim(self, session: Session, now: datetime) -> tuple[list[_Claimed], list[store.Settled], bool]:
        claimed: list[_Claimed] = []
        settled: list[store.Settled] = []
        limited = False
        for channel in MessageChannel:  # always in this order: the buckets' locks never cross
            rate = self.policy.rates.get(channel.value)
            bucket = store.TokenBucket.open(session, channel.value, rate, now) if rate else None
            wanted = self.policy.batch if bucket is None else min(self.policy.batch, bucket.whole)
            rows = []
            if wanted > 0:
                due = {'now': now, 'channel': channel.value, 'n': wanted}
                rows = list(session.connection().execute(store.DUE, due))
            limited = limited or len(rows) == wanted < self.policy.batch  # the rate cut it short
            going, held = self._judge(session, rows, now)
            if going:
                store.mark_sending(session, [row.id for row in going], now + self.policy.lease)
                claimed += [_claimed(row) for row in going]
            settled += held
            if bucket is not None:
                bucket.spend(session, len(going))
        store.write_settled(session, settled, now)
        return claimed, settled, limited

    def _judge(
        self, session: Session, rows: Sequence[Any], now: datetime
    ) -> tuple[list[Any], list[store.Settled]]:
        """Which rows go now; the others held or refused by the law, or expired."""
        collection = {
            row.borrower_id for row in rows if row.purpose == Purpose.COLLECTION and row.borrower_id
        }
        borrowers: dict[int, Any] = {}  # rows of VERDICT_COLUMNS
        ledger: dict[int, list[store.Counted]] = {}
        if collection:
            found = session.execute(select(*VERDICT_COLUMNS).where(Borrower.id.in_(sorted(collection))))
            borrowers = {borrower.id: borrower for borrower in found}
            ledger = store.ledger(session, list(borrowers), now - timedelta(days=LEDGER_DAYS))
        going: list[Any] = []
        settled: list[store.Settled] = []
        for row in rows:
            # expiry ends a message that never went; a lease that ran out may hide one that did, and
            # that one goes again under its key (the gateway answers for it) whatever its expiry
            if row.status == OutboxStatus.QUEUED and row.expires_at <= now:
                settled.append(
                    store.Settled(row.id, row.borrower_id, row.communication_id, 'expired', EXPIRED)
                )
                continue
            borrower = borrowers.get(row.borrower_id) if row.purpose == Purpose.COLLECTION else None
            refusal = None if borrower is None else self._law(borrower, ledger[borrower.id], row, now)
            if refusal is None:
                going.append(row)
            else:
                settled.append(refusal)
        return going, settled

    def _law(
        self, borrower: ContactSubject, ledger: list[store.Counted], row: Any, now: datetime
    ) -> store.Settled | None:
        """None if the collection message may go now; else held until the next allowed moment, or
        refused (a legal flag, or no allowed moment before it expires).

        It counts what was sent, and of what waits only what comes before it (by moment, then id): so
        of messages queued together past a limit the first ones go and the rest wait their turn,
        instead of each holding the others back.
        """
        own = (row.counted_at, row.communication_id or 0)
        counted = [
            entry.at
            for entry in ledger
            if entry.communication_id != row.communication_id
            and (not entry.waiting or (entry.at, entry.communication_id) < own)
        ]
        verdict = self._compliance.message_verdict(borrower, counted, now=now)
        if verdict.allowed:
            return None
        reason = verdict.reason or ''
        when = verdict.next_allowed_at
        if when is not None and when <= row.expires_at:
            return store.Settled(
                row.id, row.borrower_id, row.communication_id, 'held', reason, verdict.rule, when
            )
        if when is not None:
            reason = f'{reason}; {NO_WINDOW}'
        return store.Settled(row.id, row.borrower_id, row.communication_id, 'refused', reason, verdict.rule)

    # --- send -----------------------------------------------------------------------------------
    def _send_all(self, claimed: list[_Claimed], now: datetime | None) -> list[_Result]:
        """Every message handed over, ``concurrency`` at a time (a share of the batch per thread)."""
        shares = [claimed[i :: self.policy.concurrency] for i in range(self.policy.concurrency)]
        done = self._pool.map(lambda share: [self._send(m, now) for m in share], [s for s in shares if s])
        return [result for share in done for result in share]

    def _send(self, message: _Claimed, now: datetime | None) -> _Result:
        at = now or self._clock()
        started = time.monotonic()
        try:
            gateway_id = self._hand_over(message)
        except TemporaryFailure as error:
            return _Result(message, 'retry', at, _ms_since(started), detail=error.reason)
        except PermanentFailure as error:
            return _Result(message, 'failed', at, _ms_since(started), detail=error.reason)
        except Exception as error:  # an adapter's bug must not stop the others; retried like an outage
            log.warning(
                'outbox %d (%s): the gateway adapter raised %s', message.id, message.key, type(error).__name__
            )
            return _Result(
                message, 'retry', at, _ms_since(started), detail=f'Сбой адаптера: {type(error).__name__}'
            )
        return _Result(message, 'accepted', at, _ms_since(started), gateway_id=gateway_id)

    def _hand_over(self, message: _Claimed) -> str:
        if message.channel == MessageChannel.SMS:
            return self._sms.send(SmsMessage(message.key, message.to, message.body, self.policy.sms_sender))
        return self._mail.send(
            EmailMessage(
                id=message.key,
                to=message.to,
                subject=message.subject or '',
                text=message.body,
                html=as_html(message.body),
                sender=self.policy.mail_from,
            )
        )

    # --- record ---------------------------------------------------------------------------------
    def _record(self, session: Session, results: list[_Result]) -> set[int | None]:
        """What came of the sends, set-wise; the borrowers whose history changed."""
        connection = session.connection()
        results = sorted(results, key=lambda r: r.message.id)  # one lock order for every process
        accepted = [r for r in results if r.outcome == 'accepted']
        retried: list[_Result] = []
        failed: list[_Result] = []
        for result in results:
            if result.outcome == 'retry' and result.message.attempts >= self.policy.max_attempts:
                failed.append(result)
            elif result.outcome == 'retry':
                retried.append(result)
            elif result.outcome == 'failed':
                failed.append(result)
        store.ACCEPT.execute(
            connection, [{'id': r.message.id, 'gateway_id': r.gateway_id, 'at': r.at} for r in accepted]
        )
        store.COMMUNICATION_SENT.execute(connection, _communication_rows(accepted, 'sent', lambda r: r.at))
        moved = {r.message.id: self._retry_at(r) for r in retried}
        store.RETRY.execute(
            connection,
            [{'id': r.message.id, 'not_before': moved[r.message.id], 'reason': r.detail} for r in retried],
        )
        store.FAIL.execute(connection, [self._failed_row(r) for r in failed])
        store.COMMUNICATION.execute(connection, _communication_rows(failed, 'failed', lambda r: None))
        store.insert_attempts(
            connection,
            [
                {
                    'message_id': r.message.id,
                    'at': r.at,
                    'outcome': r.outcome,
                    'detail': r.detail,
                    'duration_ms': r.duration_ms,
                }
                for r in results
            ],
        )
        touched: set[int | None] = {r.message.borrower_id for r in results}
        gateway_ids = [
            r.gateway_id for r in accepted if r.gateway_id and r.message.channel == MessageChannel.SMS
        ]
        touched |= set(apply_stored_reports(session, gateway_ids))
        return touched

    def _retry_at(self, result: _Result) -> datetime:
        """Exponential backoff with full jitter: the retries of one outage spread out."""
        attempt = max(result.message.attempts, 1)
        ceiling = min(self.policy.backoff_cap, self.policy.backoff_base * 2 ** min(attempt - 1, 30))
        return result.at + timedelta(seconds=self._rng.uniform(0, ceiling))

    def _failed_row(self, result: _Result) -> dict[str, object]:
        reason = result.detail or 'Шлюз отказал'
        if result.outcome == 'retry':
            reason = f'Не отправлено за {result.message.attempts} попыток: {reason}'
        return {'id': result.message.id, 'reason': reason, 'at': result.at}


def _claimed(row: Any) -> _Claimed:
    return _Claimed(
        id=row.id,
        key=row.key,
        channel=row.channel,
        borrower_id=row.borrower_id,
        communication_id=row.communication_id,
        to=row.to_address,
        subject=row.subject,
        body=row.body,
        secret=row.secret,
        attempts=row.attempts + 1,
    )


def _communication_rows(
    results: Sequence[_Result], status: str, started_at: Callable[[_Result], datetime | None]
) -> list[dict[str, Any]]:
    return [
        {'id': r.message.communication_id, 'status': status, 'started_at': started_at(r)}
        for r in sorted(results, key=lambda r: r.message.communication_id or 0)
        if r.message.communication_id is not None
    ]


def as_html(text: str) -> str:
    """The HTML part of an e-mail: the text, escaped, its lines kept."""
    return '<html><body><p>' + html.escape(text).replace('\n', '<br>\n') + '</p></body></html>'


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
