"""Picks the TTS adapter for a voice by ``VoiceConfig.provider``."""

from __future__ import annotations

from collections.abc import Mapping

from victoria_sip.domain import VoiceConfig
from victoria_sip.domain.ports import SpeechAudio, TextToSpeech
from victoria_sip.errors import ModelError


class VoiceRouter:
    def __init__(self, providers: Mapping[str, TextToSpeech]) -> None:
        self._providers = dict(providers)

    def synthesize(self, text: str, voice: VoiceConfig) -> SpeechAudio:
        try:
            provider = self._providers[voice.provider]
        except KeyError:
            raise ModelError(f"no TTS provider {voice.provider!r} (have: {', '.join(self._providers)})") from None
        return provider.synthesize(text, voice)
