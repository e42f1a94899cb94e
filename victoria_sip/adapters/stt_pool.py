"""The recogniser pool: worker processes, each holding the model once, decoding every call's utterances.

    pool = RecogniserPool(PocketSphinxSTT, workers=2, name="pocketsphinx")
    pool.load()                              # starts the workers; ModelError if the model cannot load
    stream = pool.open_stream(16000)         # the SpeechToText port: never blocks
    stream.accept(audio)                     # handed over; decoded in the background
    transcript = stream.finish()             # a Future[str]: the utterance's transcript
    pool.measure()                           # RecogniserLoad: how far behind, how busy (admission reads it)

Why processes: PocketSphinx holds the GIL while it decodes (150 ms at a time,
measured), which would stall pjmedia's clock and every call's audio; and even
an engine that releases it (Vosk) competes with the media path for the
interpreter once the cores are full. Here the SIP/media process only appends
frames to a worker's outbox (a list and a lock: the frame path and the event
loop never wait); a sender thread per worker pickles the outbox as one batch
down a pipe, a receiver thread takes the answers back. A batch's answer says
how long the worker was busy with it, and the time from its oldest frame's
hand-over to that answer is the recogniser's queue delay.

Each utterance goes to the worker with the fewest utterances in progress (then
the shortest backlog) when its first frame arrives, so calls spread by load
turn by turn. A worker that dies, or stops answering for ``HUNG_SECONDS`` (it is
killed), is replaced; the utterances it held fail (the call apologises and goes
on), the next ones go to the others or to its replacement.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from typing import Any

from victoria_sip import logs
from victoria_sip.adapters.stt_worker import Key, serve
from victoria_sip.domain.ports import RecogniserLoad, SpeechAudio
from victoria_sip.errors import ModelError

log = logging.getLogger("victoria.stt")

START_TIMEOUT_SECONDS = 60.0  # spawn, import, load the model, decode the probe
HUNG_SECONDS = 10.0  # a batch sent and not answered for this long: the worker is killed and replaced
MONITOR_SECONDS = 0.5
RESTART_BACKOFF_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)
MAX_OUTBOX_ITEMS = 20_000  # ~400 s of audio waiting for a worker that is not there: newer utterances fail instead
WARMUP_CALL_SECONDS = 5.0  # calls seen for less than this in the window: a call's cost is the probe's estimate


def default_workers() -> int:
    return len(os.sched_getaffinity(0))


class RecogniserPool:
    def __init__(self, factory: Callable[[], Any], workers: int, name: str, window_seconds: float = 10.0,
                 on_delay: Callable[[float], None] = lambda seconds: None, probe: SpeechAudio | None = None) -> None:
        if workers < 1:
            raise ValueError("a recogniser pool needs at least one worker")
        self._factory = factory
        self.name = name
        self.window_seconds = window_seconds
        self.probe = probe  # real speech each worker decodes once at start: a call's cost before it is measured
        self.on_delay = on_delay  # each batch's queue delay, for metrics (a receiver thread calls it)
        self._lock = threading.Lock()
        self._slots = [_Slot(self, index) for index in range(workers)]
        self._ids = itertools.count(1)
        self._streams = 0  # open streams: the calls being transcribed
        self._stream_samples: deque[tuple[float, int]] = deque()  # (time, open streams), every MONITOR_SECONDS
        self._started = time.monotonic()
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []

    # --- the SpeechToText port --------------------------------------------

    def load(self) -> None:
        """Start every worker (in parallel); raises ModelError if one cannot load its model."""
        starting = [(slot, slot.spawn()) for slot in self._slots]
        try:
            for slot, (process, connection) in starting:
                slot.attach(*slot.await_ready(process, connection))
        except ModelError:
            self._closing.set()  # the workers already up are stopped, not replaced
            for _, (process, connection) in starting:
                _stop(process, connection)
            raise
        self._started = time.monotonic()
        for slot in self._slots:
            self._thread(slot.send_loop, f"stt-send-{slot.index}")
        self._thread(self._monitor, "stt-monitor")
        log.info("%s: %d recogniser worker(s) ready, %.2f s of decoding per second of speech each (probe)",
                 self.name, len(self._slots), max(slot.rtf for slot in self._slots))

    def open_stream(self, sample_rate: int) -> PooledStream:
        if self._closing.is_set():
            raise ModelError(f"the {self.name} recognisers are shutting down")
        with self._lock:
            self._streams += 1
        return PooledStream(self, next(self._ids), sample_rate)

    def close(self) -> None:
        self._closing.set()
        with self._lock:
            for slot in self._slots:
                slot.wake.notify_all()
        for slot in self._slots:
            slot.stop("the pool is closing")
        for thread in self._threads:
            thread.join(2)

    # --- load, for admission -----------------------------------------------

    def measure(self, now: float | None = None) -> RecogniserLoad:
        now = time.monotonic() if now is None else now
        since = now - self.window_seconds
        elapsed = max(min(self.window_seconds, now - self._started), MONITOR_SECONDS)
        with self._lock:
            alive = [slot for slot in self._slots if slot.alive]
            delays = sorted(d for slot in self._slots for t, d in slot.delays if t >= since)
            busy_seconds = sum(b for slot in self._slots for t, b in slot.busy if t >= since)
            backlog = max((now - oldest for slot in self._slots if (oldest := slot.oldest_unanswered()) is not None),
                          default=0.0)
            call_seconds = MONITOR_SECONDS * sum(n for t, n in self._stream_samples if t >= since)
            probe = max(slot.rtf for slot in self._slots)
        workers = max(len(alive), 1)
        if call_seconds >= WARMUP_CALL_SECONDS:
            per_call = busy_seconds / call_seconds / workers
        else:
            per_call = probe / workers  # nothing measured yet: as if the caller never stopped talking
        return RecogniserLoad(
            workers=len(alive), queue_seconds=_p95(delays), backlog_seconds=backlog,
            busy=busy_seconds / (elapsed * workers), busy_per_call=per_call,
        )

    # --- internals -----------------------------------------------------------

    def _pick(self) -> _Slot:
        """The worker for a new utterance (caller holds the lock): alive, fewest utterances, shortest backlog."""
        candidates = [slot for slot in self._slots if slot.alive] or self._slots
        return min(candidates, key=lambda slot: (len(slot.utterances), len(slot.outbox) + len(slot.in_flight)))

    def _stream_closed(self) -> None:
        with self._lock:
            self._streams -= 1

    def _thread(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _monitor(self) -> None:
        """Every half second: count the calls being transcribed, forget old samples, kill a hung worker."""
        while not self._closing.wait(MONITOR_SECONDS):
            now = time.monotonic()
            hung = []
            with self._lock:
                self._stream_samples.append((now, self._streams))
                for samples in [self._stream_samples] + [s.delays for s in self._slots] + [s.busy for s in self._slots]:
                    while samples and samples[0][0] < now - self.window_seconds:
                        samples.popleft()
                for slot in self._slots:
                    sent = slot.oldest_sent()
                    if slot.alive and sent is not None and now - sent > HUNG_SECONDS:
                        hung.append(slot)
            for slot in hung:
                slot.died(slot.generation, f"gave no answer for {HUNG_SECONDS:.0f} s (hung or stopped): killed")


class PooledStream:
    """One call's recogniser: its utterances, each decoded by whichever worker had room when it began."""

    def __init__(self, pool: RecogniserPool, stream_id: int, sample_rate: int) -> None:
        self.partial = ""  # the words of the utterance in progress so far, as its worker last reported them
        self._pool = pool
        self._id = stream_id
        self.sample_rate = sample_rate
        self._utterance = 0
        self._slot: _Slot | None = None  # the worker of the utterance in progress
        self.lost: str | None = None  # set (by the pool) when that worker died: the rest of the utterance is moot
        self._closed = False

    @property
    def key(self) -> Key:
        return self._id, self._utterance

    def accept(self, audio: SpeechAudio) -> None:
        if audio.sample_rate != self.sample_rate:
            raise ValueError(f"this stream takes {self.sample_rate} Hz audio, got {audio.sample_rate}")
        if self.lost is not None or self._closed:
            return
        pool = self._pool
        with pool._lock:
            if self._slot is None:
                self._slot = pool._pick()
                self._slot.utterances[self.key] = self
            self._slot.post("audio", self.key, (audio.sample_rate, audio.pcm), audio.seconds)

    def finish(self) -> Future[str]:
        """The utterance is over: its transcript (ModelError if its worker died); the next one starts fresh."""
        future: Future[str] = Future()
        with self._pool._lock:
            lost, self.lost = self.lost, None
            slot, self._slot = self._slot, None
            key = self.key
            self._utterance += 1
            self.partial = ""
            if lost is None and slot is not None:
                slot.finals[key] = future
                slot.post("finish", key, None)
                return future
        if lost is not None:
            future.set_exception(ModelError(f"{self._pool.name}: the utterance was lost: {lost}"))
        else:
            future.set_result("")  # no audio was handed over
        return future

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._pool._lock:
            if self._slot is not None:
                self._slot.utterances.pop(self.key, None)
                self._slot.post("drop", self.key, None)
                self._slot = None
        self._pool._stream_closed()


