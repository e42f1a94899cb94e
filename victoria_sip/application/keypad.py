"""Keypad input (DTMF) as the conversation sees it: digits collected into one caller turn, or an escape key.

Pure and clock-free: the call feeds each digit with the time it arrived and
asks, every frame, whether the inter-digit timeout has ended the entry. An
escape key pressed when no entry is in progress acts at once; pressed in the
middle of a number it is just a digit. The terminator ends the entry at once.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KeypadEntry:
    digits: str  # what the caller typed, without the terminator; "" if only the terminator


@dataclass(frozen=True)
class EscapeKey:
    key: str
    action: str


class DigitCollector:
    def __init__(self, inter_digit_seconds: float, terminator: str, escape_keys: dict[str, str]) -> None:
        self._timeout = inter_digit_seconds
        self._terminator = terminator
        self._escape_keys = escape_keys
        self._digits = ""
        self._last_at: float | None = None

    @property
    def collecting(self) -> bool:
        return bool(self._digits)

    def press(self, key: str, at: float) -> KeypadEntry | EscapeKey | None:
        if not self._digits and key in self._escape_keys:
            return EscapeKey(key, self._escape_keys[key])
        if key == self._terminator:
            return self._take()
        self._digits += key
        self._last_at = at
        return None

    def tick(self, now: float) -> KeypadEntry | None:
        """The entry, once the caller has stopped typing for the inter-digit timeout."""
        if self._digits and self._last_at is not None and now - self._last_at >= self._timeout:
            return self._take()
        return None

    def _take(self) -> KeypadEntry:
        entry, self._digits, self._last_at = KeypadEntry(self._digits), "", None
        return entry
