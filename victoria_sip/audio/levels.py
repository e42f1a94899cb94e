"""Loudness figures for int16 audio."""

from __future__ import annotations

import math

import numpy as np

FULL_SCALE = 32768.0
SILENCE_DBFS = -120.0


def rms_dbfs(samples: np.ndarray) -> float:
    """Root-mean-square level in dB relative to full scale; ``SILENCE_DBFS`` for digital silence."""
    if len(samples) == 0:
        return SILENCE_DBFS
    rms = math.sqrt(float(np.mean(np.square(samples.astype(np.float64)))))
    return SILENCE_DBFS if rms == 0 else max(SILENCE_DBFS, 20 * math.log10(rms / FULL_SCALE))
