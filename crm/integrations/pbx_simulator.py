"""A built-in PBX for trying the whole call loop with `make run` alone.

It speaks the same contract as a real PBX: it publishes telephony events to crm.events and reacts
to the CRM's commands on crm.commands (dial, hold, resume, transfer, hangup). Recordings are small
WAV files it generates, served by the app under /pbx-sim/recordings/.
"""

from __future__ import annotations

import io
import logging
import math
import struct
import threading
import uuid
import wave
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from crm.domain.clock import Clock, system_clock
from crm.integrations.bus import EventBus

log = logging.getLogger(__name__)

RECORDINGS_PATH = '/pbx-sim/recordings'
QUEUE = 'main'  # the simulator's one queue; it reports it whenever an inbound call rings, is answered or ends
# The simulated PBX's own words for its lines (a PBX's view: a line rings; the CRM's call is incoming)
LINE_STATES = {
    'ringing': 'Звонит',
    'active': 'Разговор',
    'on_hold': 'Удержание',
    'ended': 'Завершён',
    'transferred': 'Переведён',
}


@dataclass
class SimCall:
    call_id: str
    direction: str  # in | out
    number: str
    extension: str
    started_at: datetime
    state: str = 'ringing'  # ringing | active | on_hold | ended | transferred
    answered_at: datetime | None = None
    ended_at: datetime | None = None


class PbxSimulator:
    def __init__(
        self,
        bus: EventBus,
        *,
        base_url: str = '',
        auto_answer_s: float | None = 2.0,
        clock: Clock = system_clock,
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._base_url = base_url.rstrip('/')
        self.auto_answer_s = auto_answer_s
        self._calls: dict[str, SimCall] = {}
        self._lock = threading.Lock()
        self.version = 0  # bumps on every change, so a page can redraw only when needed

    def attach(self) -> None:
        self._bus.subscribe_commands(self.on_command)

    # --- what the admin does on the simulator page ---------------------------------------------
    def ring(self, number: str, extension: str) -> SimCall:
        call = SimCall(
            call_id=f'sim-{uuid.uuid4().hex[:12]}',
            direction='in',
            number=number,
            extension=extension,
            started_at=self._clock(),
        )
        self._store(call)
        self._publish('telephony.call.incoming', call, {'from': number, 'to_extension': extension})
        self.queue_status()
        return call

    def answer(self, call_id: str) -> None:
        call = self._calls.get(call_id)
        if call is None or call.state != 'ringing':
            return
        call.state, call.answered_at = 'active', self._clock()
        self._changed()
        self._publish('telephony.call.answered', call)
        if call.direction == 'in':
            self.queue_status()

    def end(self, call_id: str) -> None:
        call = self._calls.get(call_id)
        if call is None or call.state in ('ended', 'transferred'):
            return
        call.state, call.ended_at = 'ended', self._clock()
        self._changed()
        duration = int((call.ended_at - call.answered_at).total_seconds()) if call.answered_at else 0
        extra: dict[str, Any] = {'duration_s': duration}
        if call.answered_at:
            extra['recording_url'] = f'{self._base_url}{RECORDINGS_PATH}/{call.call_id}.wav'
        self._publish('telephony.call.ended', call, extra)
        if call.direction == 'in':
            self.queue_status()

    def calls(self) -> list[SimCall]:
        with self._lock:
            return sorted(self._calls.values(), key=lambda c: c.started_at, reverse=True)[:50]

    # --- what the CRM asks for ------------------------------------------------------------------
    def on_command(self, command: str, body: dict[str, Any]) -> None:
        call_id = str(body.get('call_id', ''))
        if command == 'telephony.dial':
            call = SimCall(
                call_id=call_id,
                direction='out',
                started_at=self._clock(),
                number=str(body.get('number')),
                extension=str(body.get('extension')),
            )
            self._store(call)
            if self.auto_answer_s is not None:
                threading.Timer(self.auto_answer_s, self.answer, args=(call_id,)).start()
        elif command == 'telephony.hangup':
            self.end(call_id)
        elif command in ('telephony.hold', 'telephony.resume') and call_id in self._calls:
            self._calls[call_id].state = 'on_hold' if command == 'telephony.hold' else 'active'
            self._changed()
        elif command == 'telephony.transfer' and call_id in self._calls:
            self._transfer(self._calls[call_id], str(body.get('to_extension')))
        else:
            log.info('simulator: %s for unknown call %s ignored', command, call_id)

    def _transfer(self, call: SimCall, to_extension: str) -> None:
        """The caller now rings the other extension: a new leg, as a real PBX reports it."""
        call.state, call.ended_at = 'transferred', self._clock()
        self._changed()
        duration = int((call.ended_at - call.answered_at).total_seconds()) if call.answered_at else 0
        self._publish('telephony.call.ended', call, {'duration_s': duration})
        leg = SimCall(
            call_id=f'{call.call_id}-t{uuid.uuid4().hex[:4]}',
            direction='in',
            started_at=self._clock(),
            number=call.number,
            extension=to_extension,
        )
        self._store(leg)
        self._publish('telephony.call.incoming', leg, {'from': call.number, 'to_extension': to_extension})

    def _store(self, call: SimCall) -> None:
        with self._lock:
            self._calls[call.call_id] = call
        self._changed()

    def _changed(self) -> None:
        self.version += 1

    def queue_status(self) -> dict[str, Any]:
        """``telephony.queue.status`` of the one queue: callers ringing and the longest of their waits."""
        now = self._clock()
        with self._lock:
            ringing = [c for c in self._calls.values() if c.direction == 'in' and c.state == 'ringing']
        longest = max((int((now - c.started_at).total_seconds()) for c in ringing), default=0)
        body = {'queue': QUEUE, 'waiting': len(ringing), 'longest_wait_s': max(0, longest)}
        body['at'] = now.isoformat()
        self._bus.publish_event('telephony.queue.status', body)
        return body

    def _publish(self, event: str, call: SimCall, extra: dict[str, Any] | None = None) -> None:
        body = {'call_id': call.call_id, 'at': self._clock().isoformat(), **(extra or {})}
        self._bus.publish_event(event, body)


def recording_wav(call_id: str, seconds: float = 1.5) -> bytes:
    """A short two-tone WAV standing in for a conversation recording (8 kHz mono)."""
    rate = 8000
    pitch = 440 + (sum(call_id.encode()) % 200)
    frames = b''.join(
        struct.pack(
            '<h',
            int(8000 * math.sin(2 * math.pi * (pitch if i < rate * seconds / 2 else pitch * 1.5) * i / rate)),
        )
        for i in range(int(rate * seconds))
    )
    buffer = io.BytesIO()
    with wave.open(buffer, 'wb') as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    return buffer.getvalue()
