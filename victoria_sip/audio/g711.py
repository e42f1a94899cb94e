"""G.711 μ-law and A-law as numpy lookup tables, bit-exact with pjmedia.

The tables come from the segment algorithm of Sun's public-domain ``g711.c``,
which pjmedia and CPython's old ``audioop`` both use: decoding is one lookup per
byte; encoding indexes a 65536-entry table by the 16-bit sample. Tables are
built once, on first use, with vectorised numpy (no import-time work).
"""

from __future__ import annotations

from functools import cache

import numpy as np

SAMPLE_RATE = 8000
SAMPLES_PER_FRAME = 160  # 20 ms

_SEGMENT_ENDS_MULAW = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
_SEGMENT_ENDS_ALAW = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])
_MULAW_BIAS = 0x84
_MULAW_CLIP = 8159  # in 14-bit units


def _all_samples() -> np.ndarray:
    """Every int16 value, ordered by its uint16 bit pattern (so a sample's view indexes the table)."""
    return np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.int16).astype(np.int32)


@cache
def _mulaw_encode_table() -> np.ndarray:
    pcm = _all_samples() >> 2
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(pcm), _MULAW_CLIP) + (_MULAW_BIAS >> 2)
    segment = np.searchsorted(_SEGMENT_ENDS_MULAW, magnitude)
    code = (np.minimum(segment, 7) << 4) | ((magnitude >> (segment + 1)) & 0x0F)
    code = np.where(segment >= 8, 0x7F, code)
    return ((code ^ mask) & 0xFF).astype(np.uint8)


@cache
def _alaw_encode_table() -> np.ndarray:
    pcm = _all_samples() >> 3
    negative = pcm < 0
    mask = np.where(negative, 0x55, 0xD5)
    magnitude = np.where(negative, -pcm - 1, pcm)
    segment = np.searchsorted(_SEGMENT_ENDS_ALAW, magnitude)
    shift = np.where(segment < 2, 1, segment)
    code = (np.minimum(segment, 7) << 4) | ((magnitude >> shift) & 0x0F)
    code = np.where(segment >= 8, 0x7F, code)
    return ((code ^ mask) & 0xFF).astype(np.uint8)


@cache
def _mulaw_decode_table() -> np.ndarray:
    code = ~np.arange(256) & 0xFF
    magnitude = (((code & 0x0F) << 3) + _MULAW_BIAS) << ((code & 0x70) >> 4)
    return np.where(code & 0x80, _MULAW_BIAS - magnitude, magnitude - _MULAW_BIAS).astype(np.int16)


@cache
def _alaw_decode_table() -> np.ndarray:
    code = np.arange(256) ^ 0x55
    segment = (code & 0x70) >> 4
    mantissa = (code & 0x0F) << 4
    magnitude = np.select(
        [segment == 0, segment == 1],
        [mantissa + 8, mantissa + 0x108],
        (mantissa + 0x108) << np.maximum(segment - 1, 0),
    )
    return np.where(code & 0x80, magnitude, -magnitude).astype(np.int16)


def _as_int16(samples: np.ndarray) -> np.ndarray:
    if samples.dtype != np.int16:
        raise TypeError(f"G.711 encodes int16 samples, got {samples.dtype}")
    return samples


def mulaw_encode(samples: np.ndarray) -> np.ndarray:
    return _mulaw_encode_table()[_as_int16(samples).view(np.uint16)]


def mulaw_decode(codes: np.ndarray | bytes) -> np.ndarray:
    return _mulaw_decode_table()[np.frombuffer(codes, dtype=np.uint8)]


def alaw_encode(samples: np.ndarray) -> np.ndarray:
    return _alaw_encode_table()[_as_int16(samples).view(np.uint16)]


def alaw_decode(codes: np.ndarray | bytes) -> np.ndarray:
    return _alaw_decode_table()[np.frombuffer(codes, dtype=np.uint8)]
