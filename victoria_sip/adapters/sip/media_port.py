"""The thread boundary between pjmedia and Victoria: one ``AudioMediaPort`` per call.

Both callbacks run on pjmedia's clock thread every 20 ms, for every call. They
copy a frame in (to the call's ``FrameRing``) or out (from its
``PlayoutQueue``; nothing to say leaves the frame empty, which the bridge sends
as silence) and return: no model, no database, no lock. With a hundred calls
that is ten thousand Python callbacks a second on one thread, so each is kept
short and, above all, keeps the GIL: they touch the frame through its memory
(``frame_memory``) instead of SWIG accessors that release the GIL, since
taking it back behind a busy event loop costs up to the switch interval each
time. Where the layout check fails, the old SWIG path is used.

pjsua2 calls the callbacks through ``PyGILState_Ensure``, which on a thread
Python did not start builds a new thread state (and maps a fresh frame stack)
for every call and tears it down after. The first callback on the clock thread
therefore keeps one for good (``_keep_thread_state``).

An exception must not escape into SWIG (it would print from the clock thread and
pin objects through ``sys.last_traceback``), so each is counted instead.
"""

from __future__ import annotations

import ctypes
import threading

import numpy as np
import pjsua2 as pj

from victoria_sip.adapters.sip import byte_vector, frame_memory
from victoria_sip.audio.frame_ring import FrameRing
from victoria_sip.audio.playout import PlayoutQueue
from victoria_sip.audio.stereo_tap import StereoTap

PTIME_MS = 20
_threads = threading.local()  # per thread: has it kept its thread state? (a fact about C threads, not app state)


class CallMediaPort(pj.AudioMediaPort):
    def __init__(self, name: str, sample_rate: int, inbound: FrameRing, playout: PlayoutQueue,
                 tap: StereoTap | None = None) -> None:
        super().__init__()
        self.inbound = inbound
        self.playout = playout
        self.tap = tap  # both directions, for a recording
        self.frames_received = 0
        self.frames_sent = 0
        self.callback_errors = 0
        frame_samples = sample_rate * PTIME_MS // 1000
        self._silence = np.zeros(frame_samples, np.int16)
        self._fast = frame_memory.usable()
        self._outgoing = frame_memory.OutgoingFrame(frame_samples) if self._fast else None
        self._frame_bytes = frame_samples * 2
        fmt = pj.MediaFormatAudio()
        fmt.type = pj.PJMEDIA_TYPE_AUDIO
        fmt.init(pj.PJMEDIA_FORMAT_PCM, sample_rate, 1, PTIME_MS * 1000, 16)
        self.createPort(name, fmt)

    def onFrameReceived(self, frame: pj.MediaFrame) -> None:
        try:
            if not getattr(_threads, "kept", False):
                _keep_thread_state()
            if self._fast:
                address, size = frame_memory.received(frame)
                if not size:
                    return
                if size >= self._frame_bytes:
                    frame_memory.memmove(self.inbound.claim(), address, self._frame_bytes)
                    self.inbound.commit()
                else:  # never seen from the bridge; kept correct anyway
                    self.inbound.write(frame_memory.samples_at(address, size))
                if self.tap is not None:
                    self.tap.caller.push(frame_memory.samples_at(address, size))
            elif frame.type == pj.PJMEDIA_FRAME_TYPE_AUDIO and frame.size:
                samples = byte_vector.read_int16(frame.buf)
                self.inbound.write(samples)
                if self.tap is not None:
                    self.tap.caller.push(samples)
            else:
                return
            self.frames_received += 1
        except Exception:  # noqa: BLE001 — see module docstring
            self.callback_errors += 1

    def onFrameRequested(self, frame: pj.MediaFrame) -> None:
        try:
            if not getattr(_threads, "kept", False):
                _keep_thread_state()
            samples = self.playout.next_frame()
            if self.tap is not None:
                self.tap.agent.push(self._silence if samples is None else samples)
            if samples is None:
                if not self._fast:  # the old path always sent a frame of silence; pjmedia treats both alike
                    self._send_slow(frame, self._silence)
                return
            self.frames_sent += 1
            if self._fast:
                self._outgoing.fill(frame, samples)
            else:
                self._send_slow(frame, samples)
        except Exception:  # noqa: BLE001 — see module docstring
            self.callback_errors += 1

    @staticmethod
    def _send_slow(frame: pj.MediaFrame, samples: np.ndarray) -> None:
        byte_vector.write_int16(frame.buf, samples)
        frame.size = samples.nbytes
        frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO


def _keep_thread_state() -> None:
    """Take one more ``PyGILState_Ensure`` on this thread and never release it, so that the thread state
    pjsua2's callbacks run in outlives each callback: no thread state built, no frame stack mapped and
    unmapped, 100 times a second per call. pjmedia's clock thread keeps it until it ends, in libDestroy; on a
    thread Python started (tests calling a port directly) the extra count is harmless, its state is Python's."""
    ctypes.pythonapi.PyGILState_Ensure()
    _threads.kept = True


def destroy_port(port: CallMediaPort) -> None:
    """Destroy the C++ port now, while the Python object is whole.

    Left to the garbage collector, the port's destructor can run while pjmedia
    still calls into a half-torn-down Python object: a random segfault.
    """
    from pjsua2 import _pjsua2

    _pjsua2.delete_AudioMediaPort(port)
