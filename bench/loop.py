"""The conversation's own Python cost per call, without SIP: N sessions listening at once on one event loop.

    python -m bench loop [--calls 1,50,100,200] [--seconds 10]

Each ``CallSession`` gets a stand-in leg that delivers the caller's audio in real
time (6 s of voiced sound, 2 s of silence, looped; each call at its own offset)
and plays nothing; no STT, so what runs is what a media-only call runs on the
event loop every 20 ms: frames, levels, webrtcvad, the endpointer, the timers.
CPU time of the process over ``--seconds`` of wall clock, per call: the figure
``bench capacity`` cannot isolate, since there pjmedia's clock thread and the
SIP thread share the process. Writes bench/results/loop.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from victoria_sip.application.call_log import CallLog
from victoria_sip.application.call_session import CallSession, ConversationModels
from victoria_sip.application.phrases import Phrases
from victoria_sip.domain import Agent, Call, CallId, PhoneNumber, TurnTaking, VoiceConfig
from victoria_sip.domain.ports import SpeechAudio

RESULTS = Path(__file__).parent / "results"
RATE = 16000
FRAME = RATE // 50


def caller_audio() -> np.ndarray:
    t = np.arange(RATE * 6) / RATE
    voiced = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 12))
    voiced = (8000 * voiced / np.max(np.abs(voiced))).astype(np.int16)
    return np.concatenate((voiced, np.zeros(RATE * 2, np.int16)))


class StandInLeg:
    """The ``CallLeg`` port: caller audio as it would arrive, in real time; playout swallowed."""

    def __init__(self, audio: np.ndarray, offset_frames: int) -> None:
        self.call_id = CallId.new()
        self.caller, self.callee, self.account, self.sample_rate = "sip:4711@pbx", "7000", None, RATE
        self._frames = audio[: len(audio) // FRAME * FRAME].reshape(-1, FRAME)
        self._start = time.monotonic()
        self._offset = offset_frames
        self._read = 0

    def read_audio(self) -> bytes:
        due = int((time.monotonic() - self._start) * 50)
        indices = np.arange(self._read, due) + self._offset
        self._read = max(self._read, due)
        return self._frames[indices % len(self._frames)].tobytes()

    def play(self, audio, mark=None) -> None:
        pass

    def playout_started(self, mark):
        return time.monotonic()

    def stop_playout(self) -> None:
        pass

    def speaking(self, under_way: bool) -> None:
        pass

    def playout_pending(self) -> bool:
        return False

    def media_stats(self):
        return (0, 0)

    def recording_path(self):
        return None

    def hangup(self) -> None:
        pass


class _Silent:
    def synthesize(self, text, voice) -> SpeechAudio:
        return SpeechAudio(bytes(FRAME * 2), RATE)


class _NoRepository:
    def save_call(self, call) -> None:
        pass

    def add_turn(self, call_id, turn) -> None:
        pass


async def measure(calls: int, seconds: float) -> dict:
    agent = Agent(name="front", system_prompt="-", first_message="Hello.", voice=VoiceConfig(),
                  turn_taking=TurnTaking(reprompt_after_seconds=3600, barge_in=False))
    audio = caller_audio()
    pool = ThreadPoolExecutor(2)
    models = ConversationModels(None, None, _Silent(), SpeechAudio(bytes(FRAME * 2), RATE), "Sorry.", pool)
    phrases = Phrases(_Silent())
    service_ticker = _service_ticker()
    tasks = []
    for n in range(calls):
        leg = StandInLeg(audio, n * 37)
        call = Call(id=leg.call_id, agent="front", caller=PhoneNumber("4711"))
        call.start()
        extra = {} if service_ticker is None else {"ticker": service_ticker}
        session = CallSession(call, agent, leg, models, phrases, CallLog(_NoRepository()), **extra)
        tasks.append(asyncio.create_task(session.run()))
    await asyncio.sleep(1.0)  # greetings played, every call listening
    cpu, wall = time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    pool.shutdown()
    per_call_frame_us = cpu / wall / 50 / calls * 1e6
    return {"calls": calls, "cores": round(cpu / wall, 4), "us_per_call_per_frame": round(per_call_frame_us, 1),
            "percent_core_per_call": round(100 * cpu / wall / calls, 3)}


def _service_ticker():
    """The service's shared ticker where the code has one (older code ran a task per call)."""
    try:
        from victoria_sip.application.frame_ticker import FrameTicker
    except ImportError:
        return None
    return FrameTicker()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench loop", description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", default="1,50,100,200")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    rows = [asyncio.run(measure(int(n), args.seconds)) for n in args.calls.split(",")]
    print(f"conversation loop, media only (no STT), {args.seconds:.0f} s; {os.cpu_count()} cores")
    print(f"{'calls':>5} {'cores':>6} {'µs/call/frame':>13} {'% core/call':>11}")
    for r in rows:
        print(f"{r['calls']:5d} {r['cores']:6.3f} {r['us_per_call_per_frame']:13.1f} {r['percent_core_per_call']:11.3f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "loop.json").write_text(json.dumps({"cores": os.cpu_count(), "rows": rows}, indent=2))
    print(f"saved {RESULTS / 'loop.json'}")
