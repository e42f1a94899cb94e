"""Loudness figures for int16 audio."""

from __future__ import annotations

import math

import numpy as np

FULL_SCALE = 32768.0
SILENCE_DBFS = -120.0
_FULL_SCALE_POWER_DB = 20 * math.log10(FULL_SCALE)


def rms_dbfs(samples: np.ndarray) -> float:
    """Root-mean-square level in dB relative to full scale; ``SILENCE_DBFS`` for digital silence."""
    if len(samples) == 0:
        return SILENCE_DBFS
    rms = math.sqrt(float(np.mean(np.square(samples.astype(np.float64)))))
    return SILENCE_DBFS if rms == 0 else max(SILENCE_DBFS, 20 * math.log10(rms / FULL_SCALE))


def frame_levels_dbfs(frames: np.ndarray) -> np.ndarray:
    """``rms_dbfs`` of each row of a (frames, samples) array, in one pass: many calls' frames at once."""
    wide = frames.astype(np.float64)
    mean_square = np.einsum("ij,ij->i", wide, wide) / frames.shape[1]
    with np.errstate(divide="ignore"):  # digital silence: log10(0) = -inf, clipped to SILENCE_DBFS below
        levels = 10 * np.log10(mean_square) - _FULL_SCALE_POWER_DB
    return np.maximum(levels, SILENCE_DBFS)
