"""Voice-to-voice latency of a scripted call, per stage, and what Victoria itself adds.

    python -m bench latency [--turns 20] [--stand-ins] [--llm-first-token 0.0] [--codec PCMU/8000/1] [--pauses]
                            [--llm-model PATH.gguf [--llm-threads 2]]

A real call on loopback through Kamailio: ``victoria-sip serve`` with the
PocketSphinx recogniser, the Ollama-protocol double as the LLM (it waits
``--llm-first-token`` seconds before its first token), and Piper as the voice,
or with ``--stand-ins`` a "clip" voice that returns a precomputed recording
instantly. With ``--llm-model`` a real GGUF model answers instead of the double,
through llama.cpp behind the Ollama protocol (``bench/llama_server.py``, in its own
process; ``bench/setup_llm.sh`` installs it and prints SmolLM2's path), and its
tokens per second are reported from the server's own timing. The pjsua2 test
caller asks spoken questions with pauses and records what comes back; with
``--pauses`` its sentences themselves have 300-700 ms pauses in them
(``bench/premature.py``).

Per reply, from the end of the caller's speech: (a) endpoint decision, (b) STT
final, (c) LLM first token, (d) first speakable chunk, (e) first TTS audio (all
read back from the call log, Victoria's clock), and (f) the first frame of the
reply as the caller hears it (found in the caller's recording; it includes both
jitter buffers), and, when run as root with PCMU, (f) on the wire: the first
loud RTP packet of the reply after the last loud packet of the question, both
stamped by the kernel on loopback. Victoria's own overhead = (f on the wire) −
hangover − STT compute − LLM wait (and first sentence) − TTS compute; "Victoria pipeline" is the same
on Victoria's clock, up to the frame handed to pjmedia. Next to those times,
the replies that were premature (begun before the caller had finished the
question) and the questions answered more than once: speed bought by cutting
people off does not count. Prints a table (median, p95) and writes
bench/results/latency*.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import tempfile
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np

from bench.llama_server import LlamaServerProcess
from bench.premature import PAUSED_QUESTIONS, Cutoffs, count_cutoffs, paused_speech
from bench.rtp_sniffer import RtpSniffer
from tests.support.ollama_double import OllamaDouble
from tests.support.processes import Kamailio, Victoria, free_port, run_caller
from tests.support.wav import read_wav, write_wav
from victoria_sip.adapters.tts_piper import PiperTTS
from victoria_sip.audio.levels import rms_dbfs
from victoria_sip.audio.resample import resample
from victoria_sip.domain import TurnTaking, VoiceConfig

RESULTS = Path(__file__).parent / "results"
VICTORIA_RTP = range(47000, 47100)
CALLER_RTP = range(42000, 44000)  # tests/support/sip_caller.py binds RTP in 42000-43999
RATE = 16000
FRAME = RATE // 50
DEFAULTS = TurnTaking()  # the agent's defaults, written out so the table's header says what was measured
HANGOVER_MS = DEFAULTS.hangover_ms
FINISHED_HANGOVER_MS = DEFAULTS.finished_hangover_ms
UNFINISHED_HANGOVER_MS = DEFAULTS.unfinished_hangover_ms
PAUSE_MS = DEFAULTS.pause_ms
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
PROMPT = ("You are Victoria, the receptionist of a small restaurant, answering the telephone. "
          "Answer in one or two short sentences.")
LLM_MAX_TOKENS = 32  # one or two short sentences (~10 s of Piper); SmolLM2 ignores "short" and would talk on


def speak(tts: PiperTTS, text: str) -> np.ndarray:
    audio = tts.synthesize(text, VoiceConfig())
    return resample(np.frombuffer(audio.pcm, "<i2"), audio.sample_rate, RATE)



def loud_frames(samples: np.ndarray) -> np.ndarray:
    n = len(samples) // FRAME
    return np.array([rms_dbfs(samples[i * FRAME : (i + 1) * FRAME]) > LOUD_DBFS for i in range(n)])


def caller_script(spoken: list[np.ndarray], turns: int,
                  gap: float) -> tuple[np.ndarray, list[tuple[int, int]], list[int]]:
    """The caller's audio; per question, (frame where its speech ends, frame where the next one starts); and per
    question the frame where its speech starts."""
    parts, ends, firsts, position = [np.zeros(3 * RATE, np.int16)], [], [], 3 * RATE  # 3 s: the greeting
    for i in range(turns):
        question = spoken[i % len(spoken)]
        loud = np.nonzero(loud_frames(question))[0]
        parts += [question, np.zeros(int(gap * RATE), np.int16)]
        firsts.append(position // FRAME + loud[0])
        ends.append(position // FRAME + loud[-1] + 1)
        position += len(question) + int(gap * RATE)
    starts = firsts[1:] + [position // FRAME]  # a reply after the next question began is not this one's
    return np.concatenate(parts), [(end, nxt) for end, nxt in zip(ends, starts)], firsts


def spoken_questions(tts: PiperTTS, pauses: bool) -> list[np.ndarray]:
    if pauses:
        return [paused_speech(lambda text: speak(tts, text), question, RATE) for question in PAUSED_QUESTIONS]
    return [speak(tts, question) for question in QUESTIONS]


def language_model(args: argparse.Namespace, work: Path) -> AbstractContextManager:
    """The LLM Victoria talks to: the instant double, or a real model served by llama.cpp (``--llm-model``)."""
    if args.llm_model:
        return LlamaServerProcess(args.llm_model, args.llm_threads, work, free_port(socket.SOCK_STREAM), LLM_MAX_TOKENS,
                                  nice=args.llm_nice)
    return OllamaDouble(reply=REPLY, first_token_delay=args.llm_first_token)


def llm_speed(timings: list[dict]) -> dict | None:
    """The real model's own numbers (llama.cpp, per reply): tokens per second, tokens, first token."""
    if not timings:
        return None
    return {"replies": len(timings),
            "tokens_per_second_median": statistics.median(t["tokens_per_second"] for t in timings),
            "tokens_per_second_min": min(t["tokens_per_second"] for t in timings),
            "reply_tokens_median": statistics.median(t["eval_count"] for t in timings),
            "prompt_tokens_median": statistics.median(t["prompt_eval_count"] for t in timings),
            "first_token_ms_median": statistics.median(t["first_token_s"] * 1000 for t in timings),
            "first_token_ms_p95": float(np.percentile([t["first_token_s"] * 1000 for t in timings], 95))}


