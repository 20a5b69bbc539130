"""The states of a call and their Russian names: the one map every screen uses."""

from __future__ import annotations

from enum import StrEnum


class CallState(StrEnum):
    """State machine (the PBX's events drive it; hold and transfer follow the operator's commands):

    ringing --answered--> active <--hold/resume--> on_hold
    dialing --answered--> active
    ringing | dialing | active | on_hold --ended--> ended
    active | on_hold --transfer--> transferred
    """

    RINGING = 'ringing'
    DIALING = 'dialing'
    ACTIVE = 'active'
    ON_HOLD = 'on_hold'
    TRANSFERRED = 'transferred'
    ENDED = 'ended'

    @property
    def label(self) -> str:
        return CALL_STATE_LABELS[self]

    @property
    def live(self) -> bool:
        return self in LIVE_STATES

    @property
    def talking(self) -> bool:
        """The borrower is on the line (hold and transfer make sense)."""
        return self in (CallState.ACTIVE, CallState.ON_HOLD)


CALL_STATE_LABELS: dict[CallState, str] = {
    CallState.RINGING: 'Входящий звонок',
    CallState.DIALING: 'Набор номера',
    CallState.ACTIVE: 'Разговор',
    CallState.ON_HOLD: 'На удержании',
    CallState.TRANSFERRED: 'Переведён',
    CallState.ENDED: 'Завершён',
}
LIVE_STATES = frozenset({CallState.RINGING, CallState.DIALING, CallState.ACTIVE, CallState.ON_HOLD})
DONE_STATES = frozenset({CallState.ENDED, CallState.TRANSFERRED})
