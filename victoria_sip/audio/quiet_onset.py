"""The quiet start of synthesised speech, cut: the caller hears the first word sooner.

Voices begin a sentence with silence (Piper: 20-40 ms, measured), which a reply
spends before its first word. Cut it down to ``keep_ms`` (a short fade-in stays
natural); a chunk that is quiet throughout is left as it is.
"""

from __future__ import annotations

import numpy as np

from victoria_sip.audio.levels import frame_levels_dbfs
from victoria_sip.domain.ports import SpeechAudio

QUIET_DBFS = -45.0
STEP_MS = 5  # the onset is found to 5 ms


def trim_quiet_onset(audio: SpeechAudio, keep_ms: int = 10, quiet_dbfs: float = QUIET_DBFS) -> SpeechAudio:
    samples = np.frombuffer(audio.pcm, dtype="<i2")
    step = audio.sample_rate * STEP_MS // 1000
    steps = len(samples) // step
    if steps == 0:
        return audio
    loud = np.nonzero(frame_levels_dbfs(samples[: steps * step].reshape(steps, step)) > quiet_dbfs)[0]
    if len(loud) == 0:
        return audio
    start = max(0, int(loud[0]) * step - audio.sample_rate * keep_ms // 1000)
    return audio if start == 0 else SpeechAudio(audio.pcm[start * 2:], audio.sample_rate)
