"""Fast copies between pjsua2's ``ByteVector`` (SWIG ``std::vector<unsigned char>``) and numpy.

SWIG reads a ``ByteVector`` element by element: ``bytes(frame.buf)`` costs
~250 µs for one 20 ms frame, which alone would cap a core at a few dozen
calls. libstdc++ lays a vector out as three pointers (begin, end,
end_of_storage), so we copy through ``begin`` with ctypes in ~3 µs. The layout
is an ABI detail, so ``check_fast_path`` compares both paths once at start-up
and ``select_fast_path`` falls back to the slow, always-correct one if they differ.
"""

from __future__ import annotations

import ctypes
import logging

import numpy as np
import pjsua2 as pj

log = logging.getLogger(__name__)

_pointer = ctypes.c_void_p


def _span(vector: pj.ByteVector) -> tuple[int, int]:
    address = int(vector.this)  # the C++ std::vector object
    begin = _pointer.from_address(address).value or 0
    end = _pointer.from_address(address + ctypes.sizeof(_pointer)).value or 0
    return begin, max(end - begin, 0)


def read_int16_fast(vector: pj.ByteVector) -> np.ndarray:
    begin, size = _span(vector)
    if not begin or size < 2:
        return np.zeros(0, np.int16)
    return np.frombuffer(ctypes.string_at(begin, size - size % 2), dtype="<i2")


def write_int16_fast(vector: pj.ByteVector, samples: np.ndarray) -> None:
    samples = np.ascontiguousarray(samples, dtype="<i2")
    vector.resize(samples.nbytes)
    begin, _ = _span(vector)
    ctypes.memmove(begin, samples.ctypes.data, samples.nbytes)


def read_int16_slow(vector: pj.ByteVector) -> np.ndarray:
    data = bytes(vector)
    return np.frombuffer(data[: len(data) - len(data) % 2], dtype="<i2")


def write_int16_slow(vector: pj.ByteVector, samples: np.ndarray) -> None:
    data = np.ascontiguousarray(samples, dtype="<i2").tobytes()
    vector.resize(len(data))
    vector[0 : len(data)] = data


def check_fast_path() -> bool:
    """True when the ctypes copies agree byte for byte with SWIG's own accessors."""
    pattern = np.arange(-320, 320, dtype=np.int16) * 51
    try:
        vector = pj.ByteVector(pattern.tobytes())
        if not np.array_equal(read_int16_fast(vector), read_int16_slow(vector)):
            return False
        target = pj.ByteVector()
        write_int16_fast(target, pattern[::-1])
        if bytes(target) != pattern[::-1].tobytes():
            return False
        return len(read_int16_fast(pj.ByteVector())) == 0
    except (ValueError, OSError, TypeError, AttributeError):
        return False


read_int16 = read_int16_slow
write_int16 = write_int16_slow


def select_fast_path() -> bool:
    """Switch ``read_int16``/``write_int16`` to the ctypes copies if they check out. Call once at start-up."""
    global read_int16, write_int16
    if check_fast_path():
        read_int16, write_int16 = read_int16_fast, write_int16_fast
        return True
    log.warning("pjsua2 ByteVector layout not as expected: using the slow frame copy (~250 µs a frame)")
    return False
