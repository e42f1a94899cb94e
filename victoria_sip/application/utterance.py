"""One assistant turn being spoken: its chunks and the moments that make up its latency.

    utterance = Utterance(end_of_speech=t0)   # answering the caller; Utterance() for a fixed phrase
    utterance.chunks.append((mark, "We open at nine."))
    utterance.latency(first_frame_out) -> TurnLatency (ms from the end of the caller's speech), or None
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from victoria_sip.domain import TurnLatency


@dataclass
class Utterance:
    chunks: list[tuple[int, str]] = field(default_factory=list)  # (playout mark, text)
    end_of_speech: float | None = None  # monotonic; None for phrases not answering the caller
    endpoint: float | None = None
    stt_final: float | None = None
    llm_request: float | None = None
    llm_first_token: float | None = None
    first_chunk: float | None = None
    tts_first_audio: float | None = None
    committed: bool = False
    held: asyncio.Event | None = None  # a reply prepared in a pause: set once it may be heard

    async def may_be_heard(self) -> None:
        if self.held is not None:
            await self.held.wait()

    def latency(self, first_frame_out: float | None) -> TurnLatency | None:
        if self.end_of_speech is None:
            return None

        def ms(t: float | None) -> float | None:
            return None if t is None else round((t - self.end_of_speech) * 1000, 1)

        return TurnLatency(
            stt_final_ms=ms(self.stt_final), llm_first_token_ms=ms(self.llm_first_token),
            tts_first_audio_ms=ms(self.tts_first_audio), first_frame_out_ms=ms(first_frame_out),
            endpoint_ms=ms(self.endpoint), llm_request_ms=ms(self.llm_request), first_chunk_ms=ms(self.first_chunk),
        )
