"""Screen pops read with the commit that recorded the call: the card rides in the consumer's transaction.

A ring must put the whole card on the operator's screen in tens of milliseconds. Read by the tab after
the commit, the card cost a transaction of its own (a connection, BEGIN, COMMIT), a second read of the
call just written, and a thread competing for the interpreter with the event loop that was sending
the caller's name. Read here instead — in the same transaction, by the thread that recorded the call,
for the operators whose tabs this process holds (``watch``) — the card and its audit entry commit with
the call, and the tab finds them ready (``take``) the moment the notification reaches it.

Only a few pops of a run are read so (``INLINE_PER_RUN``): in a burst, the first ring must not wait for
the last one's card; the rest are read by their tabs, as are pops for tabs of other processes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from crm.domain.contact_rules import Verdict
from crm.services.borrowers import BorrowerService
from crm.services.call_views import CallView
from crm.services.views import BorrowerCard

INLINE_PER_RUN = 4  # pops of one run read in its transaction
KEPT = 256  # read pops kept for the tabs (taken right after the commit), the oldest dropped first


@dataclass(frozen=True)
class PoppedCall:
    """What an operator's tab shows for a ring: the call, and the caller's card if the number is known."""

    call: CallView
    card: BorrowerCard | None = None
    verdict: Verdict | None = None


@dataclass(frozen=True)
class Ring:
    """A call just recorded, as the incoming handler knows it, with the operator it rings for."""

    call: CallView
    operator_id: int


class ScreenPopReads:
    """Pops read in the recording transaction, kept for this process's tabs; thread-safe."""

    def __init__(self, borrowers: BorrowerService) -> None:
        self._borrowers = borrowers
        self._watched: Callable[[str], bool] = lambda _extension: False
        self._kept: OrderedDict[str, tuple[int, PoppedCall]] = OrderedDict()  # call id -> (user id, pop)
        self._lock = threading.Lock()

    def watch(self, watched: Callable[[str], bool]) -> None:
        """Read pops for the extensions ``watched`` says this process has tabs of (none until called)."""
        self._watched = watched

    def watches(self, extension: str) -> bool:
        return self._watched(extension)

    def read(self, session: Session, rings: Sequence[Ring]) -> None:
        """In the transaction that recorded ``rings``: read the card of each watched one (a few a run).

        Kept now, taken after the commit: a rolled-back run's pops are never announced, so never taken.
        """
        read = 0
        for ring in rings:
            if read == INLINE_PER_RUN:
                return
            if ring.call.extension is None or not self.watches(ring.call.extension):
                continue
            popped = PoppedCall(ring.call)
            if ring.call.borrower_id is not None:
                card, verdict = self._borrowers.card_with_verdict_in(
                    session, ring.operator_id, ring.call.borrower_id
                )
                popped = PoppedCall(ring.call, card, verdict)
            read += 1
            self._keep(ring.call.call_id, ring.operator_id, popped)

    def take(self, call_id: str, user_id: int) -> PoppedCall | None:
        """The pop read for ``call_id`` if it was read for this user (every tab of theirs may take it)."""
        with self._lock:
            kept = self._kept.get(call_id)
        if kept is None or kept[0] != user_id:
            return None
        return kept[1]

    def _keep(self, call_id: str, user_id: int, popped: PoppedCall) -> None:
        with self._lock:
            self._kept[call_id] = (user_id, popped)
            self._kept.move_to_end(call_id)
            while len(self._kept) > KEPT:
                self._kept.popitem(last=False)
