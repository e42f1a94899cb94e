"""The console's test call: a browser's microphone over a WebSocket, the replies back down it.

    leg = BrowserCallLeg(websocket, "boss", loop)   # the CallLeg port, as a SIP call's leg is
    await run_browser_call(leg, handler, "front")   # admitted, answered, carried until either side hangs up

The conversation cannot tell this leg from a SIP one: the same ``CallHandler``
answers it, the same VAD, recogniser, LLM and voice work on its audio, and the
call is stored like any other, with channel ``web``. Audio is 16-bit mono PCM at
16 kHz both ways, in 20 ms frames: the page resamples its microphone to that
(an ``AudioContext`` at 16 kHz) and plays what comes back. The leg's own clock
sends the replies a frame every 20 ms, so a barge-in clears what the browser has
not been sent yet, and ``{"type": "clear"}`` drops what it has buffered.

Messages from the page: binary (microphone audio), ``{"type": "key", "key": "5"}``
(the on-screen keypad), ``{"type": "hangup"}``. To the page: binary (the voice),
``{"type": "answered"|"busy"|"clear"|"ended", ...}``.

A browser cannot be put through: a transfer or consultation is refused at once
(501), and the conversation carries on as it does when a PBX refuses one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

import numpy as np

from victoria_sip.audio.frame_ring import FrameRing
from victoria_sip.audio.leg_audio import LegAudio
from victoria_sip.audio.playout import PlayoutQueue
from victoria_sip.domain import CallId, Encryption, EndReason
from victoria_sip.domain.ports import CallHandler, SpeechAudio

log = logging.getLogger("victoria.console")

SAMPLE_RATE = 16000
FRAME_SAMPLES = SAMPLE_RATE // 50
FRAME_SECONDS = 0.02
RING_FRAMES = 500  # 10 s of microphone audio waiting for the conversation: far more than it ever falls behind
MAX_MESSAGE_BYTES = 64 * 1024  # a browser sends a frame or a few at a time; more is not a microphone
NOT_POSSIBLE = (501, "a browser test call cannot be put through")


class BrowserCallLeg(LegAudio):
    """The ``CallLeg`` port over the console's WebSocket (the audio methods are ``LegAudio``'s)."""

    channel = "web"

    def __init__(self, websocket, user: str, loop: asyncio.AbstractEventLoop) -> None:
        self.call_id = CallId.new()
        self.caller = f"sip:{user}@console"
        self.callee = "browser"
        self.account = None
        self.sample_rate = SAMPLE_RATE
        self.encryption = Encryption()
        self.inbound = FrameRing(FRAME_SAMPLES, RING_FRAMES)
        self.playout = PlayoutQueue(FRAME_SAMPLES)
        self.hung_up = asyncio.Event()  # the agent ended the call
        self.handler: CallHandler | None = None
        self.websocket = websocket
        self._loop = loop
        self._pending = np.zeros(0, np.int16)  # the start of a frame the page has not finished sending
        self._received = self._sent = 0

    # the CallLeg port ----------------------------------------------------------------------------------

    def stop_playout(self) -> None:
        super().stop_playout()
        if self._sent:
            self._later(self.send_json({"type": "clear"}))  # and drop what the page holds, too

    def media_stats(self) -> tuple[int, int]:
        return self._received, self._sent

    def recording_path(self) -> str | None:
        return None

    def transfer(self, target: str) -> None:
        log.warning("call %s: a browser test call cannot be put through to %s", self.call_id, target)
        self._later(self._handler().transfer_finished(self.call_id, *NOT_POSSIBLE))

    def consult(self, target: str) -> _NoConsultation:
        log.warning("call %s: a browser test call cannot be put through to %s", self.call_id, target)
        self._later(self._handler().consultation_answered(self.call_id, *NOT_POSSIBLE))
        return _NoConsultation()

    def transfer_to_consultation(self, consultation) -> None:
        self._later(self._handler().transfer_finished(self.call_id, *NOT_POSSIBLE))

    def hangup(self) -> None:
        self._loop.call_soon_threadsafe(self.hung_up.set)

    # the WebSocket side ---------------------------------------------------------------------------------

    def received(self, pcm: bytes) -> None:
        """Microphone audio from the page, in whole 20 ms frames to the conversation."""
        samples = np.concatenate((self._pending, np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2")))
        whole = len(samples) // FRAME_SAMPLES * FRAME_SAMPLES
        for frame in samples[:whole].reshape(-1, FRAME_SAMPLES):
            self.inbound.write(frame)
        self._received += whole // FRAME_SAMPLES
        self._pending = samples[whole:].copy()

    async def send_voice(self) -> None:
        """The leg's clock: the next frame of the voice every 20 ms, none while there is nothing to say."""
        next_at = time.monotonic()
        while True:
            frame = self.playout.next_frame()
            if frame is not None:
                await self.websocket.send_bytes(frame.astype("<i2").tobytes())
                self._sent += 1
            next_at += FRAME_SECONDS
            delay = next_at - time.monotonic()
            if delay < -0.2:  # the loop was held up: start the clock again rather than rush to catch up
                next_at, delay = time.monotonic(), 0.0
            await asyncio.sleep(max(delay, 0.0))

    async def send_json(self, message: dict) -> None:
        with contextlib.suppress(Exception):  # the page has gone: the call ends anyway
            await self.websocket.send_text(json.dumps(message))

    def _handler(self) -> CallHandler:
        assert self.handler is not None, "the leg is answered before the conversation runs"
        return self.handler

    def _later(self, coroutine) -> None:
        self._loop.call_soon_threadsafe(lambda: asyncio.ensure_future(coroutine))


