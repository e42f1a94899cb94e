"""webrtcvad over fixed frames: is this 10/20/30 ms of audio speech?

webrtcvad adapts to the noise floor, so after digital silence even faint line
hiss reads as speech. Frames quieter than ``min_level_dbfs`` are therefore
never speech, whatever webrtcvad says.
"""

from __future__ import annotations

import numpy as np
import webrtcvad

from victoria_sip.audio.levels import rms_dbfs

SUPPORTED_RATES = (8000, 16000, 32000, 48000)
SUPPORTED_FRAME_MS = (10, 20, 30)


class SpeechDetector:
    def __init__(self, sample_rate: int, frame_ms: int = 20, aggressiveness: int = 2, min_level_dbfs: float = -50.0) -> None:
        if sample_rate not in SUPPORTED_RATES:
            raise ValueError(f"webrtcvad needs {SUPPORTED_RATES} Hz, got {sample_rate}")
        if frame_ms not in SUPPORTED_FRAME_MS:
            raise ValueError(f"webrtcvad needs {SUPPORTED_FRAME_MS} ms frames, got {frame_ms}")
        self.sample_rate = sample_rate
        self.frame_ms = frame_ms
        self.frame_samples = sample_rate * frame_ms // 1000
        self.min_level_dbfs = min_level_dbfs
        self._vad = webrtcvad.Vad(aggressiveness)

    def is_speech(self, frame: np.ndarray) -> bool:
        return self.is_speech_at(frame, rms_dbfs(frame))

    def is_speech_at(self, frame: np.ndarray, level_dbfs: float) -> bool:
        """``is_speech`` for a frame whose level is known already (measured for many calls at once)."""
        if len(frame) != self.frame_samples:
            raise ValueError(f"expected {self.frame_samples} samples, got {len(frame)}")
        if level_dbfs < self.min_level_dbfs:
            return False  # quiet frames, most of a call, never reach webrtcvad
        return self._vad.is_speech(np.ascontiguousarray(frame, dtype="<i2").tobytes(), self.sample_rate)
