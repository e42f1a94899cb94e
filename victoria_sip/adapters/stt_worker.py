"""A recogniser worker process: one model, many calls' utterances, decoded in the order they arrive.

The parent (``stt_pool.py``) sends batches of work; each batch answers with
what it decided and how long it took:

    parent -> worker   (batch_id, [(op, key, payload), ...])
                       op "audio": payload = (sample_rate, s16le pcm)   the utterance starts at its first audio
                       op "finish": the utterance is over: its transcript is sent back
                       op "drop": the call ended mid-utterance: forget it
    worker -> parent   (batch_id, busy_seconds, audio_seconds,
                        [("final", key, text) | ("failed", key, why) | ("partial", key, words so far)])

An utterance holds an engine stream only while it is spoken (a PocketSphinx
decoder goes back to the engine's pool at its end), so what a worker holds
grows with the callers speaking at once, not with the calls. Consecutive audio
of one utterance in a batch is decoded in one call to the engine; an utterance
still open after a batch sends its words so far when they changed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from victoria_sip.domain.ports import SpeechAudio
from victoria_sip.logs import configure

Key = tuple[int, int]  # (stream id, utterance number)


def serve(connection, factory: Callable[[], Any], log_settings: tuple[str, str] | None = None,
          probe: SpeechAudio | None = None) -> None:
    """The worker's main: load the engine, report, then decode batches until the pipe closes."""
    if log_settings is not None:  # the engine's own log lines (a model loaded) join the service's, on stderr
        configure(*log_settings)
    try:
        engine = factory()
        engine.load()
        # once, cold: PocketSphinx 0.11 (as in calls), Vosk 0.35 (5x its warm cost: a burst of calls is
        # admitted cautiously until their own cost is measured)
        rtf = _measure_real_time_factor(engine, probe or _vowel())
    except Exception as exc:  # anything: the parent turns it into a ModelError naming the engine
        connection.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    connection.send(("ok", rtf))
    utterances = Utterances(engine)
    while True:
        try:
            batch_id, items = connection.recv()
        except (EOFError, OSError):
            return
        started = time.perf_counter()
        events, audio_seconds = utterances.run(items)
        connection.send((batch_id, time.perf_counter() - started, audio_seconds, events))
        if not connection.poll(0) and hasattr(engine, "prepare_spare"):
            engine.prepare_spare()  # idle: the next caller's utterance will not wait for a decoder to load


class Utterances:
    """The utterances in progress on this worker, each with its engine stream."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self._streams: dict[Key, Any] = {}
        self._failed: dict[Key, str] = {}  # decoding failed: the rest of its audio is ignored, finish reports it
        self._partials: dict[Key, str] = {}  # the words so far, per open utterance
        self._sent: dict[Key, str] = {}  # the words so far last sent to the parent

    def run(self, items: list[tuple[str, Key, Any]]) -> tuple[list[tuple[str, Key, str]], float]:
        events: list[tuple[str, Key, str]] = []
        pending: dict[Key, tuple[int, list[bytes]]] = {}
        audio_seconds = 0.0
        for op, key, payload in items:
            if op == "audio":
                rate, pcm = payload
                audio_seconds += len(pcm) / 2 / rate
                pending.setdefault(key, (rate, []))[1].append(pcm)
                continue
            if key in pending:
                self._decode(key, *pending.pop(key))
            if op == "finish":
                events.append(self._finish(key))
            else:
                self._drop(key)
        for key, (rate, chunks) in pending.items():
            self._decode(key, rate, chunks)
            words = self._partials.get(key, "")
            if key in self._streams and words != self._sent.get(key, ""):
                events.append(("partial", key, words))
                self._sent[key] = words
        return events, audio_seconds

    def _decode(self, key: Key, rate: int, chunks: list[bytes]) -> None:
        if key in self._failed:
            return
        try:
            stream = self._streams.get(key)
            if stream is None:
                stream = self._streams[key] = self._engine.open_stream(rate)
            self._partials[key] = (stream.accept(SpeechAudio(b"".join(chunks), rate)) or "").strip()
        except Exception as exc:
            self._failed[key] = f"{type(exc).__name__}: {exc}"
            self._drop(key)

    def _finish(self, key: Key) -> tuple[str, Key, str]:
        if key in self._failed:
            return "failed", key, self._failed.pop(key)
        self._forget_words(key)
        stream = self._streams.pop(key, None)
        if stream is None:
            return "final", key, ""
        try:
            return "final", key, stream.finish()
        except Exception as exc:
            return "failed", key, f"{type(exc).__name__}: {exc}"
        finally:
            _close(stream)

    def _drop(self, key: Key) -> None:
        self._forget_words(key)
        stream = self._streams.pop(key, None)
        if stream is not None:
            _close(stream)

    def _forget_words(self, key: Key) -> None:
        self._partials.pop(key, None)
        self._sent.pop(key, None)


def _close(stream: Any) -> None:
    try:
        stream.close()
    except Exception:  # a stream that cannot be given back is simply not reused
        pass


def _measure_real_time_factor(engine: Any, probe: SpeechAudio) -> float:
    """Decode the probe (real speech: the recorded apology) once, frame by frame as a call would hand it
    over: the worker's cost per second of speech, what admission assumes a call costs before it is measured."""
    rate, frame = probe.sample_rate, probe.sample_rate // 50 * 2
    stream = engine.open_stream(rate)
    started = time.perf_counter()
    for offset in range(0, len(probe.pcm), frame):
        stream.accept(SpeechAudio(probe.pcm[offset:offset + frame], rate))
    stream.finish()
    elapsed = time.perf_counter() - started
    _close(stream)
    return elapsed / probe.seconds


def _vowel(rate: int = 16000, seconds: float = 1.0) -> SpeechAudio:
    """A synthetic vowel, when no recorded speech is at hand (it decodes cheaper than speech: ~1/3, measured)."""
    import numpy as np

    t = np.arange(int(rate * seconds)) / rate
    vowel = sum(np.sin(2 * np.pi * f * t) / (i + 1) for i, f in enumerate((140, 280, 700, 1200, 2500)))
    return SpeechAudio((vowel / 3 * 12000 * (1 + 0.3 * np.sin(2 * np.pi * 4 * t))).astype("<i2").tobytes(), rate)
