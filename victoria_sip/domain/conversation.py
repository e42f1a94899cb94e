"""What was said on a call, in order."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum


class Role(str, Enum):
    CALLER = "caller"
    ASSISTANT = "assistant"
    SYSTEM = "system"
    TOOL = "tool"  # a site tool's answer, given to the model


@dataclass(frozen=True, slots=True)
class TurnLatency:
    """How long a reply took, in milliseconds from the end of the caller's speech to each step:
    the endpoint decision, the STT final, the LLM request and its first token, the first
    speakable chunk, its first synthesised audio, and its first frame handed to the media clock.
    A site tool's answer has only ``tool_ms``: the request sent to the answer read."""

    stt_final_ms: float | None = None
    llm_first_token_ms: float | None = None
    tts_first_audio_ms: float | None = None
    first_frame_out_ms: float | None = None
    endpoint_ms: float | None = None
    llm_request_ms: float | None = None
    first_chunk_ms: float | None = None
    tool_ms: float | None = None


@dataclass(frozen=True, slots=True)
class ConversationTurn:
    """One utterance. ``index`` is its position in the call, from 0."""

    index: int
    role: Role
    content: str
    at: datetime
    interrupted: bool = False
    latency: TurnLatency | None = None


@dataclass(slots=True)
class Conversation:
    """The ordered turns of one call.

    >>> c = Conversation(); _ = c.add_turn("assistant", "Hello."); _ = c.add_turn("caller", "Hi!")
    >>> c.get_transcript()
    'assistant: Hello.\\ncaller: Hi!'
    """

    turns: list[ConversationTurn] = field(default_factory=list)

    def add_turn(
        self,
        role: Role | str,
        content: str,
        at: datetime | None = None,
        interrupted: bool = False,
        latency: TurnLatency | None = None,
    ) -> ConversationTurn:
        turn = ConversationTurn(
            index=len(self.turns),
            role=Role(role),
            content=content,
            at=at or datetime.now(timezone.utc),
            interrupted=interrupted,
            latency=latency,
        )
        self.turns.append(turn)
        return turn

    def get_transcript(self) -> str:
        return "\n".join(f"{t.role.value}: {t.content}" for t in self.turns)
