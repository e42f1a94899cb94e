"""The caller's keypad, acted on.

    digits ... terminator or a pause ─> one caller turn "[keypad] 1234", answered like speech
    an escape key alone ─> at once: "repeat" the last reply, "hangup" (goodbye), "transfer:NAME"

Runs on the event loop: ``press`` for each digit the SIP adapter reports,
``tick`` for the inter-digit timeout from the ticker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

from victoria_sip.application.keypad import DigitCollector, EscapeKey, KeypadEntry
from victoria_sip.application.utterance import Utterance

if TYPE_CHECKING:
    from victoria_sip.application.put_through import PutThrough
    from victoria_sip.application.reply_speaker import ReplySpeaker
    from victoria_sip.domain import Agent, Call

log = logging.getLogger("victoria.conversation")


class KeypadHost(Protocol):
    """What the keypad asks of the call."""

    @property
    def ending(self) -> bool: ...
    def caller_active(self) -> None: ...  # a key counts as the caller speaking up (no reprompt for a while)
    def start_reply(self, name: str, reply: Callable[[asyncio.Task[None] | None], Awaitable[None]],
                    interrupt: bool = False) -> None: ...
    def end_call(self) -> None: ...


class KeypadActions:
    def __init__(self, call: Call, agent: Agent, speaker: ReplySpeaker, put_through: PutThrough,
                 host: KeypadHost) -> None:
        self.call = call
        keypad = agent.keypad
        self._keypad = DigitCollector(keypad.inter_digit_seconds, keypad.terminator, dict(keypad.escape_keys))
        self._speaker = speaker
        self._put_through = put_through
        self._host = host

    def press(self, key: str) -> None:
        """One DTMF digit from the caller."""
        self._host.caller_active()
        self._on_result(self._keypad.press(key, time.monotonic()))

    def tick(self, now: float) -> None:
        """The inter-digit timeout: an entry ends when the caller stops pressing."""
        if self._keypad.collecting:
            self._on_result(self._keypad.tick(now))

    def _on_result(self, result: KeypadEntry | EscapeKey | None) -> None:
        if result is None or self._host.ending:
            return
        if self._put_through.active and not (isinstance(result, EscapeKey) and result.action == "hangup"):
            log.info("call %s: key ignored while the caller is being put through", self.call.id)
            return
        if isinstance(result, EscapeKey):
            log.info("call %s: escape key %s: %s", self.call.id, result.key, result.action)
            if result.action == "hangup":
                self._host.end_call()
            elif result.action == "repeat":
                self._host.start_reply("repeat", self._speaker.repeat, interrupt=True)
            elif result.action.startswith("transfer:"):
                self._put_through.put_through(result.action.removeprefix("transfer:"), f"caller pressed {result.key}")
            return
        if not result.digits:
            return  # the terminator alone
        log.info("call %s: keypad entry of %d digit(s)", self.call.id, len(result.digits))
        now = time.monotonic()
        transcript = asyncio.get_running_loop().create_future()
        transcript.set_result(f"[keypad] {result.digits}")
        utterance = Utterance(end_of_speech=now, endpoint=now)
        self._host.start_reply("keypad-reply", lambda previous: self._speaker.answer(transcript, utterance, previous),
                               interrupt=True)
