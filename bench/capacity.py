"""How many simultaneous calls one process serves, beside one process per core behind the dispatcher.

    python -m bench capacity [--calls 1,10,50,100,150,200] [--seconds 30] [--keys-every 10]
                             [--layouts single,fleet] [--stt none|pocketsphinx|vosk-ko]
    python -m bench capacity --grow --stt pocketsphinx|vosk-ko   (admission by headroom: bench/headroom.py)
    python -m bench capacity --admission --stt pocketsphinx|vosk-ko   (N callers at once, N grown until refused:
                                                                       bench/admission.py)

For every N, SIPp places N calls at once, each streaming speech (PCMU, looped)
for ``--seconds`` and pressing * every ``--keys-every`` seconds (SIP INFO), so
Victoria repeats her two-sentence greeting chunk by chunk for much of the call.
Two layouts answer in turn: one ``victoria-sip serve`` (``single``), and one
process per core behind Kamailio's dispatcher (``fleet``). Victoria answers
with an instant "clip" voice; the media path, VAD and endpointing run on every
frame; STT is off (``--stt none``, Victoria's own cost) or a real recogniser.

Measured over the middle of each run, when every call is up: CPU and resident
memory of Victoria's processes (/proc; per call = above the idle layout),
every RTP packet Victoria sends stamped by the kernel on loopback (late by more
than 20 ms against its RTP timestamp, or missing), and playout underflows
(``victoria_playout_underflows_total``: a frame was due while Victoria was
mid-utterance and none was ready, a gap in her voice). Prints a table with
both layouts and their ratio, and writes bench/results/capacity-STT.json.
Every wait has a timeout; the bench stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

from bench import admission, headroom
from bench.layouts import STT, Layout, start_fleet, start_single
from bench.process_stats import cpu_seconds, rss_mb
from bench.rtp_sniffer import RtpSniffer
from tests.support.processes import LOOPBACK, free_port
from victoria_sip.adapters.sip.pjsip_build import pjsip_build
from victoria_sip.adapters.tts_piper import PiperTTS
from victoria_sip.audio import g711
from victoria_sip.audio.resample import resample
from victoria_sip.domain import VoiceConfig

RESULTS = Path(__file__).parent / "results"
SCENARIO = Path(__file__).parent / "sipp" / "uac_load_pcmu.xml"
SIPP_MEDIA_PORT = 30000  # SIPp's RTP streams take ports upward from here, clear of Victoria's (layouts.RTP_BASE)
CALLS_PER_SECOND = 20  # SIPp's ramp: pjsua answers, Victoria greets, without a burst of its own
CALLER_SPEECH = "Hello, I would like to book a table for two people tomorrow evening, and I need a parking space."
VICTORIA_CLIP = "Of course, I can help you with that."
UNDERFLOWS = "victoria_playout_underflows_total"
INFO = """  <pause milliseconds="{pause_ms}"/>
  <send retrans="500"><![CDATA[
    INFO [next_url] SIP/2.0
    Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
    From: "Desk phone" <sip:4711@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
    To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
    Call-ID: [call_id]
    CSeq: {cseq} INFO
    [routes]
    Contact: <sip:4711@[local_ip]:[local_port]>
    Max-Forwards: 70
    Content-Type: application/dtmf-relay
    Content-Length: [len]

    Signal=*
    Duration=160
  ]]></send>
  <recv response="200"/>
