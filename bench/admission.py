"""Admission control under load, step by step: one process, N talking callers at once, N grown until it refuses.

    sudo .venv/bin/python -m bench capacity --admission --stt pocketsphinx|vosk-ko
        [--steps 1,2,3,4,6,8,10,12,14,16,20,24] [--max 24] [--seconds 30] [--baseline-seconds 60]
        [--workers 0] [--past 1] [--no-admission] [--max-calls 100] [--keep]

One ``victoria-sip serve`` (layout single) with a real recogniser pool
(``[stt] workers``, 0 = one per core) and admission on its defaults
(``[admission]``; ``--no-admission`` turns it off, leaving ``--max-calls`` as
the only limit), the clip voice and the instant Ollama-protocol double. For
each N, one SIPp places N calls at once (20 a second). Each caller talks: three
sentences with 1.5 s pauses, looped, started after a random offset (0-4 s) so
the callers do not all stop talking together. The pause outlasts Victoria's
500 ms hangover, so every sentence is a turn and she answers "Certainly." (over
the caller: ``barge_in = false``, so no reply is cut and every utterance's STT
time is stored). The N = 1 step (``--baseline-seconds`` long) is the baseline.
Each step has a fresh process: the same cold start for every N, and nothing
(the admission window, a fault) carried from one step into the next; its exit
code and any traceback in its log are kept with the row.

Per N: calls placed, answered and refused (SIPp sees 486/503; by reason from
``victoria_admission_refusals_total``), the admitted calls' turns and their STT
time (the call database's ``stt_final_ms``: end of the caller's speech -> final
transcript, the hangover included; median, p95, and p95 against N = 1), the
recogniser queue p95 (``victoria_stt_queue_seconds``, a bucket bound), the
cores used by Victoria's serve process and by her recogniser workers (its child
processes, /proc), the whole machine's busy cores (SIPp included), Victoria's
RTP on the wire (kernel-stamped, late by more than 20 ms) and playout
underflows. Growth stops ``--past`` steps after the first refusal, or at
``--max``. Writes bench/results/capacity-STT-admission.json. Every wait has a
timeout; the bench stops by itself; all traffic is on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import time
import wave
from dataclasses import asdict
from pathlib import Path

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from bench.layouts import STT
from bench.process_stats import cpu_seconds, process_tree
from bench.rtp_sniffer import RtpSniffer
from tests.support.ollama_double import OllamaDouble
from tests.support.processes import LOOPBACK, Victoria, free_port
from victoria_sip.adapters.tts_piper import PiperTTS
from victoria_sip.application.admission import AdmissionLimits
from victoria_sip.audio import g711
from victoria_sip.audio.resample import resample
from victoria_sip.domain import VoiceConfig
from victoria_sip.settings import Settings

RESULTS = Path(__file__).parent / "results"
SCENARIO = Path(__file__).parent / "sipp" / "uac_admission_pcmu.xml"
SENTENCES = ("I would like to book a table for two people tomorrow evening.",
             "Do you have a table by the window?", "We will arrive at about seven o'clock.")
PAUSE_SECONDS = 1.5  # outlasts the 500 ms hangover: every sentence ends a turn
REPLY = "Certainly."
OFFSET_MS = 4000  # a caller starts talking up to this long after the answer: sentence ends spread out
CALLS_PER_SECOND = 20
# ports of their own, clear of the other benches' (20000 and 30000 up) and the test caller's (42000-43999): a
# bench running beside another on the machine neither takes its ports nor counts its packets
RTP_BASE = 24000  # Victoria's RTP: the sniffer watches these source ports
RTP_RANGE = 400
SIPP_MEDIA_PORT = 26000  # SIPp's RTP streams take ports upward from here
REFUSALS = "victoria_admission_refusals_total"
UNDERFLOWS = "victoria_playout_underflows_total"
STT_ERRORS = "victoria_model_errors_total"
STT_QUEUE = "victoria_stt_queue_seconds"
STT_BUSY = "victoria_stt_busy_ratio"
ADMISSION_WINDOW = 10.0  # [admission] window_seconds, its default: written to the config as such


def sound_files(work: Path) -> tuple[Path, Path]:
    """The caller's talk (raw μ-law: sentences and pauses, looped by SIPp) and Victoria's clip voice (WAV)."""
    tts = PiperTTS()
    pause = np.zeros(int(8000 * PAUSE_SECONDS), np.int16)
    parts = []
    for text in SENTENCES:
        audio = tts.synthesize(text, VoiceConfig())
        parts += [resample(np.frombuffer(audio.pcm, "<i2"), audio.sample_rate, 8000).astype(np.int16), pause]
    talk = work / "talk.ulaw"
    talk.write_bytes(g711.mulaw_encode(np.concatenate(parts)).tobytes())
    voice = tts.synthesize(REPLY, VoiceConfig())
    clip = work / "clip.wav"
    with wave.open(str(clip), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(voice.sample_rate)
        out.writeframes(voice.pcm)
    return talk, clip


def admission_supported() -> bool:
    """Whether this Victoria reads an [admission] table (an unknown table is a config error)."""
    return "admission" in Settings.__dataclass_fields__


def config(args: argparse.Namespace, clip: Path, llm: str) -> str:
    admission = ""
    if admission_supported():
        admission = (f"[admission]\nenabled = {'false' if args.no_admission else 'true'}\n"
                     f"window_seconds = {ADMISSION_WINDOW:g}\n")
    elif not args.no_admission:
        raise SystemExit("this Victoria has no admission control yet: run with --no-admission")
    return (f"{STT[args.stt]}workers = {args.workers}\n{admission}"
            f"[sip]\nmax_concurrent_calls = {args.max_calls}\nrtp_port = {RTP_BASE}\nrtp_port_range = {RTP_RANGE}\n"
            f'[llm]\nhost = "{llm}"\n'
            '[routes]\n"7000" = "front"\n'
            '[[agents]]\nname = "front"\nfirst_message = "Hello."\n'
            f'[agents.voice]\nprovider = "clip"\nvoice = "{clip}"\n'
            '[agents.turn_taking]\nreprompt_after_seconds = 3600\nbarge_in = false\n')


def scenario(talk: Path, seconds: float, work: Path) -> Path:
    text = (SCENARIO.read_text().replace("@SPEECH@", str(talk)).replace("@OFFSET_MS@", str(OFFSET_MS))
            .replace("@PAUSE_MS@", str(int(seconds * 1000))))
    path = work / f"admission-{seconds:g}.xml"
    path.write_text(text)
    return path


# --- what Victoria says about herself ---------------------------------------------


def scrape(server: Victoria) -> dict:
    """The counters and gauges a step reads, from /metrics."""
    status, body = server.http_get("/metrics")
    if status != 200:
        raise RuntimeError(f"/metrics answered {status}")
    found = {"refusals": {}, "underflows": 0.0, "stt_errors": 0.0, "queue_buckets": {}, "busy": 0.0, "active": 0.0}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            if s.name == REFUSALS:
                found["refusals"][s.labels["reason"]] = s.value
            elif s.name == UNDERFLOWS:
                found["underflows"] = s.value
            elif s.name == STT_ERRORS and s.labels.get("stage") == "stt":
                found["stt_errors"] = s.value
            elif s.name == f"{STT_QUEUE}_bucket":
                found["queue_buckets"][float(s.labels["le"])] = s.value
            elif s.name == STT_BUSY:
                found["busy"] = s.value
            elif s.name == "victoria_active_calls":
                found["active"] += s.value
    return found


def queue_p95(before: dict[float, float], after: dict[float, float]) -> float | None:
    """The bucket bound under which 95 % of the step's recogniser batches were decoded (None: no batch)."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]  # cumulative
    if not counts or counts[-1] <= 0:
        return None
    return next(b for b, c in zip(bounds, counts) if c >= 0.95 * counts[-1])


