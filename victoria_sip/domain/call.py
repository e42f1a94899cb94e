"""A phone call and the rules of its life: ringing → active → ended."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from urllib.parse import quote, unquote

from victoria_sip.domain.conversation import Conversation


class IllegalTransition(Exception):
    """A call was asked to move to a state its current state does not allow."""


class CallStatus(str, Enum):
    RINGING = "ringing"
    ACTIVE = "active"
    ENDED = "ended"
    REJECTED = "rejected"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self in (CallStatus.ENDED, CallStatus.REJECTED, CallStatus.FAILED)


class EndReason(str, Enum):
    CALLER_HANGUP = "caller-hangup"
    CALLER_CANCELLED = "caller-cancelled"
    AGENT_HANGUP = "agent-hangup"
    TRANSFERRED = "transferred"
    BUSY = "rejected-busy"
    NO_ROUTE = "no-route"
    UNENCRYPTED = "rejected-unencrypted"  # plain RTP offered where SRTP is mandatory
    SHUTDOWN = "shutdown"
    MEDIA_FAILURE = "media-failure"
    ABNORMAL = "ended-abnormally"


_ALLOWED: dict[CallStatus, frozenset[CallStatus]] = {
    CallStatus.RINGING: frozenset({CallStatus.ACTIVE, CallStatus.ENDED, CallStatus.REJECTED, CallStatus.FAILED}),
    CallStatus.ACTIVE: frozenset({CallStatus.ENDED, CallStatus.FAILED}),
    CallStatus.ENDED: frozenset(),
    CallStatus.REJECTED: frozenset(),
    CallStatus.FAILED: frozenset(),
}


@dataclass(frozen=True, slots=True)
class CallId:
    value: str

    @classmethod
    def new(cls) -> CallId:
        return cls(uuid.uuid4().hex)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[0-9A-Za-z_.-]{1,64}", self.value):
            raise ValueError(f"not a call id: {self.value!r}")

    def __str__(self) -> str:
        return self.value


_URI_USER = re.compile(r"sips?:([^@;>?\s:]+)@|tel:([^;>?\s]+)", re.IGNORECASE)
_NUMBER = re.compile(r"[0-9A-Za-z+*#._~%-]{1,64}")  # "%": a user part kept percent-escaped, as it came
_NUMBER_CHARS = "+*#._~-"


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    """The user part of a SIP address: an extension ("7000"), an E.164 number or a SIP user name.

    >>> PhoneNumber.from_sip_uri('"Front desk" <sip:+4930123456@pbx.local;user=phone>')
    PhoneNumber(value='+4930123456')
    """

    value: str

    def __post_init__(self) -> None:
        if not _NUMBER.fullmatch(self.value):
            raise ValueError(f"not a phone number or SIP user: {self.value!r}")

    @classmethod
    def from_sip_uri(cls, uri: str) -> PhoneNumber:
        """Never raises: a caller id is data to keep, not a reason to fail a call. Percent-escapes are
        decoded when that gives a number ("%2B49..." -> "+49..."); any other user part is kept escaped
        ("sip:I%20have%20spaces@..." -> "I%20have%20spaces", RFC 4475 esc01), cut to 64 characters."""
        match = _URI_USER.search(uri)
        if not match:
            return cls("anonymous")
        user = next(g for g in match.groups() if g)
        decoded = unquote(user)
        if _NUMBER.fullmatch(decoded) and "%" not in decoded:
            return cls(decoded)
        kept = re.sub(r"%[0-9A-F]?$", "", quote(decoded, safe=_NUMBER_CHARS)[:64])  # no escape cut in half
        return cls(kept or "anonymous")

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class MediaStats:
    """What crossed the call's media bridge, counted at our end."""

    frames_received: int = 0
    frames_sent: int = 0
    caller_peak_dbfs: float | None = None


@dataclass(frozen=True, slots=True)
class Encryption:
    """How a call crossed the network, so an admin can prove it was private: its signalling's last hop ("tls",
    "tcp", "udp") and its media ("srtp", "rtp"); empty where not known (a call that never had media)."""

    signalling: str = ""
    media: str = ""

    @property
    def encrypted(self) -> bool:
        return self.signalling == "tls" and self.media == "srtp"


@dataclass(slots=True)
class Call:
    """One inbound call to an agent. Illegal moves raise ``IllegalTransition``."""

    id: CallId
    agent: str
    caller: PhoneNumber
    callee: str = ""
    status: CallStatus = CallStatus.RINGING
    conversation: Conversation = field(default_factory=Conversation)
    created_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    started_at: datetime | None = None
    ended_at: datetime | None = None
    end_reason: EndReason | None = None
    media: MediaStats = field(default_factory=MediaStats)
    recording: str | None = None  # where the call's audio was recorded, if it was
    encryption: Encryption = Encryption()
    channel: str = "sip"  # "web": a test call from the console's browser page

    def start(self, at: datetime | None = None) -> None:
        self._move(CallStatus.ACTIVE)
        self.started_at = at or datetime.now(timezone.utc)

    def end(self, reason: EndReason, at: datetime | None = None) -> None:
        self._move(CallStatus.ENDED)
        self._finish(reason, at)

    def reject(self, reason: EndReason, at: datetime | None = None) -> None:
        self._move(CallStatus.REJECTED)
        self._finish(reason, at)

    def fail(self, reason: EndReason, at: datetime | None = None) -> None:
        self._move(CallStatus.FAILED)
        self._finish(reason, at)

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()

    def _move(self, target: CallStatus) -> None:
        if target not in _ALLOWED[self.status]:
            raise IllegalTransition(f"call {self.id}: cannot go from {self.status.value} to {target.value}")
        self.status = target

    def _finish(self, reason: EndReason, at: datetime | None) -> None:
        self.end_reason = reason
        self.ended_at = at or datetime.now(timezone.utc)
