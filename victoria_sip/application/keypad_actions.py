"""Part of ``CallSession``: the caller's keypad.

    digits ... terminator or a pause ─> one caller turn "[keypad] 1234", answered like speech
    an escape key alone ─> at once: "repeat" the last reply, "hangup" (goodbye), "transfer:NAME"

Runs on the event loop: ``on_keypad`` for each digit the SIP adapter reports,
the inter-digit timeout from the ticker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from victoria_sip.application.chunking import SentenceChunker
from victoria_sip.application.keypad import DigitCollector, EscapeKey, KeypadEntry
from victoria_sip.application.utterance import Utterance
from victoria_sip.domain import Role
from victoria_sip.errors import ModelError

if TYPE_CHECKING:
    from victoria_sip.domain import Call

log = logging.getLogger("victoria.conversation")


class KeypadMixin:
    call: Call
    _keypad: DigitCollector
    _reply: asyncio.Task[None] | None
    _speaking: Utterance | None
    _reprompts: int
    _idle_since: float
    _ending: bool
    _transfer: asyncio.Future[tuple[int, str]] | None

    def on_keypad(self, key: str) -> None:
        """One DTMF digit from the caller."""
        self._reprompts = 0
        self._idle_since = time.monotonic()
        self._on_keypad_result(self._keypad.press(key, time.monotonic()))

    def _on_keypad_result(self, result: KeypadEntry | EscapeKey | None) -> None:
        if result is None or self._ending:
            return
        if self._transfer is not None and not (isinstance(result, EscapeKey) and result.action == "hangup"):
            log.info("call %s: key ignored while the caller is being put through", self.call.id)
            return
        if isinstance(result, EscapeKey):
            log.info("call %s: escape key %s: %s", self.call.id, result.key, result.action)
            if result.action == "hangup":
                self._end_call()
            elif result.action == "repeat":
                previous = self._interrupt()
                self._reply = asyncio.create_task(self._repeat_last_reply(previous), name="repeat")
            elif result.action.startswith("transfer:"):
                self.put_through(result.action.removeprefix("transfer:"), f"caller pressed {result.key}")
            return
        if not result.digits:
            return  # the terminator alone
        log.info("call %s: keypad entry of %d digit(s)", self.call.id, len(result.digits))
        now = time.monotonic()
        previous = self._interrupt()
        transcript = asyncio.get_running_loop().create_future()
        transcript.set_result(f"[keypad] {result.digits}")
        utterance = Utterance(end_of_speech=now, endpoint=now)
        self._reply = asyncio.create_task(self._answer(transcript, utterance, previous), name="keypad-reply")

    async def _repeat_last_reply(self, previous: asyncio.Task[None] | None) -> None:
        if previous is not None and not previous.done():
            await asyncio.gather(previous, return_exceptions=True)
        said = [t.content for t in self.call.conversation.turns if t.role is Role.ASSISTANT]
        if not said:
            return
        utterance = Utterance()
        self._speaking = utterance
        chunker = SentenceChunker()  # sentence by sentence, as the first time: the first one starts soon
        chunks = chunker.push(said[-1]) + [tail for tail in (chunker.flush(),) if tail]
        try:
            for chunk in chunks:
                await self._speak_chunk(utterance, chunk)
            await self._wait_for_playout()
        except ModelError as exc:
            log.error("call %s: could not repeat the last reply: %s", self.call.id, exc)
        finally:
            await self._commit(utterance)