def wait_until_idle(server: Victoria, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if scrape(server)["active"] == 0:
            return True
        time.sleep(0.5)
    return False


def step_calls(db: Path) -> tuple[dict[str, str], list[float], int]:
    """The step's calls (id -> status), their replies' STT times (ms) and their callers' turns."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as connection:
        calls = dict(connection.execute("SELECT id, status FROM calls"))
        turns = connection.execute("SELECT call_id, role, stt_final_ms FROM turns").fetchall()
    stt = [ms for call, role, ms in turns if call in calls and role == "assistant" and ms is not None]
    caller_turns = sum(1 for call, role, _ in turns if call in calls and role == "caller")
    return calls, stt, caller_turns


# --- CPU from /proc -----------------------------------------------------------------


def per_process_cpu(root: int) -> dict[int, float]:
    return {pid: cpu_seconds([pid]) for pid in process_tree(root)}


def machine_busy_ticks() -> tuple[int, int]:
    """(busy, total) jiffies over every core since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


class CpuWindow:
    """Cores used by Victoria's serve process, by its children (the recogniser workers), by SIPp and by the
    whole machine, over a window; pids that appear meanwhile (a replaced worker) count from zero."""

    def __init__(self, server_pid: int, sipp_pid: int) -> None:
        self._server, self._sipp = server_pid, sipp_pid
        self._before = per_process_cpu(server_pid)
        self._sipp_before = cpu_seconds(process_tree(sipp_pid))
        self._bench_before = cpu_seconds([os.getpid()])  # the sniffer's thread
        self._machine_before = machine_busy_ticks()
        self._started = time.monotonic()

    def cores(self) -> dict[str, float]:
        elapsed = time.monotonic() - self._started
        now = per_process_cpu(self._server)
        used = {pid: cpu - self._before.get(pid, 0.0) for pid, cpu in now.items()}
        busy, total = (a - b for a, b in zip(machine_busy_ticks(), self._machine_before))
        victoria = sum(used.values()) / elapsed
        sipp = (cpu_seconds(process_tree(self._sipp)) - self._sipp_before) / elapsed
        bench = (cpu_seconds([os.getpid()]) - self._bench_before) / elapsed
        machine = busy / total * (os.cpu_count() or 1) if total else 0.0
        return {
            "victoria_cores": round(victoria, 3),
            "serve_cores": round(used.get(self._server, 0.0) / elapsed, 3),
            "workers_cores": round(sum(v for pid, v in used.items() if pid != self._server) / elapsed, 3),
            "sipp_cores": round(sipp, 3), "bench_cores": round(bench, 3),
            "machine_busy_cores": round(machine, 3),
            "other_cores": round(max(machine - victoria - sipp - bench, 0.0), 3),  # not ours: anything beside
        }


# --- one step -----------------------------------------------------------------------


def place_calls(server: Victoria, load: Path, calls: int, seconds: float, work: Path) -> tuple[subprocess.Popen, Path]:
    log = work / f"sipp-{calls}.log"
    command = ["sipp", "-sf", str(load), "-s", "7000", f"{LOOPBACK}:{server.sip_port}", "-i", LOOPBACK,
               "-p", str(free_port()), "-mi", LOOPBACK, "-mp", str(SIPP_MEDIA_PORT), "-m", str(calls),
               "-l", str(calls), "-r", str(min(calls, CALLS_PER_SECOND)), "-rp", "1000", "-nostdin",
               "-timeout", f"{int(seconds + OFFSET_MS / 1000 + 60)}s", "-timeout_error",
               "-default_behaviors", "all,-abortunexp", "-trace_logs", "-log_file", str(log),
               "-trace_err", "-error_file", str(work / f"sipp-{calls}.err")]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=work), log