def speculation_outcomes(metrics: str) -> dict[str, int]:
    """Replies prepared in pauses: released (hit) or discarded unheard because the caller went on (miss)."""
    found = re.findall(r'victoria_speculative_replies_total\{agent="front",outcome="(\w+)"\} (\S+)', metrics)
    return {"hit": 0, "miss": 0} | {outcome: int(float(count)) for outcome, count in found}


def call_log_turns(turns: list[dict]) -> dict:
    """What Victoria stored after its greeting: a caller turn per question and a reply to each, if all went well."""
    after_greeting = turns[1:] if turns and turns[0]["role"] == "assistant" else turns
    replies = [t for t in after_greeting if t["role"] == "assistant"]
    return {"caller_turns": sum(t["role"] == "caller" for t in after_greeting), "replies": len(replies),
            "interrupted_replies": sum(bool(t["interrupted"]) for t in replies)}


def answers(replies: list[dict], heard_per_question: list[int]) -> list[dict | None]:
    """Per question, the call log's timing of the reply that answered it: the last of the replies heard in its
    span (earlier ones cut the caller off, and their times run from a pause, not from the end of the question);
    when the log holds replies too short to hear, the ones the caller did not interrupt."""
    if sum(heard_per_question) == len(replies):
        chosen, taken = [], 0
        for n in heard_per_question:
            taken += n
            chosen.append(replies[taken - 1]["latency_ms"] if n else None)
        return chosen
    whole = [reply["latency_ms"] for reply in replies if not reply["interrupted"]]
    if len(whole) == len(heard_per_question):
        return whole
    print(f"warning: {len(replies)} replies in the call log ({len(whole)} whole), {sum(heard_per_question)} heard: "
          "the per-stage rows may pair a question with another's reply")
    return [reply["latency_ms"] for reply in replies]


