"""Voice-to-voice latency of a scripted call, per stage, and what Victoria itself adds.

    python -m bench latency [--turns 20] [--stand-ins] [--llm-first-token 0.0] [--codec PCMU/8000/1]

A real call on loopback through Kamailio: ``victoria-sip serve`` with the
PocketSphinx recogniser, the Ollama-protocol double as the LLM (it waits
``--llm-first-token`` seconds before its first token), and Piper as the voice,
or with ``--stand-ins`` a "clip" voice that returns a precomputed recording
instantly. The pjsua2 test caller asks spoken questions with pauses and
records what comes back.

Per reply, from the end of the caller's speech: (a) endpoint decision, (b) STT
final, (c) LLM first token, (d) first speakable chunk, (e) first TTS audio (all
read back from the call log, Victoria's clock), and (f) the first frame of the
reply as the caller hears it (found in the caller's recording; it includes both
jitter buffers), and, when run as root with PCMU, (f) on the wire: the first
loud RTP packet of the reply after the last loud packet of the question, both
stamped by the kernel on loopback. Victoria's own overhead = (f on the wire) −
hangover − STT compute − LLM wait − TTS compute; "Victoria pipeline" is the same
on Victoria's clock, up to the frame handed to pjmedia. Prints a table (median, p95) and writes bench/results/latency*.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
from pathlib import Path

import numpy as np

from bench.rtp_sniffer import RtpSniffer
from tests.support.ollama_double import OllamaDouble
from tests.support.processes import Kamailio, Victoria, run_caller
from tests.support.wav import read_wav, write_wav
from victoria_sip.adapters.tts_piper import PiperTTS
from victoria_sip.audio.levels import rms_dbfs
from victoria_sip.audio.resample import resample
from victoria_sip.domain import VoiceConfig

RESULTS = Path(__file__).parent / "results"
VICTORIA_RTP = range(47000, 47100)
CALLER_RTP = range(42000, 44000)  # tests/support/sip_caller.py binds RTP in 42000-43999
RATE = 16000
FRAME = RATE // 50
HANGOVER_MS = 500
LOUD_DBFS = -40.0
VAD_FLOOR_DBFS = -50.0  # SpeechDetector's floor: quieter frames are never speech to Victoria
QUESTIONS = [
    "Hello, I would like to book a table for two people tomorrow evening.",
    "What time do you open on Sunday?",
    "Do you have a vegetarian menu?",
    "Can I bring my dog to the terrace?",
    "Is there parking near the restaurant?",
]
REPLY = "Of course, I can help you with that."


def speak(tts: PiperTTS, text: str) -> np.ndarray:
    audio = tts.synthesize(text, VoiceConfig())
    return resample(np.frombuffer(audio.pcm, "<i2"), audio.sample_rate, RATE)



def loud_frames(samples: np.ndarray) -> np.ndarray:
    n = len(samples) // FRAME
    return np.array([rms_dbfs(samples[i * FRAME : (i + 1) * FRAME]) > LOUD_DBFS for i in range(n)])


def caller_script(tts: PiperTTS, turns: int, gap: float) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The caller's audio and, per question, (frame where its speech ends, frame where the next one starts)."""
    spoken = [speak(tts, q) for q in QUESTIONS]
    parts, ends, position = [np.zeros(3 * RATE, np.int16)], [], 3 * RATE  # 3 s: the greeting
    for i in range(turns):
        question = spoken[i % len(spoken)]
        last_loud = np.nonzero(loud_frames(question))[0][-1] + 1
        parts += [question, np.zeros(int(gap * RATE), np.int16)]
        ends.append(position // FRAME + last_loud)
        position += len(question) + int(gap * RATE)
    starts = [end for end in ends[1:]] + [position // FRAME]
    return np.concatenate(parts), [(end, nxt) for end, nxt in zip(ends, starts)]


def heard_reply_ms(heard: np.ndarray, questions: list[tuple[int, int]]) -> list[float | None]:
    loud = loud_frames(heard)
    delays = []
    for end, next_question in questions:
        window = loud[end : min(next_question, len(loud))]
        delays.append(float(np.argmax(window)) * 20 if window.any() else None)
    return delays


def wire_reply_ms(sniffer: RtpSniffer, questions: list[tuple[int, int]], caller_dbfs: float = LOUD_DBFS) -> list[float | None]:
    """Per question: kernel time from the caller's last packet above ``caller_dbfs`` to Victoria's first loud
    packet after it. The VAD floor (-50 dBFS) as ``caller_dbfs`` ends the question where Victoria can end it."""
    streams = sniffer.streams()
    caller = next((rows for (src, _, _), rows in streams.items() if src in CALLER_RTP), None)
    victoria = next((rows for (src, _, _), rows in streams.items() if src in VICTORIA_RTP), None)
    if caller is None or victoria is None or np.isnan(caller[:, 2]).all():
        return [None] * len(questions)
    frame_of = ((caller[:, 1] - caller[0, 1]) % 2**32 / 160).astype(int)  # 8 kHz: 160 per 20 ms frame
    loud_victoria = victoria[victoria[:, 2] > LOUD_DBFS]
    delays = []
    for end, next_question in questions:
        asked = caller[(frame_of < end) & (caller[:, 2] > caller_dbfs)]
        if not len(asked):
            delays.append(None)
            continue
        spoken_end = asked[-1, 0] + 0.02
        window_end = caller[np.searchsorted(frame_of, next_question, side="left").clip(max=len(caller) - 1), 0]
        reply = loud_victoria[(loud_victoria[:, 0] > spoken_end) & (loud_victoria[:, 0] < window_end)]
        delays.append((reply[0, 0] - spoken_end) * 1000 if len(reply) else None)
    return delays


def stats(values: list[float]) -> tuple[float, float]:
    return statistics.median(values), float(np.percentile(values, 95))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench latency")
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--stand-ins", action="store_true", help="TTS returns a precomputed clip (LLM double: 0 ms)")
    parser.add_argument("--llm-first-token", type=float, default=0.0, help="seconds the LLM double waits")
    parser.add_argument("--codec", default="PCMU/8000/1", help="PCMU lets the sniffer hear speech on the wire")
    parser.add_argument("--gap", type=float, default=5.0, help="seconds of caller silence after each question")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="victoria-bench-"))
    tts = PiperTTS()
    audio, questions = caller_script(tts, args.turns, args.gap)
    write_wav(work / "caller.wav", audio, RATE)
    voice = '[agents.voice]\nprovider = "piper"\n'
    if args.stand_ins:
        voice = f'[agents.voice]\nprovider = "clip"\nvoice = "{write_wav(work / "reply.wav", speak(tts, REPLY), RATE)}"\n'

    kamailio = Kamailio(work / "kamailio")
    sniffer = RtpSniffer(set(VICTORIA_RTP) | set(CALLER_RTP)) if os.geteuid() == 0 else None
    if sniffer:
        sniffer.start()
        sniffer.record(True)
    with OllamaDouble(reply=REPLY, first_token_delay=args.llm_first_token) as ollama:
        kamailio.start()
        config = (f'[llm]\nhost = "{ollama.host}"\n[sip]\nrtp_port = {VICTORIA_RTP.start}\n'
                  f'rtp_port_range = {len(VICTORIA_RTP)}\n[[sip.accounts]]\nname = "desk"\nregistrar = "{kamailio.registrar}"\n'
                  'user = "7000"\nagent = "front"\n[[agents]]\nname = "front"\nfirst_message = "Hello."\n'
                  f'{voice}[agents.turn_taking]\nreprompt_after_seconds = 60\nhangover_ms = {HANGOVER_MS}\n')
        server = Victoria(work / "victoria", config, env={"VICTORIA_ACCOUNT_DESK_PASSWORD": "reception-secret"})
        server.start()
        try:
            server.wait_for_log(r"account 'desk' registered", timeout=90)
            seconds = len(audio) / RATE
            report = run_caller(f"sip:7000@{kamailio.registrar}", proxy=f"sip:{kamailio.registrar}",
                                password="caller-secret", play=work / "caller.wav", record=work / "heard.wav",
                                hangup_after=seconds, codec=args.codec, timeout=seconds + 30)
            server.wait_for_log(r"ended, caller-hangup", timeout=30)
        finally:
            server.stop()
            kamailio.stop()
            if sniffer:
                sniffer.stop()
    [call] = server.calls()
    replies = [t["latency_ms"] for t in server.call_detail(call["id"])["turns"]
               if t["role"] == "assistant" and t["latency_ms"]]
    heard, _ = read_wav(work / "heard.wav")
    heard_ms_all = heard_reply_ms(heard, questions)
    on_wire = sniffer and report["codec"] == "PCMU"
    wire_all = wire_reply_ms(sniffer, questions) if on_wire else [None] * len(questions)
    wire_floor_all = wire_reply_ms(sniffer, questions, VAD_FLOOR_DBFS) if on_wire else [None] * len(questions)

    table: dict[str, list[float]] = {k: [] for k in (
        "(a) endpoint decision", "(b) STT final", "(c) LLM first token", "(d) first speakable chunk",
        "(e) first TTS audio", "    first frame to pjmedia", "(f) first reply RTP packet on the wire",
        "    first reply audio heard by the caller", "STT compute", "LLM wait", "TTS compute",
        "Victoria pipeline = to pjmedia - hangover - models", "Victoria overhead = f(wire) - hangover - models",
        "(f) from the caller's last packet above -50 dBFS", "Victoria overhead, from the -50 dBFS end")}
    for latency, heard_ms, wire_ms, floor_ms in zip(replies, heard_ms_all, wire_all, wire_floor_all):
        steps = [latency[k] for k in ("endpoint_ms", "stt_final_ms", "llm_request_ms", "llm_first_token_ms",
                                      "first_chunk_ms", "tts_first_audio_ms", "first_frame_out_ms")]
        if heard_ms is None or any(v is None for v in steps):
            continue
        endpoint, stt, request, token, chunk, tts_audio, out = steps
        stt_compute, llm_wait, tts_compute = stt - endpoint, token - request, tts_audio - chunk
        models = stt_compute + llm_wait + tts_compute
        values = (endpoint, stt, token, chunk, tts_audio, out, wire_ms, heard_ms, stt_compute, llm_wait, tts_compute,
                  out - HANGOVER_MS - models, None if wire_ms is None else wire_ms - HANGOVER_MS - models,
                  floor_ms, None if floor_ms is None else floor_ms - HANGOVER_MS - models)
        for key, value in zip(table, values):
            if value is not None:
                table[key].append(value)

    mode = "stand-ins (clip TTS, LLM double)" if args.stand_ins else "real models (PocketSphinx, Piper; LLM double)"
    print(f"voice-to-voice latency, {len(table['(a) endpoint decision'])} of {args.turns} replies measured; "
          f"{mode}; LLM first token {args.llm_first_token * 1000:.0f} ms; codec {report['codec']} via Kamailio; "
          f"hangover {HANGOVER_MS} ms; {os.cpu_count()} cores")
    print(f"{'ms after the end of the caller speech':44} {'median':>8} {'p95':>8}")
    rows = []
    for key, values in table.items():
        if values:
            median, p95 = stats(values)
            rows.append({"stage": key.strip(), "n": len(values), "median_ms": median, "p95_ms": p95})
            print(f"{key:44} {median:8.0f} {p95:8.0f}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"latency{'-stand-ins' if args.stand_ins else ''}.json"
    out.write_text(json.dumps({"cores": os.cpu_count(), "mode": mode, "turns": args.turns, "codec": report["codec"],
                               "llm_first_token_s": args.llm_first_token, "hangover_ms": HANGOVER_MS,
                               "rows": rows}, indent=2))
    print(f"saved {out}")
    shutil.rmtree(work, ignore_errors=True)
