"""Who answers: an agent's persona and voice."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class VoiceConfig:
    """How an agent sounds. ``provider`` picks the TTS adapter, ``voice`` the model/speaker in it."""

    provider: str = "piper"
    voice: str = "en_US-joe-medium"
    speed: float = 1.0
    pitch: float = 1.0

    def __post_init__(self) -> None:
        if not 0.25 <= self.speed <= 4.0:
            raise ValueError(f"voice speed must be between 0.25 and 4.0, got {self.speed}")
        if not 0.5 <= self.pitch <= 2.0:
            raise ValueError(f"voice pitch must be between 0.5 and 2.0, got {self.pitch}")


@dataclass(frozen=True, slots=True)
class Agent:
    """A persona that answers calls: what it says first and how it should behave."""

    name: str
    system_prompt: str
    first_message: str
    voice: VoiceConfig = field(default_factory=VoiceConfig)

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("an agent needs a name")