"""


def sound_files(work: Path) -> tuple[Path, Path]:
    """The caller's speech (raw μ-law, with a 2 s pause, looped by SIPp) and Victoria's clip voice (WAV)."""
    tts = PiperTTS()
    speech = tts.synthesize(CALLER_SPEECH, VoiceConfig())
    samples8k = resample(np.frombuffer(speech.pcm, "<i2"), speech.sample_rate, 8000)
    ulaw = work / "speech.ulaw"
    ulaw.write_bytes(g711.mulaw_encode(np.concatenate((samples8k, np.zeros(8000 * 2, np.int16)))).tobytes())
    voice = tts.synthesize(VICTORIA_CLIP, VoiceConfig())
    clip = work / "clip.wav"
    with wave.open(str(clip), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(voice.sample_rate)
        wav.writeframes(voice.pcm)
    return ulaw, clip


def scenario(ulaw: Path, seconds: float, keys_every: float, work: Path) -> Path:
    presses = int((seconds - 2) // keys_every) if keys_every > 0 else 0
    keys = "".join(INFO.format(pause_ms=int(keys_every * 1000), cseq=2 + n) for n in range(presses))
    text = (SCENARIO.read_text().replace("@SPEECH@", str(ulaw)).replace("@KEYS@", keys)
            .replace("@PAUSE_MS@", str(int((seconds - presses * keys_every) * 1000)))
            .replace("@BYE_CSEQ@", str(2 + presses)))
    path = work / "load.xml"
    path.write_text(text)
    return path


def idle(layout: Layout, seconds: float = 5.0) -> tuple[float, float]:
    """Cores and MB the layout uses with no call (its SIP poll loops, its interpreters)."""
    before, started = cpu_seconds(layout.pids()), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(layout.pids()) - before) / (time.monotonic() - started), rss_mb(layout.pids())


def wait_until_idle(layout: Layout, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if layout.metric("victoria_active_calls") == 0:
            return True
        time.sleep(0.5)
    return False


def run_step(layout: Layout, calls: int, seconds: float, load: Path, sniffer: RtpSniffer, idle_cores: float,
             idle_rss: float, work: Path) -> dict:
    rate = min(calls, CALLS_PER_SECOND)
    command = ["sipp", "-sf", str(load), "-s", "7000", layout.target, "-i", LOOPBACK, "-p", str(free_port()),
               "-mi", LOOPBACK, "-mp", str(SIPP_MEDIA_PORT), "-m", str(calls), "-l", str(calls), "-r", str(rate),
               "-rp", "1000", "-nostdin", "-timeout", f"{int(seconds + 60)}s", "-timeout_error",
               # through the dispatcher a 180 can arrive after the 200 (Kamailio's workers relay replies in
               # parallel): a late provisional answer is ignored, not a reason to abort the call
               "-default_behaviors", "all,-abortunexp",
               "-trace_err", "-error_file", str(work / f"sipp-{calls}.err")]
    underflows_before = layout.metric(UNDERFLOWS)
    sipp = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=work)
    ramp = calls / rate + 2
    time.sleep(ramp)
    window = max(seconds - ramp - 3, 5)
    sniffer.kernel_drops()
    sniffer.record(True)
    pids = layout.pids()
    balancer = layout.balancer_pids()
    cpu_before, balancer_before, started = cpu_seconds(pids), cpu_seconds(balancer), time.monotonic()
    peak_rss = 0.0
    while time.monotonic() - started < window:
        peak_rss = max(peak_rss, rss_mb(pids))
        time.sleep(1)
    elapsed = time.monotonic() - started
    cores = (cpu_seconds(pids) - cpu_before) / elapsed
    balancer_cores = (cpu_seconds(balancer) - balancer_before) / elapsed
    sniffer.record(False)
    sniffer_drops = sniffer.kernel_drops()
    try:
        _, errors = sipp.communicate(timeout=seconds + 90)
    except subprocess.TimeoutExpired:
        sipp.kill()
        _, errors = sipp.communicate(timeout=10)
    drained = wait_until_idle(layout)
    streams = sniffer.reports()
    sniffer.clear()
    return {
        "calls": calls,
        "sipp_ok": sipp.returncode == 0,
        "streams_seen": len(streams),
        "cores": round(cores, 3),
        "cpu_percent_per_call": round(100 * (cores - idle_cores) / calls, 2),
        "balancer_cores": round(balancer_cores, 3),
        "rss_mb": round(peak_rss, 1),
        "rss_mb_per_call": round(max(peak_rss - idle_rss, 0) / calls, 2),
        "packets": sum(s.packets for s in streams),
        "late_over_20ms": sum(s.late_over_20ms for s in streams),
        "missing": sum(s.missing for s in streams),
        "worst_late_ms": round(max((s.worst_late_ms for s in streams), default=0.0), 1),
        "underflows": int(layout.metric(UNDERFLOWS) - underflows_before),
        "sniffer_drops": sniffer_drops,
        "drained": drained,
        "sipp_errors": errors.strip().splitlines()[-3:] if errors.strip() else [],
    }


def run_layout(layout: Layout, counts: list[int], args: argparse.Namespace, load: Path, work: Path) -> dict:
    sniffer = RtpSniffer(layout.rtp_ports, levels=False)
    sniffer.start()
    try:
        idle_cores, idle_rss = idle(layout)
        rows = []
        for calls in counts:
            print(f"... {layout.name}: {calls} calls for {args.seconds:.0f} s", flush=True)
            rows.append(run_step(layout, calls, args.seconds, load, sniffer, idle_cores, idle_rss, work))
            print_row(rows[-1])
    finally:
        sniffer.stop()
    clean = [r["calls"] for r in rows if clean_row(r)]
    return {"layout": layout.name, "processes": len(layout.instances), "idle_cores": round(idle_cores, 3),
            "idle_rss_mb": round(idle_rss, 1), "largest_clean_n": max(clean, default=None), "rows": rows}


def clean_row(row: dict) -> bool:
    return (row["sipp_ok"] and row["streams_seen"] == row["calls"] and row["late_over_20ms"] == 0
            and row["missing"] == 0 and row["underflows"] == 0)


HEADER = (f"{'calls':>5} {'sipp':>4} {'streams':>7} {'cores':>6} {'%cpu/call':>9} {'RSS MB':>7} {'MB/call':>7} "
          f"{'packets':>8} {'late>20':>7} {'missing':>7} {'worst ms':>8} {'underflow':>9}")


def print_row(r: dict) -> None:
    print(f"{r['calls']:5d} {'ok' if r['sipp_ok'] else 'FAIL':>4} {r['streams_seen']:7d} {r['cores']:6.2f} "
          f"{r['cpu_percent_per_call']:9.2f} {r['rss_mb']:7.0f} {r['rss_mb_per_call']:7.2f} {r['packets']:8d} "
          f"{r['late_over_20ms']:7d} {r['missing']:7d} {r['worst_late_ms']:8.1f} {r['underflows']:9d}"
          + ("" if r["sniffer_drops"] == 0 else f"  (sniffer dropped {r['sniffer_drops']})"), flush=True)


def print_report(results: list[dict], args: argparse.Namespace) -> None:
    print(f"\ncapacity, STT {args.stt}, clip voice, PCMU, {args.seconds:.0f} s calls, * every {args.keys_every:g} s; "
          f"{os.cpu_count()} cores")
    for result in results:
        print(f"\n{result['layout']}: idle {result['idle_cores']:.2f} cores, {result['idle_rss_mb']:.0f} MB; "
              f"largest clean N: {result['largest_clean_n']}")
        print(HEADER)
        for row in result["rows"]:
            print_row(row)
    if len(results) == 2:
        single, fleet = ({r["calls"]: r for r in result["rows"]} for result in results)
        print(f"\n{results[1]['layout']} / {results[0]['layout']}:")
        print(f"{'calls':>5} {'cores':>7} {'RSS MB':>7}")
        for calls in single:
            if calls in fleet and single[calls]["cores"] and single[calls]["rss_mb"]:
                print(f"{calls:5d} {fleet[calls]['cores'] / single[calls]['cores']:7.2f} "
                      f"{fleet[calls]['rss_mb'] / single[calls]['rss_mb']:7.2f}")
    print("\n(%cpu/call is above the idle layout; MB/call is the peak above it; clean: every stream seen, "
          "nothing late > 20 ms, missing or underflowed)")


def main(argv: list[str]) -> None:
    if "--grow" in argv:  # admission by headroom: callers added until one process refuses (bench/headroom.py)
        headroom.main(argv)
        return
    if "--admission" in argv:  # admission step by step: N callers at once, N grown until refused (bench/admission.py)
        admission.main(argv)
        return
    parser = argparse.ArgumentParser(prog="python -m bench capacity", description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", default="1,10,50,100,150,200", help="the Ns, comma-separated")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each call")
    parser.add_argument("--keys-every", type=float, default=10.0, help="the caller presses * this often (0: never)")
    parser.add_argument("--layouts", default="single,fleet", help="single, fleet (one process per core), or both")
    parser.add_argument("--stt", choices=sorted(STT), default="none")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, SIPp errors)")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.calls.split(",")]
    layouts = args.layouts.split(",")
    most = pjsip_build().max_concurrent_calls()
    if os.geteuid() != 0:
        raise SystemExit("the RTP sniffer needs root (AF_PACKET)")
    if max(counts) > most:
        raise SystemExit(f"this PJSIP takes at most {most} calls in one process: lower --calls")
    if not set(layouts) <= {"single", "fleet"} or args.seconds < 15:
        raise SystemExit("--layouts takes single and/or fleet; --seconds at least 15")

    work = Path(tempfile.mkdtemp(prefix="victoria-capacity-"))
    ulaw, clip = sound_files(work)
    load = scenario(ulaw, args.seconds, args.keys_every, work)
    results = []
    for kind in layouts:
        cores = os.cpu_count() or 1
        print(f"... starting {'1 process' if kind == 'single' else f'{cores} processes and the dispatcher'}",
              flush=True)
        layout = (start_single(max(counts), args.stt, clip, work) if kind == "single"
                  else start_fleet(cores, max(counts), args.stt, clip, work))
        try:
            results.append(run_layout(layout, counts, args, load, work))
        finally:
            layout.stop()
    print_report(results, args)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"capacity-{args.stt}.json"
    out.write_text(json.dumps({"cores": os.cpu_count(), "stt": args.stt, "seconds": args.seconds,
                               "keys_every": args.keys_every, "layouts": results}, indent=2))
    print(f"saved {out}")
    if args.keep:
        print(f"logs and SIPp errors kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