def outcomes(log: Path) -> dict[str, int]:
    text = log.read_text() if log.exists() else ""
    return {"answered": len(re.findall(r"^answered", text, re.MULTILINE)),
            "refused_486": len(re.findall(r"^refused 486", text, re.MULTILINE)),
            "refused_503": len(re.findall(r"^refused 503", text, re.MULTILINE))}


def run_step(server: Victoria, calls: int, seconds: float, talk: Path, sniffer: RtpSniffer, work: Path) -> dict:
    load = scenario(talk, seconds, work)
    before = scrape(server)
    sipp, log = place_calls(server, load, calls, seconds, work)
    started = time.monotonic()
    ramp = calls / min(calls, CALLS_PER_SECOND)
    time.sleep(ramp + OFFSET_MS / 1000 + 1)  # every call placed, every caller talking
    window_end = started + ramp + seconds - 1  # before the first caller hangs up
    sniffer.kernel_drops()
    sniffer.record(True)
    cpu = CpuWindow(server.process.pid, sipp.pid)
    busy = []
    while time.monotonic() < window_end:
        busy.append(scrape(server)["busy"])
        time.sleep(min(1.0, max(window_end - time.monotonic(), 0)))
    cores = cpu.cores()
    sniffer.record(False)
    sniffer_drops = sniffer.kernel_drops()
    try:
        _, errors = sipp.communicate(timeout=seconds + OFFSET_MS / 1000 + 90)
    except subprocess.TimeoutExpired:
        sipp.kill()
        _, errors = sipp.communicate(timeout=10)
    drained = wait_until_idle(server)
    after = scrape(server)
    stored, stt, caller_turns = step_calls(server.workdir / "victoria.db")
    streams = sniffer.reports()
    sniffer.clear()
    said = outcomes(log)
    refused_by = {reason: int(after["refusals"].get(reason, 0) - before["refusals"].get(reason, 0))
                  for reason in after["refusals"]}
    refused = said["refused_486"] + said["refused_503"]
    if refused > sum(refused_by.values()):  # refused, but not by admission: the calls were at max_concurrent_calls
        refused_by["max_calls"] = refused - sum(refused_by.values())
    return {
        "calls": calls, "seconds": seconds, "sipp_ok": sipp.returncode == 0,
        "answered": said["answered"], "refused": refused,
        "refused_486": said["refused_486"], "refused_503": said["refused_503"],
        "refusals_by_reason": {r: n for r, n in refused_by.items() if n},
        "stored_calls": len(stored), "stored_rejected": sum(1 for s in stored.values() if s == "rejected"),
        "caller_turns": caller_turns, "replies": len(stt),
        "stt_median_ms": round(float(np.median(stt))) if stt else None,
        "stt_p95_ms": round(float(np.percentile(stt, 95))) if stt else None,
        "stt_max_ms": round(max(stt)) if stt else None,
        "stt_queue_p95_le_s": queue_p95(before["queue_buckets"], after["queue_buckets"]),
        "stt_busy_ratio_mean": round(float(np.mean(busy)), 3) if busy else None,
        "stt_errors": int(after["stt_errors"] - before["stt_errors"]),
        **cores,
        "rtp_streams": len(streams), "rtp_packets": sum(s.packets for s in streams),
        "rtp_late_over_20ms": sum(s.late_over_20ms for s in streams),
        "rtp_missing": sum(s.missing for s in streams),
        "rtp_worst_late_ms": round(max((s.worst_late_ms for s in streams), default=0.0), 1),
        "underflows": int(after["underflows"] - before["underflows"]),
        "sniffer_drops": sniffer_drops, "drained": drained,
        "sipp_errors": errors.strip().splitlines()[-3:] if errors.strip() else [],
    }


