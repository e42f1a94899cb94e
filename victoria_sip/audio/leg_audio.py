"""A call leg's audio, whatever carries it (RTP through pjmedia, a browser's WebSocket): the caller's 20 ms
frames arrive in a ``FrameRing``, the voice leaves through a ``PlayoutQueue``. The ``CallLeg`` port's audio
methods, written once for every kind of leg.

    class SipCallLeg(LegAudio):          # sets sample_rate, inbound and playout in __init__
"""

from __future__ import annotations

import numpy as np

from victoria_sip.audio.frame_ring import FrameRing
from victoria_sip.audio.playout import PlayoutQueue
from victoria_sip.audio.resample import resample
from victoria_sip.domain.ports import SpeechAudio


class LegAudio:
    sample_rate: int
    inbound: FrameRing
    playout: PlayoutQueue

    def read_audio(self) -> bytes:
        return self.inbound.take().tobytes()

    def play(self, audio: SpeechAudio, mark: int | None = None) -> None:
        samples = np.frombuffer(audio.pcm, dtype="<i2")
        self.playout.enqueue(resample(samples, audio.sample_rate, self.sample_rate), mark)

    def playout_started(self, mark: int) -> float | None:
        return self.playout.started_at(mark)

    def stop_playout(self) -> None:
        self.playout.clear()

    def speaking(self, under_way: bool) -> None:
        self.playout.speaking(under_way)

    def playout_pending(self) -> bool:
        return len(self.playout) > 0