class _NoConsultation:
    """The consultation a browser call never places: nothing to play to, nobody to hang up."""

    def play(self, audio: SpeechAudio) -> None:
        pass

    def playout_pending(self) -> bool:
        return False

    def send_digits(self, digits: str) -> None:
        pass

    def hangup(self) -> None:
        pass


async def run_browser_call(leg: BrowserCallLeg, handler: CallHandler, agent: str) -> EndReason | None:
    """The whole call, the WebSocket already accepted: admitted or told busy, answered, carried until the page
    or the agent hangs up; then ended like a SIP call. Returns how it ended (None: refused, no headroom)."""
    websocket = leg.websocket
    overload = handler.admit(agent)
    if overload is not None:
        log.warning("browser test call for agent %r refused: no headroom (%s): %s", agent, overload.reason,
                    overload.detail)
        await handler.call_rejected(leg.call_id, leg.caller, leg.callee, EndReason.BUSY)
        await leg.send_json({"type": "busy", "detail": f"no headroom for one more call ({overload.reason})"})
        return None
    leg.handler = handler
    await handler.call_answered(leg, agent)
    await leg.send_json({"type": "answered", "call": leg.call_id.value})
    clock = asyncio.create_task(leg.send_voice(), name=f"web-voice-{leg.call_id}")
    agent_hung_up = asyncio.create_task(leg.hung_up.wait())
    reason = EndReason.CALLER_HANGUP
    try:
        while True:
            message = asyncio.create_task(websocket.receive())
            done, _ = await asyncio.wait({message, agent_hung_up}, return_when=asyncio.FIRST_COMPLETED)
            if agent_hung_up in done:
                message.cancel()
                reason = EndReason.AGENT_HANGUP
                break
            received = message.result()
            if received["type"] == "websocket.disconnect":
                break
            if received.get("bytes") is not None:
                if len(received["bytes"]) > MAX_MESSAGE_BYTES:
                    log.warning("call %s: %d bytes in one message is not a microphone: hanging up", leg.call_id,
                                len(received["bytes"]))
                    break
                leg.received(received["bytes"])
            elif received.get("text") is not None and await _control(leg, handler, received["text"]):
                break
    finally:
        clock.cancel()
        agent_hung_up.cancel()
        await handler.call_ended(leg.call_id, reason)
        await leg.send_json({"type": "ended", "reason": reason.value})
    return reason


async def _control(leg: BrowserCallLeg, handler: CallHandler, text: str) -> bool:
    """A message from the page's buttons; True when it hangs up."""
    try:
        message = json.loads(text)
        kind = message["type"]
    except (ValueError, KeyError, TypeError):
        log.warning("call %s: ignored a message from the page that is not ours: %r", leg.call_id, text[:100])
        return False
    if kind == "hangup":
        return True
    if kind == "key" and isinstance(message.get("key"), str) and len(message["key"]) == 1 \
            and message["key"] in "0123456789*#ABCD":
        await handler.keypad_pressed(leg.call_id, message["key"])
    return False
