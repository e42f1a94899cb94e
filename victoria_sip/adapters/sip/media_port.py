"""The thread boundary between pjmedia and Victoria: one ``AudioMediaPort`` per call.

Both callbacks run on pjmedia's clock thread every 20 ms. They copy a frame in
(to the call's ``SampleRing``) or out (from its ``PlayoutQueue``, or silence)
and return: no model, no database, no lock held for longer than a copy. An
exception must not escape into SWIG (it would print from the clock thread and
pin objects through ``sys.last_traceback``), so each is counted instead.
"""

from __future__ import annotations

import numpy as np
import pjsua2 as pj

from victoria_sip.adapters.sip import byte_vector
from victoria_sip.audio.playout import PlayoutQueue
from victoria_sip.audio.ring_buffer import SampleRing
from victoria_sip.audio.stereo_tap import StereoTap

PTIME_MS = 20


class CallMediaPort(pj.AudioMediaPort):
    def __init__(self, name: str, sample_rate: int, inbound: SampleRing, playout: PlayoutQueue,
                 tap: StereoTap | None = None) -> None:
        super().__init__()
        self.inbound = inbound
        self.playout = playout
        self.tap = tap  # both directions, for a recording
        self.frames_received = 0
        self.frames_sent = 0
        self.callback_errors = 0
        self._silence = np.zeros(sample_rate * PTIME_MS // 1000, np.int16)
        fmt = pj.MediaFormatAudio()
        fmt.type = pj.PJMEDIA_TYPE_AUDIO
        fmt.init(pj.PJMEDIA_FORMAT_PCM, sample_rate, 1, PTIME_MS * 1000, 16)
        self.createPort(name, fmt)

    def onFrameReceived(self, frame: pj.MediaFrame) -> None:
        try:
            if frame.type == pj.PJMEDIA_FRAME_TYPE_AUDIO and frame.size:
                samples = byte_vector.read_int16(frame.buf)
                self.inbound.push(samples)
                self.frames_received += 1
                if self.tap is not None:
                    self.tap.caller.push(samples)
        except Exception:  # noqa: BLE001 — see module docstring
            self.callback_errors += 1

    def onFrameRequested(self, frame: pj.MediaFrame) -> None:
        try:
            samples = self.playout.next_frame()
            if samples is None:
                samples = self._silence
            else:
                self.frames_sent += 1
            byte_vector.write_int16(frame.buf, samples)
            if self.tap is not None:
                self.tap.agent.push(samples)
            frame.size = samples.nbytes
            frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
        except Exception:  # noqa: BLE001 — see module docstring
            self.callback_errors += 1


def destroy_port(port: CallMediaPort) -> None:
    """Destroy the C++ port now, while the Python object is whole.

    Left to the garbage collector, the port's destructor can run while pjmedia
    still calls into a half-torn-down Python object: a random segfault.
    """
    from pjsua2 import _pjsua2

    _pjsua2.delete_AudioMediaPort(port)