# --- growth -------------------------------------------------------------------------


def grow(args: argparse.Namespace, talk: Path, clip: Path, llm: str, work: Path) -> list[dict]:
    """Each N on a fresh ``victoria-sip serve``: every step starts from the same cold state (nothing in the
    admission window, no recogniser in use), and a fault in one step cannot spill into the next."""
    steps = sorted({n for n in (int(v) for v in args.steps.split(",")) if 1 <= n <= args.max} | {1})
    sniffer = RtpSniffer(range(RTP_BASE, RTP_BASE + RTP_RANGE + 2), levels=False)
    sniffer.start()
    rows, first_refusal = [], None
    try:
        for index, calls in enumerate(steps):
            seconds = args.baseline_seconds if calls == 1 else args.seconds
            print(f"... {calls} call{'s' if calls > 1 else ''} at once, {seconds:g} s", flush=True)
            rows.append(serve_step(calls, seconds, args, talk, clip, llm, sniffer, work))
            add_ratio(rows)
            print_row(rows[-1], header=index == 0)
            if rows[-1]["refused"] and first_refusal is None:
                first_refusal = index
            if first_refusal is not None and index - first_refusal >= args.past:
                break
    finally:
        sniffer.stop()
    return rows


def serve_step(calls: int, seconds: float, args: argparse.Namespace, talk: Path, clip: Path, llm: str,
               sniffer: RtpSniffer, work: Path) -> dict:
    server = Victoria(work / f"victoria-{calls}", config(args, clip, llm))
    server.start()
    try:
        server.wait_ready(timeout=180)
        row = run_step(server, calls, seconds, talk, sniffer, work)
    finally:
        try:
            exit_code: int | str = server.stop(timeout=60)
        except RuntimeError:  # killed after ignoring SIGTERM: the row says so
            exit_code = "killed (ignored SIGTERM for 60 s)"
    log = server.log()
    row["victoria_exit_code"] = exit_code
    row["victoria_tracebacks"] = log.count("Traceback (most recent call last)")
    row["victoria_first_traceback"] = _first_traceback(log)
    return row


