"""Voice-to-voice latency of a scripted call, per stage, over many turns.

    python -m bench latency [--turns 20] [--llm-first-token 0.0] [--codec G722/16000/1]

A real call on loopback: Kamailio (if installed) as registrar/proxy,
``victoria-sip serve`` with its default recogniser (PocketSphinx) and voice
(Piper), the Ollama-protocol double as the LLM (``--llm-first-token`` seconds
before its first token), and the pjsua2 test caller asking spoken questions
(Piper) with pauses for the replies. Every figure is read back from the call
log: milliseconds from the end of the caller's speech to the STT final, the
LLM's first token, the first synthesised audio and the first frame handed to
pjmedia. Prints a table (median, p95) and writes bench/results/latency.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import wave
from pathlib import Path

import numpy as np

from tests.support.ollama_double import OllamaDouble
from tests.support.processes import Kamailio, Victoria, run_caller
from victoria_sip.adapters.tts_piper import PiperTTS
from victoria_sip.audio.resample import resample
from victoria_sip.domain import VoiceConfig

RESULTS = Path(__file__).parent / "results"
RATE = 16000
QUESTIONS = [
    "Hello, I would like to book a table for two people tomorrow evening.",
    "What time do you open on Sunday?",
    "Do you have a vegetarian menu?",
    "Can I bring my dog to the terrace?",
    "Is there parking near the restaurant?",
]
REPLY = "Of course, I can help you with that."
STAGES = [("stt_final_ms", "end of speech -> STT final"), ("llm_first_token_ms", "-> LLM first token"),
          ("tts_first_audio_ms", "-> first TTS audio"), ("first_frame_out_ms", "-> first frame out (voice-to-voice)")]


def caller_audio(turns: int, gap_seconds: float) -> np.ndarray:
    tts = PiperTTS()
    spoken = []
    for text in QUESTIONS:
        audio = tts.synthesize(text, VoiceConfig())
        spoken.append(resample(np.frombuffer(audio.pcm, "<i2"), audio.sample_rate, RATE))
    pause = np.zeros(int(gap_seconds * RATE), np.int16)
    parts = [np.zeros(3 * RATE, np.int16)]  # the greeting
    for i in range(turns):
        parts += [spoken[i % len(spoken)], pause]
    return np.concatenate(parts)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench latency")
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--llm-first-token", type=float, default=0.0, help="seconds the LLM double waits")
    parser.add_argument("--codec", default="G722/16000/1")
    parser.add_argument("--gap", type=float, default=5.0, help="seconds of caller silence after each question")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="victoria-bench-"))
    audio = caller_audio(args.turns, args.gap)
    with wave.open(str(work / "caller.wav"), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(audio.tobytes())

    kamailio = Kamailio(work / "kamailio") if shutil.which("kamailio") or Path("/usr/sbin/kamailio").exists() else None
    with OllamaDouble(reply=REPLY, first_token_delay=args.llm_first_token) as ollama:
        account = ""
        if kamailio:
            kamailio.start()
            account = (f'[[sip.accounts]]\nname = "desk"\nregistrar = "{kamailio.registrar}"\nuser = "7000"\n'
                       'agent = "front"\n')
        config = (f'[llm]\nhost = "{ollama.host}"\n{account}\n[[agents]]\nname = "front"\n'
                  'first_message = "Hello."\n[agents.turn_taking]\nreprompt_after_seconds = 60\n')
        server = Victoria(work / "victoria", config, env={"VICTORIA_ACCOUNT_DESK_PASSWORD": "reception-secret"})
        server.start()
        try:
            if kamailio:
                server.wait_for_log(r"account 'desk' registered", timeout=90)
                target = dict(dial=f"sip:7000@{kamailio.registrar}", proxy=f"sip:{kamailio.registrar}",
                              password="caller-secret")
            else:
                server.wait_ready()
                target = dict(dial=f"sip:7000@127.0.0.1:{server.sip_port}")
            seconds = len(audio) / RATE
            report = run_caller(target.pop("dial"), play=work / "caller.wav", hangup_after=seconds,
                                codec=args.codec, timeout=seconds + 30, **target)
            server.wait_for_log(r"ended, caller-hangup", timeout=30)
        finally:
            server.stop()
            if kamailio:
                kamailio.stop()
    [call] = server.calls()
    turns = server.call_detail(call["id"])["turns"]
    latencies = [t["latency_ms"] for t in turns if t["role"] == "assistant" and t["latency_ms"]]

    rows = []
    for key, label in STAGES:
        values = [lat[key] for lat in latencies if lat[key] is not None]
        if values:
            rows.append({"stage": label, "key": key, "n": len(values), "median_ms": statistics.median(values),
                         "p95_ms": percentile(values, 95)})
    print(f"voice-to-voice latency over {len(latencies)} replies ({args.turns} questions), {os.cpu_count()} cores; "
          f"codec {report['codec']}, {'via Kamailio' if kamailio else 'direct'}; LLM double first token "
          f"{args.llm_first_token * 1000:.0f} ms; STT PocketSphinx (worker process); TTS Piper; hangover 500 ms")
    print(f"{'stage':40} {'n':>3} {'median':>8} {'p95':>8}")
    for row in rows:
        print(f"{row['stage']:40} {row['n']:3d} {row['median_ms']:8.0f} {row['p95_ms']:8.0f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latency.json").write_text(json.dumps(
        {"cores": os.cpu_count(), "turns": args.turns, "replies": len(latencies), "codec": report["codec"],
         "via_kamailio": bool(kamailio), "llm_first_token_s": args.llm_first_token, "rows": rows}, indent=2))
    print(f"saved {RESULTS / 'latency.json'}")
    shutil.rmtree(work, ignore_errors=True)
