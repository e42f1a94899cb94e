"""A reply prepared in a pause, heard only if the caller's turn really ended there.

    speculation = Speculation(words, utterance)   # the utterance is held: nothing of it is played
    speculation.task = create_task(...)           # asks the LLM, synthesises the first chunk, waits
    speculation.matches(final_words)              # the turn ended on exactly these words: a hit
    speculation.release()                         # play it now (the caller's turn is stored first)
    speculation.discard()                         # the caller went on: cancelled, never heard, never stored

A held utterance plays nothing and so commits nothing: cancelling it leaves no
trace in the call but the metric.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from victoria_sip.application.turn_end import words_of
from victoria_sip.application.utterance import Utterance


@dataclass
class Speculation:
    words: str
    utterance: Utterance
    task: asyncio.Task[None] | None = None
    gate: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.utterance.held = self.gate

    def matches(self, words: str) -> bool:
        return words_of(words) == words_of(self.words)

    def release(self) -> None:
        self.gate.set()

    def discard(self) -> None:
        if self.task is not None:
            self.task.cancel()