class _Slot:
    """One worker: its process (replaced when it dies), outbox, batches in flight and measurements.
    Fields are guarded by the pool's lock."""

    def __init__(self, pool: RecogniserPool, index: int) -> None:
        self.pool = pool
        self.index = index
        self.wake = threading.Condition(pool._lock)
        self.process: multiprocessing.process.BaseProcess | None = None
        self.connection: Any = None
        self.alive = False
        self.generation = 0
        self.rtf = 0.0
        self.outbox: list[tuple[str, Key, Any]] = []
        self.outbox_since: float | None = None  # when the oldest item waiting to be sent was handed over
        self.in_flight: dict[int, tuple[float, float]] = {}  # batch id -> (oldest hand-over, sent)
        self.utterances: dict[Key, PooledStream] = {}  # begun here and not finished
        self.finals: dict[Key, Future[str]] = {}
        self.delays: deque[tuple[float, float]] = deque()  # (answered at, oldest hand-over -> answer)
        self.busy: deque[tuple[float, float]] = deque()  # (answered at, seconds the worker spent on the batch)
        self.batches = itertools.count(1)

    # --- called with the pool's lock held ---

    def post(self, op: str, key: Key, payload: Any, seconds: float = 0.0) -> None:
        if op == "audio" and len(self.outbox) >= MAX_OUTBOX_ITEMS:
            stream = self.utterances.pop(key, None)
            if stream is not None:
                stream.lost = "the recogniser is too far behind"
            return
        if not self.outbox:
            self.outbox_since = time.monotonic()
        self.outbox.append((op, key, payload))
        self.wake.notify()

    def oldest_unanswered(self) -> float | None:
        times = [oldest for oldest, _ in self.in_flight.values()]
        if self.outbox_since is not None and self.outbox:
            times.append(self.outbox_since)
        return min(times, default=None)

    def oldest_sent(self) -> float | None:
        return min((sent for _, sent in self.in_flight.values()), default=None)

    # --- the worker's process ---

    def spawn(self) -> tuple[multiprocessing.process.BaseProcess, Any]:
        context = multiprocessing.get_context("spawn")  # never fork a process that runs pjsua2's threads
        parent, child = context.Pipe()
        process = context.Process(target=serve, args=(child, self.pool._factory, logs.current(), self.pool.probe), daemon=True,
                                  name=f"victoria-{self.pool.name}-{self.index}")
        process.start()
        child.close()  # ours closed: the worker's death reads as EOF
        return process, parent

    def await_ready(self, process, connection) -> tuple[Any, Any, float]:
        name = f"{self.pool.name} worker {self.index}"
        if not connection.poll(START_TIMEOUT_SECONDS):
            _stop(process, connection)
            raise ModelError(f"the {name} did not start within {START_TIMEOUT_SECONDS:.0f} s")
        try:
            status, detail = connection.recv()
        except (EOFError, OSError):
            process.join(5)
            status, detail = "error", f"exited with code {process.exitcode}"
        if status != "ok":
            _stop(process, connection)
            raise ModelError(f"the {name} could not load its model: {detail}")
        return process, connection, detail

    def attach(self, process, connection, rtf: float) -> None:
        with self.pool._lock:
            self.process, self.connection, self.rtf, self.alive = process, connection, rtf, True
            generation = self.generation
            self.wake.notify()
        self.pool._thread(lambda: self.receive_loop(connection, generation), f"stt-receive-{self.index}")
        log.info("%s worker %d started (pid %d)", self.pool.name, self.index, process.pid)

    def send_loop(self) -> None:
        closing = self.pool._closing
        while True:
            with self.pool._lock:
                while not closing.is_set() and not (self.alive and self.outbox):
                    self.wake.wait(1.0)
                if closing.is_set():
                    return
                items, oldest = self.outbox, self.outbox_since
                self.outbox, self.outbox_since = [], None
                batch = next(self.batches)
                self.in_flight[batch] = (oldest, time.monotonic())
                connection, generation = self.connection, self.generation
            try:
                connection.send((batch, items))  # blocks only this thread when the worker is slow
            except (OSError, ValueError, TypeError) as exc:  # TypeError: the connection was closed mid-send
                self.died(generation, f"could not be written to ({exc})")

    def receive_loop(self, connection, generation: int) -> None:
        while True:
            try:
                batch, busy, _audio_seconds, events = connection.recv()
            except (EOFError, OSError, ValueError):
                self.died(generation, "exited")
                return
            now = time.monotonic()
            answered = []
            with self.pool._lock:
                if self.generation != generation:
                    return
                oldest, _ = self.in_flight.pop(batch, (now, now))
                self.delays.append((now, now - oldest))
                self.busy.append((now, busy))
                for kind, key, text in events:
                    if kind == "partial":
                        stream = self.utterances.get(key)
                        if stream is not None and stream.key == key:
                            stream.partial = text
                        continue
                    self.utterances.pop(key, None)
                    future = self.finals.pop(key, None)
                    if future is not None:
                        answered.append((future, kind, text))
            self.pool.on_delay(now - oldest)
            for future, kind, text in answered:
                _settle(future, text if kind == "final" else ModelError(f"{self.pool.name}: {text}"))

    def died(self, generation: int, why: str) -> None:
        """The worker is gone (or hung: it is killed): fail what it held, start its replacement."""
        with self.pool._lock:
            if self.generation != generation or not self.alive:
                return
            self.generation += 1
            self.alive = False
            process, connection = self.process, self.connection
            finals, self.finals = self.finals, {}
            lost, self.utterances = self.utterances, {}
            for stream in lost.values():
                stream.lost = f"{self.pool.name} worker {self.index} {why}"
            self.outbox, self.outbox_since = [op for op in self.outbox if op[1] not in lost and op[1] not in finals], None
            if self.outbox:
                self.outbox_since = time.monotonic()
            self.in_flight.clear()
        _stop(process, connection)
        closing = self.pool._closing.is_set()
        for future in finals.values():
            _settle(future, ModelError(f"{self.pool.name} worker {self.index} {why}"))
        if closing:
            return
        log.error("%s worker %d (pid %s) %s: %d utterance(s) lost; starting a new one", self.pool.name, self.index,
                  process.pid if process else "?", why, len(lost) + len(finals))
        self.pool._thread(self.restart, f"stt-restart-{self.index}")

    def restart(self) -> None:
        for attempt, delay in enumerate(itertools.chain(RESTART_BACKOFF_SECONDS, itertools.repeat(30.0))):
            if self.pool._closing.is_set():
                return
            try:
                self.attach(*self.await_ready(*self.spawn()))
                return
            except ModelError as exc:
                log.error("%s worker %d could not be restarted (attempt %d): %s; next try in %.0f s",
                          self.pool.name, self.index, attempt + 1, exc, delay)
            if self.pool._closing.wait(delay):
                return

    def stop(self, why: str) -> None:
        with self.pool._lock:
            process, connection = self.process, self.connection
            self.alive = False
            self.generation += 1
            finals, self.finals = self.finals, {}
        _stop(process, connection)
        for future in finals.values():
            _settle(future, ModelError(f"{self.pool.name}: {why}"))


def _settle(future: Future[str], outcome: str | ModelError) -> None:
    """Give a transcript its outcome, unless the call stopped waiting (a call that ended cancels its future)."""
    if future.done():
        return
    try:
        if isinstance(outcome, ModelError):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
    except InvalidStateError:  # cancelled between the check and now, from the event loop's thread
        pass


def _stop(process, connection) -> None:
    if connection is not None:
        connection.close()
    if process is not None:
        process.join(1)
        if process.is_alive():
            process.kill()
            process.join(2)


def _p95(values: list[float]) -> float:
    if not values:
        return 0.0
    return values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))]
