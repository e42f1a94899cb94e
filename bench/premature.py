"""Premature replies: questions with mid-sentence pauses, and how to tell a reply that cut the caller off.

Speed bought by cutting people off does not count, so the latency bench counts, next to its times, the
questions Victoria answered before the caller had finished. ``PAUSED_QUESTIONS`` are spoken in fragments joined
by 300-700 ms of silence (a caller thinking, reading a number); each fragment's own leading and trailing quiet is
trimmed first, so the silence between the words is the stated pause.

In the caller's recording, a reply is a loud run after at least ``REPLY_GAP_S`` of quiet (Piper's pauses
between sentences of one reply are shorter). Per question, from its first loud frame to the next question:

    premature    a reply started before the question's last loud frame had been played
    replies      how many replies started in that span (more than one: the sentence was answered in pieces)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from victoria_sip.audio.levels import rms_dbfs

PAUSED_QUESTIONS: list[tuple[str | int, ...]] = [  # text, pause in ms, text, ...
    ("I would like to book a table", 400, "for two people", 600, "tomorrow evening."),
    ("My order number is", 700, "four four one one."),
    ("Um", 500, "what time do you open on Sunday?"),
    ("Can I bring", 300, "my dog", 500, "to the terrace?"),
    ("Is there parking", 450, "near the restaurant", 350, "or should I take the bus?"),
]
REPLY_GAP_S = 1.0
TRIM_DBFS = -50.0  # the VAD's floor: quieter than this is silence to Victoria too


@dataclass(frozen=True, slots=True)
class Cutoffs:
    premature: list[bool]  # per question
    replies: list[int]  # per question
    talked_over: int  # questions that began while the previous reply was still playing (a gap too short)

    @property
    def premature_count(self) -> int:
        return sum(self.premature)

    @property
    def answered_in_pieces(self) -> int:
        return sum(n > 1 for n in self.replies)


def trim(samples: np.ndarray, frame: int) -> np.ndarray:
    """``samples`` without the quiet before its first and after its last frame above ``TRIM_DBFS``."""
    levels = [rms_dbfs(samples[i : i + frame]) for i in range(0, len(samples) - frame + 1, frame)]
    loud = np.nonzero(np.array(levels) > TRIM_DBFS)[0]
    return samples[loud[0] * frame : (loud[-1] + 1) * frame] if len(loud) else samples[:0]


def paused_speech(speak: Callable[[str], np.ndarray], question: tuple[str | int, ...], rate: int) -> np.ndarray:
    """One question as audio: each text fragment spoken and trimmed, each number a pause of that many ms."""
    frame = rate // 50
    parts = [np.zeros(int(item * rate / 1000), np.int16) if isinstance(item, int) else trim(speak(item), frame)
             for item in question]
    return np.concatenate(parts)


def reply_onsets(loud: np.ndarray, frame_ms: int = 20) -> np.ndarray:
    """Frames where a reply starts: loud after at least ``REPLY_GAP_S`` of quiet (or at the very start)."""
    onsets, quiet = [], int(REPLY_GAP_S * 1000 / frame_ms)
    since_loud = quiet
    for i, is_loud in enumerate(loud):
        if is_loud:
            if since_loud >= quiet:
                onsets.append(i)
            since_loud = 0
        else:
            since_loud += 1
    return np.array(onsets, int)


def count_cutoffs(loud: np.ndarray, starts: list[int], questions: list[tuple[int, int]]) -> Cutoffs:
    """``loud``: per 20 ms frame of the caller's recording; per question its first loud frame (``starts``) and
    (last loud frame + 1, where the next question starts), on the same timeline."""
    onsets = reply_onsets(loud)
    premature, replies, talked_over = [], [], 0
    for start, (end, next_question) in zip(starts, questions):
        here = onsets[(onsets >= start) & (onsets < next_question)]
        premature.append(bool(len(here)) and bool(here[0] < end))
        replies.append(len(here))
        talked_over += bool(start < len(loud) and loud[start])
    return Cutoffs(premature, replies, talked_over)
