"""Which calls someone is looking for: the History page, ``calls list`` and ``calls export`` share it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class CallFilter:
    agent: str | None = None
    status: str | None = None
    since: datetime | None = None  # created at or after
    until: datetime | None = None  # created before
    text: str | None = None  # in the caller, the number dialled, or anything said (case-insensitive)