def _first_traceback(log: str) -> str | None:
    """The exception line that ends Victoria's first traceback, with the thread it killed, if any."""
    lines = log.splitlines()
    for number, line in enumerate(lines):
        if line.startswith("Traceback (most recent call last)"):
            where = lines[number - 1] if number and lines[number - 1].startswith("Exception in thread") else ""
            end = next((text for text in lines[number + 1:] if text and not text.startswith((" ", "\t"))), "")
            return f"{where} {end}".strip()
    return None


def add_ratio(rows: list[dict]) -> None:
    base = rows[0]["stt_p95_ms"]
    for row in rows:
        row["p95_vs_one_call"] = round(row["stt_p95_ms"] / base, 2) if base and row["stt_p95_ms"] else None


HEADER = (f"{'N':>3} {'ans':>4} {'ref':>4} {'refused by':>14} {'replies':>7} {'STT p50':>7} {'STT p95':>7} "
          f"{'p95/N1':>6} {'queue95':>7} {'cores':>5} {'serve':>5} {'workers':>7} {'machine':>7} "
          f"{'late>20':>7} {'underfl':>7}")


def print_row(r: dict, header: bool = False) -> None:
    if header:
        print(HEADER)
    reasons = ",".join(f"{k}:{v}" for k, v in r["refusals_by_reason"].items()) or "-"
    queue = "-" if r["stt_queue_p95_le_s"] is None else f"≤{r['stt_queue_p95_le_s']:g}s"
    print(f"{r['calls']:3d} {r['answered']:4d} {r['refused']:4d} {reasons:>14} {r['replies']:7d} "
          f"{r['stt_median_ms'] or '-':>7} {r['stt_p95_ms'] or '-':>7} {r['p95_vs_one_call'] or '-':>6} "
          f"{queue:>7} {r['victoria_cores']:5.2f} {r['serve_cores']:5.2f} {r['workers_cores']:7.2f} "
          f"{r['machine_busy_cores']:7.2f} {r['rtp_late_over_20ms']:7d} {r['underflows']:7d}"
          + ("" if r["sipp_ok"] else "  (SIPp: failed calls)")
          + ("" if r["answered"] + r["refused"] == r["calls"] else f"  ({r['calls'] - r['answered'] - r['refused']}"
             " neither answered nor refused)")
          + ("" if r["sniffer_drops"] == 0 else f"  (sniffer dropped {r['sniffer_drops']})")
          + ("" if not r.get("victoria_tracebacks") else f"  (Victoria: {r['victoria_tracebacks']} traceback(s), "
             f"exit {r['victoria_exit_code']}: {r['victoria_first_traceback']})"), flush=True)


def verdict(rows: list[dict], goal: float) -> dict:
    clean = [r for r in rows if not r["refused"]]
    refused = [r for r in rows if r["refused"]]
    largest = max(clean, key=lambda r: r["calls"], default=None)
    admitted_ok = all((r["p95_vs_one_call"] or 0) <= goal for r in rows)
    return {
        "baseline_stt_p95_ms": rows[0]["stt_p95_ms"] if rows else None,
        "largest_n_all_admitted": largest["calls"] if largest else None,
        "first_n_refused": refused[0]["calls"] if refused else None,
        "most_admitted_at_once": max((r["answered"] for r in rows), default=0),
        "admitted_p95_within_goal": admitted_ok,
        "goal_p95_ratio": goal,
        "workers_cores_at_largest": largest["workers_cores"] if largest else None,
    }


