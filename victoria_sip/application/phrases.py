"""Each agent's fixed phrases (first message, reprompt, goodbye), synthesised once at start-up.

Answering never waits for TTS, and a voice that cannot speak stops ``serve``
at start-up instead of failing the first caller.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from victoria_sip.domain import Agent
from victoria_sip.domain.ports import SpeechAudio, TextToSpeech

log = logging.getLogger("victoria.phrases")


def fixed_phrases(agent: Agent) -> tuple[str, ...]:
    phrases = (agent.first_message, agent.reprompt_message, agent.goodbye_message)
    phrases += (agent.transfer_message, agent.transfer_failed_message) if agent.destinations else ()
    phrases += tuple(dict.fromkeys(tool.filler for tool in agent.tools if tool.filler))  # said while a tool answers
    return phrases + ((agent.busy_message,) if agent.fallback_destination else ())


class Phrases:
    def __init__(self, tts: TextToSpeech) -> None:
        self._tts = tts
        self._audio: dict[tuple[str, str], SpeechAudio] = {}

    def prepare(self, agents: Iterable[Agent]) -> None:
        """Synthesise every agent's fixed phrases. Raises ``ModelError`` if a voice cannot speak."""
        for agent in agents:
            started = time.monotonic()
            for text in fixed_phrases(agent):
                self.get(agent, text)
            log.info(
                "agent %r: phrases ready (%s voice %r, %.2f s to synthesise)",
                agent.name, agent.voice.provider, agent.voice.voice, time.monotonic() - started,
            )

    def get(self, agent: Agent, text: str) -> SpeechAudio:
        key = (agent.voice, text)  # by voice, not agent name: a reloaded agent may speak differently
        if key not in self._audio:
            self._audio[key] = self._tts.synthesize(text, agent.voice)
        return self._audio[key]