def measured_at() -> str:
    """The commit the bench ran on (+dirty when the checkout had changes: they were measured too)."""
    result = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                            cwd=Path(__file__).parent)
    return result.stdout.strip() or "unknown"


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
    # both ends of the stream named: tests running beside the bench have callers in the same port span
    caller = max((rows for (src, dst, _), rows in streams.items() if src in CALLER_RTP and dst in VICTORIA_RTP),
                 key=len, default=None)
    victoria = max((rows for (src, dst, _), rows in streams.items() if src in VICTORIA_RTP and dst in CALLER_RTP),
                   key=len, default=None)
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


def print_cutoffs(cutoffs: Cutoffs, table: dict[str, list[float]], logged: dict) -> None:
    """The premature count as a row next to the first-reply times it must be read with."""
    n = len(cutoffs.premature)
    first = next((key for key in ("(f) first reply RTP packet on the wire", "    first reply audio heard by the caller")
                  if table[key]), None)
    times = f"{stats(table[first])[0]:8.0f} {stats(table[first])[1]:8.0f}  ({first.strip()})" if first else ""
    print(f"{f'premature replies: {cutoffs.premature_count} of {n}':44} {times}")
    print(f"{f'answered in pieces: {cutoffs.answered_in_pieces} of {n}':44} (more than one reply to one question)")
    extra_turns = max(0, logged["caller_turns"] - n)  # a sentence cut at a pause, even if no reply was heard
    print(f"{f'questions cut into turns: {extra_turns} extra':44} "
          f"call log: {logged['caller_turns']} caller turns, {logged['replies']} replies "
          f"({logged['interrupted_replies']} interrupted) for {n} questions")
    if cutoffs.talked_over:
        print(f"  {cutoffs.talked_over} questions began while a reply was still playing: a longer --gap measures better")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench latency")
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--stand-ins", action="store_true", help="TTS returns a precomputed clip (LLM double: 0 ms)")
    parser.add_argument("--llm-first-token", type=float, default=0.0, help="seconds the LLM double waits")
    parser.add_argument("--codec", default="PCMU/8000/1", help="PCMU lets the sniffer hear speech on the wire")
    parser.add_argument("--gap", type=float, help="seconds of caller silence after each question "
                                                  "(default 5, with --llm-model 15: its replies are longer)")
    parser.add_argument("--pauses", action="store_true",
                        help="questions with 300-700 ms pauses inside their sentences (bench/premature.py)")
    parser.add_argument("--llm-model", type=Path, help="a GGUF chat model served by llama.cpp instead of the "
                                                       "double (bench/setup_llm.sh installs one)")
    parser.add_argument("--llm-threads", type=int, default=2, help="llama.cpp threads, with --llm-model")
    parser.add_argument("--pause-ms", type=int, default=PAUSE_MS,
                        help="silence after which a reply is prepared on the words so far (the agent's pause_ms)")
    parser.add_argument("--llm-nice", type=int, default=0,
                        help="run the model's server at this niceness (10: below Victoria, as Ollama's unit may)")
    parser.add_argument("--keep", action="store_true", help="keep the recordings and logs (the path is printed)")
    args = parser.parse_args(argv)
    if args.llm_model and not args.llm_model.is_file():
        parser.error(f"no such model file: {args.llm_model} (bench/setup_llm.sh prints SmolLM2's path)")
    gap = args.gap if args.gap is not None else 15.0 if args.llm_model else 5.0

    load_before = os.getloadavg()[0]  # other work on the machine skews every number here: say how much there was
    work = Path(tempfile.mkdtemp(prefix="victoria-bench-"))
    tts = PiperTTS()
    audio, questions, question_starts = caller_script(spoken_questions(tts, args.pauses), args.turns, gap)
    write_wav(work / "caller.wav", audio, RATE)
    voice = '[agents.voice]\nprovider = "piper"\n'
    if args.stand_ins:
        voice = f'[agents.voice]\nprovider = "clip"\nvoice = "{write_wav(work / "reply.wav", speak(tts, REPLY), RATE)}"\n'

    kamailio = Kamailio(work / "kamailio")
    sniffer = RtpSniffer(set(VICTORIA_RTP) | set(CALLER_RTP)) if os.geteuid() == 0 else None
    if sniffer:
        sniffer.start()
        sniffer.record(True)
    with language_model(args, work) as llm:
        kamailio.start()
        model = f'model = "{llm.name}"\n' if args.llm_model else ""
        config = (f'[llm]\nhost = "{llm.host}"\n{model}[sip]\nrtp_port = {VICTORIA_RTP.start}\n'
                  f'rtp_port_range = {len(VICTORIA_RTP)}\n[[sip.accounts]]\nname = "desk"\nregistrar = "{kamailio.registrar}"\n'
                  'user = "7000"\nagent = "front"\n[[agents]]\nname = "front"\nfirst_message = "Hello."\n'
                  f'system_prompt = "{PROMPT}"\n'
                  f'{voice}[agents.turn_taking]\nreprompt_after_seconds = 60\nhangover_ms = {HANGOVER_MS}\n'
                  f'finished_hangover_ms = {FINISHED_HANGOVER_MS}\nunfinished_hangover_ms = {UNFINISHED_HANGOVER_MS}\n'
                  f'pause_ms = {args.pause_ms}\n')
        server = Victoria(work / "victoria", config, env={"VICTORIA_ACCOUNT_DESK_PASSWORD": "reception-secret"})
        server.start()
        try:
            server.wait_for_log(r"account 'desk' registered", timeout=90)
            seconds = len(audio) / RATE
            report = run_caller(f"sip:7000@{kamailio.registrar}", proxy=f"sip:{kamailio.registrar}",
                                password="caller-secret", play=work / "caller.wav", record=work / "heard.wav",
                                hangup_after=seconds, codec=args.codec, timeout=seconds + 30)
            server.wait_for_log(r"ended, caller-hangup", timeout=30)
            speculation = speculation_outcomes(server.http_get("/metrics")[1])
        finally:
            server.stop()
            kamailio.stop()
            if sniffer:
                sniffer.stop()
        speed = llm_speed(llm.timings()) if args.llm_model else None
    [call] = server.calls()
    turns = server.call_detail(call["id"])["turns"]
    replies = [t for t in turns if t["role"] == "assistant" and t["latency_ms"]]
    heard, _ = read_wav(work / "heard.wav")
    cutoffs = count_cutoffs(loud_frames(heard), question_starts, questions)
    replies = answers(replies, cutoffs.replies)
    heard_ms_all = heard_reply_ms(heard, questions)
    on_wire = sniffer and report["codec"] == "PCMU"
    wire_all = wire_reply_ms(sniffer, questions) if on_wire else [None] * len(questions)
    wire_floor_all = wire_reply_ms(sniffer, questions, VAD_FLOOR_DBFS) if on_wire else [None] * len(questions)

    table: dict[str, list[float]] = {k: [] for k in (
        "(a) endpoint decision", "(b) STT final", "(c) LLM first token", "(d) first speakable chunk",
        "(e) first TTS audio", "    first frame to pjmedia", "(f) first reply RTP packet on the wire",
        "    first reply audio heard by the caller", "STT final - endpoint (< 0: before it)", "LLM wait",
        "LLM first sentence (first token to chunk)", "TTS compute",
        "Victoria pipeline = to pjmedia - ready", "Victoria overhead = f(wire) - ready",
        "(f) from the caller's last packet above -50 dBFS", "Victoria overhead, from the -50 dBFS end")}
    ready_early = []  # per measured reply: its first audio existed before the turn ended (prepared in a pause)
    for latency, heard_ms, wire_ms, floor_ms in zip(replies, heard_ms_all, wire_all, wire_floor_all):
        if latency is None:
            continue
        steps = [latency[k] for k in ("endpoint_ms", "stt_final_ms", "llm_request_ms", "llm_first_token_ms",
                                      "first_chunk_ms", "tts_first_audio_ms", "first_frame_out_ms")]
        if heard_ms is None or any(v is None for v in steps):
            continue
        endpoint, stt, request, token, chunk, tts_audio, out = steps
        stt_after, llm_wait, tts_compute = stt - endpoint, token - request, tts_audio - chunk
        # a real model spends time generating the first sentence after its first token: model time too
        sentence = chunk - token
        # ready: the turn has ended and the first audio exists (a reply prepared in a pause waits for the end)
        ready = max(endpoint, tts_audio)
        values = (endpoint, stt, token, chunk, tts_audio, out, wire_ms, heard_ms, stt_after, llm_wait, sentence,
                  tts_compute, out - ready, None if wire_ms is None else wire_ms - ready,
                  floor_ms, None if floor_ms is None else floor_ms - ready)
        ready_early.append(tts_audio < endpoint)
        for key, value in zip(table, values):
            if value is not None:
                table[key].append(value)

    llm_name = (f"LLM {args.llm_model.name} via llama.cpp, {args.llm_threads} threads"
                f"{f', nice {args.llm_nice}' if args.llm_nice else ''}" if args.llm_model
                else f"LLM double, first token {args.llm_first_token * 1000:.0f} ms")
    mode = f"{'stand-ins (clip TTS)' if args.stand_ins else 'real models (PocketSphinx, Piper)'}; {llm_name}"
    script = "questions with 300-700 ms pauses inside" if args.pauses else "plain questions"
    commit = measured_at()
    print(f"voice-to-voice latency, {len(table['(a) endpoint decision'])} of {args.turns} replies measured; "
          f"{mode}; {script}; codec {report['codec']} via Kamailio; hangovers {FINISHED_HANGOVER_MS}/{HANGOVER_MS}/"
          f"{UNFINISHED_HANGOVER_MS} ms (finished/ordinary/unfinished words), replies prepared after {args.pause_ms} ms; "
          f"{os.cpu_count()} cores, load {load_before:.1f} before / {os.getloadavg()[0]:.1f} after; at {commit}")
    print(f"{'ms after the end of the caller speech':44} {'median':>8} {'p95':>8}")
    rows = []
    for key, values in table.items():
        if values:
            median, p95 = stats(values)
            rows.append({"stage": key.strip(), "n": len(values), "median_ms": median, "p95_ms": p95})
            print(f"{key:44} {median:8.0f} {p95:8.0f}")
    logged = call_log_turns(turns)
    print_cutoffs(cutoffs, table, logged)
    print(f"replies prepared in a pause: {sum(ready_early)} of {len(ready_early)}   (their first audio ready before "
          "the endpoint, released at it)")
    print(f"speculation: {speculation['hit']} replies prepared in a pause were released, {speculation['miss']} "
          "discarded unheard (the caller went on, or said more than the words they were prepared on)")
    if speed:
        print(f"LLM (llama.cpp's own timing, {speed['replies']} replies): {speed['tokens_per_second_median']:.0f} tokens/s "
              f"median (min {speed['tokens_per_second_min']:.0f}), {speed['reply_tokens_median']:.0f} tokens a reply, "
              f"prompt {speed['prompt_tokens_median']:.0f} tokens, first token {speed['first_token_ms_median']:.0f} ms "
              f"median / {speed['first_token_ms_p95']:.0f} ms p95 after the request")
    RESULTS.mkdir(exist_ok=True)
    name = "".join(["-stand-ins" if args.stand_ins else "", f"-llm-{args.llm_threads}t" if args.llm_model else "",
                    f"-nice{args.llm_nice}" if args.llm_model and args.llm_nice else "",
                    "-pauses" if args.pauses else ""])
    out = RESULTS / f"latency{name}.json"
    out.write_text(json.dumps({"cores": os.cpu_count(), "load_before": load_before, "load_after": os.getloadavg()[0],
                               "mode": mode, "script": script, "commit": commit,
                               "turns": args.turns, "gap_s": gap, "codec": report["codec"],
                               "llm_first_token_s": args.llm_first_token, "hangover_ms": HANGOVER_MS,
                               "finished_hangover_ms": FINISHED_HANGOVER_MS,
                               "unfinished_hangover_ms": UNFINISHED_HANGOVER_MS, "pause_ms": args.pause_ms, "prepared_in_a_pause": sum(ready_early),
                               "speculation": speculation,
                               "rows": rows, "premature_replies": cutoffs.premature_count,
                               "answered_in_pieces": cutoffs.answered_in_pieces, "questions": len(cutoffs.premature),
                               "premature_per_question": cutoffs.premature, "replies_per_question": cutoffs.replies,
                               "talked_over": cutoffs.talked_over, "call_log": logged, "llm": speed}, indent=2))
    print(f"saved {out}")
    if args.keep:
        print(f"kept {work}: caller.wav, heard.wav, victoria/victoria.log")
    else:
        shutil.rmtree(work, ignore_errors=True)