def print_report(result: dict) -> None:
    v = result["verdict"]
    print(f"\nadmission {'on' if result['admission'] else 'OFF'}, STT {result['stt']} "
          f"({result['workers']} recogniser workers), {result['cores']} cores, one process; "
          f"N talking callers at once, {result['seconds']:g} s calls (N = 1: {result['baseline_seconds']:g} s)")
    for index, row in enumerate(result["rows"]):
        print_row(row, header=index == 0)
    print(f"\nbaseline STT p95 {v['baseline_stt_p95_ms']} ms; largest N all admitted: {v['largest_n_all_admitted']}; "
          f"first N refused: {v['first_n_refused']}; most calls admitted at once: {v['most_admitted_at_once']}; "
          f"admitted calls' p95 within {v['goal_p95_ratio']:g}x of one call's at every N: "
          f"{'yes' if v['admitted_p95_within_goal'] else 'NO'}; recogniser workers at the largest N: "
          f"{v['workers_cores_at_largest']} cores")
    print("(STT: end of the caller's speech -> final transcript, the 500 ms hangover included, admitted calls only; "
          "queue95: p95 of audio handed over -> decoded, a histogram bucket bound; cores: Victoria = serve + "
          "recogniser workers; machine: every process, SIPp's RTP included; late>20: Victoria's RTP packets later "
          "than 20 ms on the wire; underfl: playout underflows)")


def source_state() -> str:
    """The commit measured, and whether victoria_sip had changes not committed (they were measured too)."""
    root = Path(__file__).parents[1]

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=root, timeout=10,
                              check=False).stdout.strip()

    dirty = git("status", "--porcelain", "victoria_sip")
    return git("rev-parse", "--short", "HEAD") + (" + uncommitted victoria_sip changes" if dirty else "")


def machine_busy(seconds: float = 3.0) -> float:
    """Cores the whole machine keeps busy now (another bench or test beside this one skews every number)."""
    before = machine_busy_ticks()
    time.sleep(seconds)
    busy, total = (a - b for a, b in zip(machine_busy_ticks(), before))
    return busy / total * (os.cpu_count() or 1) if total else 0.0


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench capacity --admission",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--admission", action="store_true")
    parser.add_argument("--stt", choices=("pocketsphinx", "vosk-ko"), default="pocketsphinx")
    parser.add_argument("--steps", default="1,2,3,4,6,8,10,12,14,16,20,24", help="the Ns tried, in order")
    parser.add_argument("--max", type=int, default=24, help="the largest N tried")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long each caller talks")
    parser.add_argument("--baseline-seconds", type=float, default=60.0, help="how long the single caller talks")
    parser.add_argument("--workers", type=int, default=0, help="[stt] workers (0: one per core)")
    parser.add_argument("--past", type=int, default=1, help="steps tried after the first refusal")
    parser.add_argument("--no-admission", action="store_true", help="[admission] enabled = false")
    parser.add_argument("--max-calls", type=int, default=100, help="[sip] max_concurrent_calls")
    parser.add_argument("--goal", type=float, default=1.5, help="admitted calls' STT p95 within this x one call's")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, SIPp files, database)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("the RTP sniffer needs root (AF_PACKET)")
    if args.seconds < 20 or args.baseline_seconds < 20:
        raise SystemExit("--seconds and --baseline-seconds at least 20 (the callers start within 4 s)")
    already = machine_busy()
    if already > 0.3:
        print(f"warning: the machine is already {already:.2f} cores busy (another bench or test?): "
              "the numbers below share the cores with it", flush=True)
    work = Path(tempfile.mkdtemp(prefix="victoria-admission-"))
    talk, clip = sound_files(work)
    with OllamaDouble(reply=REPLY) as llm:
        rows = grow(args, talk, clip, llm.host, work)
    workers = args.workers or len(os.sched_getaffinity(0))
    result = {"stt": args.stt, "workers": workers, "cores": os.cpu_count(), "admission": not args.no_admission,
              "seconds": args.seconds, "baseline_seconds": args.baseline_seconds, "steps": args.steps,
              "max_concurrent_calls": args.max_calls, "admission_limits": asdict(AdmissionLimits()),
              "source": source_state(), "machine_busy_cores_before": round(already, 2),
              "rows": rows, "verdict": verdict(rows, args.goal)}
    print_report(result)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"capacity-{args.stt}-{'admission' if not args.no_admission else 'no-admission'}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"saved {out}")
    if args.keep:
        print(f"logs, SIPp files and the call database kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
