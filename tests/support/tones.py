"""Finding pure tones in recorded audio: a chime or a desk phone's tone, told apart from speech."""

from __future__ import annotations

import numpy as np

from victoria_sip.audio.levels import rms_dbfs


def tone_share(samples: np.ndarray, rate: int, hz: float, width_hz: float = 25.0) -> float:
    """The share of the window's energy within ``width_hz`` of ``hz``: near 1 for a pure tone, small for speech."""
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(len(samples)))) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    total = spectrum.sum()
    return float(spectrum[np.abs(freqs - hz) <= width_hz].sum() / total) if total else 0.0


def seconds_of_tone(samples: np.ndarray, rate: int, hz: float, floor_dbfs: float = -45.0,
                    window_seconds: float = 0.1) -> list[float]:
    """Start times of the windows that are audible and mostly ``hz``."""
    step = int(rate * window_seconds)
    return [start / rate for start in range(0, len(samples) - step + 1, step)
            if rms_dbfs(samples[start:start + step]) > floor_dbfs
            and tone_share(samples[start:start + step], rate, hz) > 0.8]
