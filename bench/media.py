"""Media primitives, in microseconds per 20 ms frame: what each call costs 50 times a second.

    python -m bench media [--repeat 7] [--number 2000]

Prints a table (median and p95 of the repeats, per call) and writes
bench/results/media.json. Numbers vary with the machine and its load: compare
ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import timeit
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pjsua2 as pj
import webrtcvad

from victoria_sip.adapters.sip import byte_vector, frame_memory
from victoria_sip.audio import g711
from victoria_sip.audio.frame_ring import FrameRing
from victoria_sip.audio.levels import frame_levels_dbfs, rms_dbfs
from victoria_sip.audio.playout import PlayoutQueue
from victoria_sip.audio.resample import StreamResampler
from victoria_sip.audio.ring_buffer import SampleRing

RESULTS = Path(__file__).parent / "results"


def cases() -> dict[str, Callable[[], object]]:
    rng = np.random.default_rng(1)
    frame8 = (rng.standard_normal(160) * 3000).astype(np.int16)
    frame16 = (rng.standard_normal(320) * 3000).astype(np.int16)
    ulaw = g711.mulaw_encode(frame8)
    vector16 = pj.ByteVector(frame16.tobytes())
    out_vector = pj.ByteVector()
    ring = SampleRing(16000 * 10)
    playout = PlayoutQueue(320)
    upsampler = StreamResampler(8000, 16000)
    vad = webrtcvad.Vad(2)
    frame16_bytes = frame16.tobytes()
    media_frame = pj.MediaFrame()
    media_frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
    media_frame.buf = pj.ByteVector(frame16_bytes)
    frame_ring = FrameRing(320, 500)
    outgoing = frame_memory.OutgoingFrame(320)
    hundred_frames = np.tile(frame16, (100, 1))

    def frame_in_old():  # what the media port did: SWIG accessors, a ctypes copy, a locked ring
        if media_frame.type == pj.PJMEDIA_FRAME_TYPE_AUDIO and media_frame.size:
            ring.push(byte_vector.read_int16_fast(media_frame.buf))
        ring.pop()

    def frame_in_new():  # the frame read in place, copied into a FrameRing with the GIL held
        address, size = frame_memory.received(media_frame)
        frame_memory.memmove(frame_ring.claim(), address, size)
        frame_ring.commit()
        frame_ring.take()

    def ring_push_pop():
        ring.push(frame16)
        ring.pop(320)

    def playout_cycle():
        playout.enqueue(frame16)
        playout.next_frame()

    return {
        "ByteVector read, SWIG bytes() (16 kHz frame)": lambda: np.frombuffer(bytes(vector16), "<i2"),
        "ByteVector read, ctypes fast path (16 kHz)": lambda: byte_vector.read_int16_fast(vector16),
        "ByteVector write, SWIG slice (16 kHz)": lambda: byte_vector.write_int16_slow(out_vector, frame16),
        "ByteVector write, ctypes fast path (16 kHz)": lambda: byte_vector.write_int16_fast(out_vector, frame16),
        "G.711 mu-law decode (160 samples)": lambda: g711.mulaw_decode(ulaw),
        "G.711 mu-law encode (160 samples)": lambda: g711.mulaw_encode(frame8),
        "G.711 A-law encode (160 samples)": lambda: g711.alaw_encode(frame8),
        "ring buffer push + pop (320 samples)": ring_push_pop,
        "playout enqueue + next_frame (320 samples)": playout_cycle,
        "soxr stream resample 8k -> 16k (160 samples)": lambda: upsampler.process(frame8),
        "webrtcvad is_speech (16 kHz, 20 ms)": lambda: vad.is_speech(frame16_bytes, 16000),
        "frame in + out of the ring, SWIG accessors + SampleRing (old)": frame_in_old,
        "frame in + out of the ring, in place + FrameRing": frame_in_new,
        "frame out, SWIG accessors + ctypes write (old)": lambda: byte_vector.write_int16_fast(media_frame.buf, frame16),
        "frame out, in place (one SWIG assignment)": lambda: outgoing.fill(media_frame, frame16),
        "level of one frame (rms_dbfs)": lambda: rms_dbfs(frame16),
        "levels of 100 calls' frames at once, per frame": lambda: frame_levels_dbfs(hundred_frames),
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench media")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--number", type=int, default=2000)
    args = parser.parse_args(argv)
    byte_vector.check_fast_path() or print("warning: the ctypes fast path does not check out here")

    rows = []
    for name, function in cases().items():
        function()  # warm up (first-use table builds, allocations)
        per = 100 if "100 calls" in name else 1  # a batch: report it per frame
        runs = [t / args.number / per * 1e6 for t in timeit.repeat(function, number=args.number, repeat=args.repeat)]
        rows.append({"case": name, "median_us": statistics.median(runs), "p95_us": sorted(runs)[int(0.95 * (len(runs) - 1))]})

    cores = os.cpu_count()
    print(f"media primitives, µs per call (median / p95 of {args.repeat} × {args.number}); {cores} cores, "
          f"Python {platform.python_version()}")
    width = max(len(r["case"]) for r in rows)
    print(f"{'case':{width}}  {'median':>8}  {'p95':>8}")
    for row in rows:
        print(f"{row['case']:{width}}  {row['median_us']:8.2f}  {row['p95_us']:8.2f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "media.json").write_text(json.dumps({"cores": cores, "python": platform.python_version(), "rows": rows}, indent=2))
    print(f"saved {RESULTS / 'media.json'}")
