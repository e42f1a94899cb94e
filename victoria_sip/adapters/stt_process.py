"""Runs a speech recogniser in a worker process, for engines that hold the GIL.

pjmedia's clock thread needs the GIL every 20 ms. Measured here: PocketSphinx
holds it for up to 150 ms inside ``process_raw`` and 420 ms while a ``Decoder``
loads, which would stall every call's audio; Vosk and Piper release it. So a
GIL-holding engine lives in its own process and the call's STT worker thread
talks to it over a pipe (one request, one answer; the thread waits with the GIL
released). One process serves every call, one request at a time.

    stt = ProcessSTT(PocketSphinxSTT)      # the factory is called in the child
    stt.load()                             # starts the child; raises ModelError if it cannot load
    stream = stt.open_stream(16000)        # same RecognitionStream port as in-process
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import threading
from collections.abc import Callable
from typing import Any

from victoria_sip.domain.ports import SpeechAudio, SpeechToText
from victoria_sip.errors import ModelError

log = logging.getLogger("victoria.stt")

START_TIMEOUT_SECONDS = 60.0
REQUEST_TIMEOUT_SECONDS = 30.0


def _serve(connection, factory: Callable[[], SpeechToText]) -> None:
    """The child process: load the engine, then answer requests until the pipe closes."""
    try:
        engine = factory()
        load = getattr(engine, "load", None)
        if load:
            load()
    except Exception as exc:  # report anything: the parent turns it into ModelError
        connection.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    connection.send(("ok", None))
    streams: dict[int, Any] = {}
    while True:
        try:
            op, stream_id, argument = connection.recv()
        except (EOFError, OSError):
            return
        try:
            if op == "open":
                streams[stream_id] = engine.open_stream(argument)
                result = None
            elif op == "accept":
                result = streams[stream_id].accept(argument)
            elif op == "finish":
                result = streams[stream_id].finish()
            else:  # "close": the call is over
                stream = streams.pop(stream_id, None)
                if stream is not None:
                    stream.close()
                result = None
            connection.send(("ok", result))
        except Exception as exc:
            connection.send(("error", f"{type(exc).__name__}: {exc}"))


class ProcessSTT:
    """The ``SpeechToText`` port, delegating to ``factory()`` in a child process."""

    def __init__(self, factory: Callable[[], SpeechToText], name: str = "stt") -> None:
        self._factory = factory
        self._name = name
        self._lock = threading.Lock()
        self._connection = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self._ids = itertools.count(1)

    def load(self) -> None:
        with self._lock:
            self._ensure_started()

    def open_stream(self, sample_rate: int) -> RemoteStream:
        stream_id = next(self._ids)
        self.request("open", stream_id, sample_rate)
        return RemoteStream(self, stream_id, sample_rate)

    def request(self, op: str, stream_id: int, argument: Any = None) -> Any:
        with self._lock:
            self._ensure_started()
            try:
                self._connection.send((op, stream_id, argument))
                if not self._connection.poll(REQUEST_TIMEOUT_SECONDS):
                    self._stop_locked()
                    raise ModelError(f"the {self._name} worker did not answer within {REQUEST_TIMEOUT_SECONDS:.0f} s")
                status, result = self._connection.recv()
            except (EOFError, OSError, BrokenPipeError) as exc:
                self._stop_locked()  # the next request starts a fresh worker
                raise ModelError(f"the {self._name} worker process died: {exc}") from exc
        if status == "error":
            raise ModelError(f"{self._name} worker: {result}")
        return result

    def close(self) -> None:
        with self._lock:
            self._stop_locked()

    def _ensure_started(self) -> None:
        if self._process is not None and self._process.is_alive():
            return
        context = multiprocessing.get_context("spawn")  # never fork a process that runs pjsua2's threads
        parent, child = context.Pipe()
        process = context.Process(target=_serve, args=(child, self._factory), name=f"victoria-{self._name}", daemon=True)
        process.start()
        child.close()
        if not parent.poll(START_TIMEOUT_SECONDS):
            process.kill()
            raise ModelError(f"the {self._name} worker did not start within {START_TIMEOUT_SECONDS:.0f} s")
        try:
            status, message = parent.recv()
        except EOFError:
            status, message = "error", f"exited with code {process.join(5) or process.exitcode}"
        if status != "ok":
            process.kill()
            raise ModelError(f"the {self._name} worker could not load its model: {message}")
        self._connection, self._process = parent, process
        log.info("%s worker process started (pid %d)", self._name, process.pid)

    def _stop_locked(self) -> None:
        if self._connection is not None:
            self._connection.close()
        if self._process is not None:
            self._process.join(2)
            if self._process.is_alive():
                self._process.kill()
        self._connection = self._process = None


class RemoteStream:
    def __init__(self, owner: ProcessSTT, stream_id: int, sample_rate: int) -> None:
        self._owner = owner
        self._id = stream_id
        self.sample_rate = sample_rate

    def accept(self, audio: SpeechAudio) -> str:
        return self._owner.request("accept", self._id, audio)

    def finish(self) -> str:
        return self._owner.request("finish", self._id)

    def close(self) -> None:
        self._owner.request("close", self._id)
