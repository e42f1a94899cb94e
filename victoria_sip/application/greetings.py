"""Each agent's first message, synthesised once at start-up so answering never waits for TTS."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from victoria_sip.domain import Agent
from victoria_sip.domain.ports import SpeechAudio, TextToSpeech

log = logging.getLogger("victoria.greetings")


class Greetings:
    def __init__(self, tts: TextToSpeech) -> None:
        self._tts = tts
        self._audio: dict[str, SpeechAudio] = {}

    def prepare(self, agents: Iterable[Agent]) -> None:
        """Synthesise every agent's first message. Raises ``ModelError`` if a voice cannot speak."""
        for agent in agents:
            started = time.monotonic()
            self._audio[agent.name] = self._tts.synthesize(agent.first_message, agent.voice)
            log.info(
                "agent %r: first message ready (%.1f s of audio, %s voice %r, %.2f s to synthesise)",
                agent.name, self._audio[agent.name].seconds, agent.voice.provider, agent.voice.voice,
                time.monotonic() - started,
            )

    def for_agent(self, agent: Agent) -> SpeechAudio:
        if agent.name not in self._audio:
            self._audio[agent.name] = self._tts.synthesize(agent.first_message, agent.voice)
        return self._audio[agent.name]
