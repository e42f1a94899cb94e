"""Admission by inference headroom, measured: one process, callers added until it refuses.

    sudo .venv/bin/python -m bench capacity --grow --stt pocketsphinx|vosk-ko [--every 4] [--most 24]
                                            [--extra 3] [--workers 0] [--baseline 30] [--keep]

One ``victoria-sip serve`` with a real recogniser pool (``[stt] workers``, one
per core by default), admission on its defaults, the clip voice and an instant
Ollama-protocol stand-in. A SIPp caller who talks all the time (sentences with
1.2 s pauses, so every sentence is a turn) talks alone for ``--baseline``
seconds, then another is added every ``--every`` seconds
until Victoria refuses one (486, ``victoria_admission_refusals_total``), then
``--extra`` more are tried, and every call runs on for a while. For each N
(calls in progress) the table gives the turns completed meanwhile and their STT
final time after the end of speech (the 500 ms hangover included; median, p95,
p95 against N = 1), the cores used by Victoria and her recogniser workers, and
at the end Victoria's RTP on the wire (kernel-stamped) and playout underflows.
Writes bench/results/headroom-STT.json. Every wait has a timeout.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from bench.layouts import RTP_BASE, STT
from bench.process_stats import cpu_seconds, process_tree
from bench.rtp_sniffer import RtpSniffer
from tests.support.ollama_double import OllamaDouble
from tests.support.processes import LOOPBACK, Victoria, free_port
from victoria_sip.adapters.tts_piper import PiperTTS
from victoria_sip.audio import g711
from victoria_sip.audio.resample import resample
from victoria_sip.domain import VoiceConfig

RESULTS = Path(__file__).parent / "results"
SCENARIO = Path(__file__).parents[1] / "tests" / "support" / "sipp" / "uac_speech_pcmu.xml"
SENTENCES = ("I would like to book a table for two people tomorrow evening.",
             "Do you have a table by the window?", "We will arrive at about seven o'clock.")
PAUSE_SECONDS = 1.2
RUN_ON_SECONDS = 20  # after the last caller is tried: the calls in progress keep talking
RTP_RANGE = 400
REFUSALS = "victoria_admission_refusals_total"


def sound_files(work: Path) -> tuple[Path, Path]:
    tts = PiperTTS()

    def speak(text: str, rate: int) -> tuple[np.ndarray, int]:
        audio = tts.synthesize(text, VoiceConfig())
        return resample(np.frombuffer(audio.pcm, "<i2"), audio.sample_rate, rate).astype(np.int16), audio

    pause = np.zeros(int(8000 * PAUSE_SECONDS), np.int16)
    talk = np.concatenate([part for text in SENTENCES for part in (speak(text, 8000)[0], pause)])
    ulaw = work / "chatter.ulaw"
    ulaw.write_bytes(g711.mulaw_encode(talk).tobytes())
    clip = work / "clip.wav"
    import wave

    _, voice = speak("Certainly.", 8000)
    with wave.open(str(clip), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(voice.sample_rate)
        wav.writeframes(voice.pcm)
    return ulaw, clip


def config(stt: str, workers: int, clip: Path, llm: str) -> str:
    return (f'{STT[stt]}workers = {workers}\n'
            f'[sip]\nmax_concurrent_calls = 100\nrtp_port = {RTP_BASE}\nrtp_port_range = {RTP_RANGE}\n'
            f'[llm]\nhost = "{llm}"\n'
            '[routes]\n"7000" = "front"\n'
            '[[agents]]\nname = "front"\nfirst_message = "Hello."\n'
            f'[agents.voice]\nprovider = "clip"\nvoice = "{clip}"\n'
            '[agents.turn_taking]\nreprompt_after_seconds = 3600\n')


def caller(server: Victoria, ulaw: Path, seconds: float, work: Path, n: int) -> subprocess.Popen:
    """One SIPp caller that talks for ``seconds`` (the speech file loops), then hangs up."""
    text = (SCENARIO.read_text().replace("@SPEECH@", str(ulaw)).replace("@PAUSE_MS@", str(int(seconds * 1000)))
            .replace('rtp_stream="' + str(ulaw) + ',1,0"', 'rtp_stream="' + str(ulaw) + ',-1,0"'))
    scenario = work / f"caller-{n}.xml"
    scenario.write_text(text)
    return subprocess.Popen(
        ["sipp", "-sf", str(scenario), "-s", "7000", f"{LOOPBACK}:{server.sip_port}", "-i", LOOPBACK,
         "-p", str(free_port()), "-mi", LOOPBACK, "-mp", str(30000 + 4 * n), "-m", "1", "-nostdin",
         "-timeout", f"{int(seconds + 60)}s", "-timeout_error", "-trace_err",
         "-error_file", str(work / f"sipp-{n}.err")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work)


def metric(server: Victoria, name: str) -> float:
    import re

    _, body = server.http_get("/metrics")
    return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+-]+)$", body, re.MULTILINE))


def grow(server: Victoria, ulaw: Path, args: argparse.Namespace, work: Path) -> tuple[list[dict], list]:
    """Add callers until refused (and ``--extra`` more); returns the periods (N in progress) and the callers."""
    call_seconds = args.baseline + (args.most + args.extra) * args.every + RUN_ON_SECONDS
    callers, periods, refused_at = [], [], None
    pids = process_tree(server.process.pid)
    admitted = 0
    for n in range(args.most + args.extra):
        if refused_at is not None and n - refused_at >= args.extra:
            break
        refusals = metric(server, REFUSALS)
        started = datetime.now(timezone.utc)
        elapsed = 0 if n == 0 else args.baseline + (n - 1) * args.every
        callers.append(caller(server, ulaw, call_seconds - elapsed, work, n))
        time.sleep(1.0)
        accepted = metric(server, REFUSALS) == refusals
        admitted += accepted
        if not accepted and refused_at is None:
            refused_at = n
        pids = process_tree(server.process.pid)
        cpu_before, t0 = cpu_seconds(pids), time.monotonic()
        time.sleep((args.baseline if n == 0 else args.every) - 1.0)  # one call alone first: the baseline
        periods.append({"placed": n + 1, "in_progress": admitted, "accepted": accepted, "from": started,
                        "cores": (cpu_seconds(pids) - cpu_before) / (time.monotonic() - t0),
                        "stt_busy": metric(server, "victoria_stt_busy_ratio")})
        print(f"... caller {n + 1}: {'answered' if accepted else 'refused'}; {admitted} in progress, "
              f"{periods[-1]['cores']:.2f} cores", flush=True)
    return periods, callers


def refusals_by_reason(server: Victoria) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    _, body = server.http_get("/metrics")
    return {s.labels["reason"]: s.value for f in text_string_to_metric_families(body) for s in f.samples
            if s.name == REFUSALS}


def stt_times(server: Victoria) -> list[tuple[datetime, float]]:
    """Every reply's (committed at, STT final ms after the end of speech), over every call."""
    times = []
    for call in server.calls():
        if call["status"] == "rejected":
            continue
        for turn in server.call_detail(call["id"])["turns"]:
            latency = turn.get("latency_ms") or {}
            if turn["role"] == "assistant" and latency.get("stt_final_ms") is not None:
                times.append((datetime.fromisoformat(turn["at"]), latency["stt_final_ms"]))
    return times


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def table(periods: list[dict], times: list[tuple[datetime, float]]) -> list[dict]:
    rows = []
    for period, following in zip(periods, periods[1:] + [None]):
        end = following["from"] if following else datetime.max.replace(tzinfo=timezone.utc)
        stt = [ms for at, ms in times if period["from"] <= at < end]
        rows.append({**{k: v for k, v in period.items() if k != "from"}, "turns": len(stt),
                     "stt_median_ms": round(statistics.median(stt)) if stt else None,
                     "stt_p95_ms": round(p95(stt)) if stt else None})
    base = next((r["stt_p95_ms"] for r in rows if r["in_progress"] == 1 and r["stt_p95_ms"]), None)
    for row in rows:
        row["p95_vs_one_call"] = round(row["stt_p95_ms"] / base, 2) if base and row["stt_p95_ms"] else None
    return rows


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench capacity --grow", description=__doc__.split("\n\n")[0])
    parser.add_argument("--grow", action="store_true")
    parser.add_argument("--stt", choices=("pocketsphinx", "vosk-ko"), default="pocketsphinx")
    parser.add_argument("--workers", type=int, default=0, help="recogniser workers (0: one per core)")
    parser.add_argument("--every", type=float, default=4.0, help="seconds between callers")
    parser.add_argument("--baseline", type=float, default=30.0, help="seconds of the first call alone")
    parser.add_argument("--most", type=int, default=24, help="callers tried at most before a refusal")
    parser.add_argument("--extra", type=int, default=3, help="callers tried after the first refusal")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, SIPp errors)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("the RTP sniffer needs root (AF_PACKET)")
    if args.every < 2:
        raise SystemExit("--every at least 2 seconds")
    work = Path(tempfile.mkdtemp(prefix="victoria-headroom-"))
    ulaw, clip = sound_files(work)
    sniffer = RtpSniffer(range(RTP_BASE, RTP_BASE + RTP_RANGE + 2), levels=False)
    sniffer.start()
    with OllamaDouble(reply="Certainly.") as llm:
        server = Victoria(work / "victoria", config(args.stt, args.workers, clip, llm.host),
                          db_url=f"sqlite:///{work / 'victoria.db'}")
        server.start()
        callers = []
        try:
            server.wait_ready(timeout=180)
            sniffer.record(True)
            underflows = metric(server, "victoria_playout_underflows_total")
            periods, callers = grow(server, ulaw, args, work)
            for process in callers:
                process.wait(timeout=args.baseline + (args.most + args.extra) * args.every + RUN_ON_SECONDS + 90)
            sniffer.record(False)
            underflows = metric(server, "victoria_playout_underflows_total") - underflows
            refusals = refusals_by_reason(server)
        finally:
            for process in callers:
                if process.poll() is None:
                    process.kill()
            sniffer.stop()
            server.stop(timeout=60)
        rows = table(periods, stt_times(server))
        rejected = [c for c in server.calls() if c["status"] == "rejected"]
    streams = sniffer.reports()
    result = {
        "stt": args.stt, "workers": args.workers or os.cpu_count(), "cores": os.cpu_count(), "every": args.every,
        "rows": rows, "refusals": refusals, "rejected_calls_stored": len(rejected),
        "rtp_packets": sum(s.packets for s in streams), "rtp_late_over_20ms": sum(s.late_over_20ms for s in streams),
        "rtp_worst_late_ms": round(max((s.worst_late_ms for s in streams), default=0.0), 1),
        "rtp_missing": sum(s.missing for s in streams), "underflows": int(underflows),
    }
    print_report(result)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"headroom-{args.stt}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"saved {out}")
    if args.keep:
        print(f"logs kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


def print_report(result: dict) -> None:
    print(f"\nadmission by headroom, STT {result['stt']} ({result['workers']} workers), {result['cores']} cores, "
          f"a talking caller added every {result['every']:g} s")
    print(f"{'placed':>6} {'answered':>8} {'in call':>7} {'cores':>6} {'STT busy':>8} {'turns':>6} {'STT p50':>8} "
          f"{'STT p95':>8} {'p95/N=1':>8}")
    for r in result["rows"]:
        print(f"{r['placed']:6d} {'yes' if r['accepted'] else 'REFUSED':>8} {r['in_progress']:7d} {r['cores']:6.2f} "
              f"{r['stt_busy']:8.2f} {r['turns']:6d} {r['stt_median_ms'] or '-':>8} {r['stt_p95_ms'] or '-':>8} "
              f"{r['p95_vs_one_call'] or '-':>8}")
    print(f"\nrefusals by reason: {result['refusals']}; rejected calls stored: {result['rejected_calls_stored']}")
    print(f"Victoria's RTP: {result['rtp_packets']} packets, {result['rtp_late_over_20ms']} late > 20 ms "
          f"(worst {result['rtp_worst_late_ms']} ms), {result['rtp_missing']} missing; "
          f"playout underflows {result['underflows']}")
    print("(STT: end of the caller's speech -> final transcript, the 500 ms hangover included; a period's turns "
          "are those committed while that many calls were in progress)")
