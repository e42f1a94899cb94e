"""Both directions of a call, side by side: what the caller said (left) and what Victoria said (right).

pjmedia's clock thread pushes one frame into each side every 20 ms (silence
included, so the two stay aligned); a recorder thread takes the part both sides
have and gets it back interleaved, ready for a stereo WAV file.
"""

from __future__ import annotations

import numpy as np

from victoria_sip.audio.ring_buffer import SampleRing


class StereoTap:
    def __init__(self, sample_rate: int, buffer_seconds: float = 10.0) -> None:
        self.sample_rate = sample_rate
        self.caller = SampleRing(int(sample_rate * buffer_seconds))
        self.agent = SampleRing(int(sample_rate * buffer_seconds))

    def take_interleaved(self, flush: bool = False) -> np.ndarray:
        """Frames both sides have, as L/R int16 pairs; ``flush`` also takes the longer side's rest (the
        other padded with silence), at the end of the call."""
        both = min(len(self.caller), len(self.agent))
        n = max(len(self.caller), len(self.agent)) if flush else both
        left, right = self.caller.pop(n), self.agent.pop(n)
        stereo = np.zeros((n, 2), np.int16)
        stereo[: len(left), 0] = left
        stereo[: len(right), 1] = right
        return stereo.reshape(-1)
