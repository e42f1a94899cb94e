"""A pjsua2 ``MediaFrame`` read and filled in place, without SWIG's accessors.

pjsua2 is wrapped by SWIG with ``-threads``: every accessor (``frame.buf``,
``frame.type = ...``, ``vector.resize``) releases the GIL and takes it back.
On pjmedia's clock thread, each release is a chance for the event loop to take
the GIL, and the clock then waits up to the interpreter's switch interval
(5 ms) to get it back, several times a frame for every call: measured, a busy
event loop held the clock to 20 ticks in 8 s with 200 ports. So the media
callbacks read the C++ struct (``type``, the ``std::vector`` ``buf``,
``size``) through its address and copy with a ``memmove`` that keeps the GIL;
the only SWIG call left is handing over a frame to play (``frame.buf = ...``).

The layout is an ABI detail (libstdc++ on a 64-bit machine), so ``check``
compares it with SWIG's own accessors once at start-up; ``FrameMemory.create``
returns None when it differs and the media port keeps the slow, always-correct
path.
"""

from __future__ import annotations

import ctypes
import functools
import struct

import numpy as np
import pjsua2 as pj

# MediaFrame { pjmedia_frame_type type; ByteVector buf; unsigned size; }: an int, padding, three pointers, an int
_LAYOUT = struct.Struct("<i4xQQQI")
_Bytes = ctypes.c_char * _LAYOUT.size
AUDIO = pj.PJMEDIA_FRAME_TYPE_AUDIO

# ctypes.memmove releases the GIL like any foreign call; this one keeps it (a 640-byte copy needs no release)
memmove = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)(ctypes._memmove_addr)


def received(frame: pj.MediaFrame) -> tuple[int, int]:
    """(address, bytes) of a received frame's audio; (0, 0) for a frame without audio."""
    kind, begin, end, _, _ = _LAYOUT.unpack_from(_Bytes.from_address(int(frame.this)))
    return (begin, end - begin) if kind == AUDIO and begin else (0, 0)


def mark_audio(frame: pj.MediaFrame) -> None:
    """Set ``frame.type`` to audio in place (pjsua2 leaves a requested frame's ``size`` at what pjmedia wants)."""
    ctypes.c_int.from_address(int(frame.this)).value = AUDIO


class OutgoingFrame:
    """A frame's worth of audio in a ``ByteVector`` of our own, filled in place and handed to pjsua2 by one
    SWIG assignment (``frame.buf = vector``, a C++ copy)."""

    def __init__(self, frame_samples: int) -> None:
        self.vector = pj.ByteVector(bytes(frame_samples * 2))  # never resized: its storage stays put
        begin = ctypes.c_void_p.from_address(int(self.vector.this)).value  # std::vector: begin, end, capacity
        self.samples = _view(begin, frame_samples * 2)

    def fill(self, frame: pj.MediaFrame, samples: np.ndarray) -> None:
        self.samples[:] = samples
        frame.buf = self.vector
        mark_audio(frame)


def _view(address: int, size: int) -> np.ndarray:
    """A writable int16 view of C memory (no copy)."""
    return np.frombuffer((ctypes.c_char * size).from_address(address), np.int16)


def samples_at(address: int, size: int) -> np.ndarray:
    """A copy of the int16 samples at ``address`` (``size`` bytes; an odd last byte is left out)."""
    return _view(address, size - size % 2).copy()


@functools.cache
def usable() -> bool:
    """``check``, once per process."""
    return check()


def check() -> bool:
    """True when reading and writing through the addresses agrees with SWIG's accessors."""
    pattern = np.arange(-160, 160, dtype=np.int16) * 97
    try:
        frame = pj.MediaFrame()
        frame.type = AUDIO
        frame.size = 1234
        frame.buf = pj.ByteVector(pattern.tobytes())
        kind, begin, end, _, size = _LAYOUT.unpack_from(_Bytes.from_address(int(frame.this)))
        address, nbytes = received(frame)
        if (kind, size, nbytes) != (AUDIO, 1234, pattern.nbytes):
            return False
        if not np.array_equal(samples_at(address, nbytes), pattern):
            return False
        out, blank = OutgoingFrame(len(pattern)), pj.MediaFrame()
        out.fill(blank, pattern[::-1])
        if blank.type != AUDIO or bytes(blank.buf) != pattern[::-1].tobytes():
            return False
        target = np.zeros_like(pattern)
        memmove(target.ctypes.data, address, nbytes)
        return np.array_equal(target, pattern) and received(pj.MediaFrame()) == (0, 0)
    except (ValueError, OSError, TypeError, AttributeError, struct.error):
        return False
