"""What a caller hears while Victoria is away calling someone for them: a soft two-note chime, then quiet.

Silence on a phone line sounds like a dropped call; a chime every few seconds says "still here" without
talking over the caller. Two pure notes survive G.711 and stand apart from speech."""

from __future__ import annotations

import numpy as np

NOTES_HZ = (587.33, 440.0)  # D5 then A4: a falling "ding-dong"
NOTE_SECONDS = 0.3
CYCLE_SECONDS = 4.0  # notes, then quiet until the next chime
LEVEL_DBFS = -24.0  # below speech (TTS is ~-18 dBFS): a background cue
RAMP_SECONDS = 0.02  # raised-cosine edges: no click at each note's start and end


def hold_chime(sample_rate: int) -> bytes:
    """One cycle of the chime as s16le mono PCM at ``sample_rate``; play it back to back for as long as needed."""
    note_samples = int(NOTE_SECONDS * sample_rate)
    t = np.arange(note_samples) / sample_rate
    ramp = int(RAMP_SECONDS * sample_rate)
    envelope = np.ones(note_samples)
    edge = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, ramp))
    envelope[:ramp], envelope[-ramp:] = edge, edge[::-1]
    peak = 10 ** (LEVEL_DBFS / 20) * np.sqrt(2) * 32767  # a sine's RMS is its peak / sqrt(2)
    notes = [peak * envelope * np.sin(2 * np.pi * hz * t) for hz in NOTES_HZ]
    quiet = np.zeros(int(CYCLE_SECONDS * sample_rate) - len(NOTES_HZ) * note_samples)
    return np.concatenate([*notes, quiet]).astype(np.int16).tobytes()
