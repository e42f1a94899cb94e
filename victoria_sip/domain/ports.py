"""The ports: what the application needs from the outside world, as ``typing.Protocol``s.

Adapters implement them; ``bootstrap.py`` wires concrete ones in. Audio crosses
these ports as 16-bit little-endian mono PCM ``bytes`` with an explicit sample
rate, so the domain stays free of numpy.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol

from victoria_sip.domain.agent import Agent, VoiceConfig
from victoria_sip.domain.site_tool import SiteTool
from victoria_sip.domain.call import Call, CallId, Encryption, EndReason
from victoria_sip.domain.conversation import ConversationTurn, TurnLatency


@dataclass(frozen=True, slots=True)
class SpeechAudio:
    """Synthesised or received speech: s16le mono PCM at ``sample_rate``."""

    pcm: bytes
    sample_rate: int

    @property
    def seconds(self) -> float:
        return len(self.pcm) / 2 / self.sample_rate


class CallRepository(Protocol):
    """Stores calls and their turns. Every method commits before it returns."""

    def save_call(self, call: Call) -> None: ...

    def add_turn(self, call_id: CallId, turn: ConversationTurn) -> None: ...

    def get_call(self, call_id: CallId) -> Call | None: ...

    def list_calls(self, limit: int = 50) -> list[Call]: ...


class TextToSpeech(Protocol):
    def synthesize(self, text: str, voice: VoiceConfig) -> SpeechAudio: ...


class RecognitionStream(Protocol):
    """One call's recogniser. ``accept`` never blocks: the audio is handed over and decoded in the background
    (the frame path calls it 50 times a second); ``partial`` is the utterance's words so far, as decoded by
    now; ``finish`` ends the utterance and promises its transcript."""

    partial: str

    def accept(self, audio: SpeechAudio) -> None: ...

    def finish(self) -> Future[str]: ...  # ModelError if the recogniser failed on this utterance

    def close(self) -> None: ...  # the call is over: give back what the stream holds


class SpeechToText(Protocol):
    def open_stream(self, sample_rate: int) -> RecognitionStream: ...  # quick: no model is loaded here

    def measure(self) -> RecogniserLoad: ...


@dataclass(frozen=True, slots=True)
class RecogniserLoad:
    """How the recognisers keep up, over the last few seconds (what admission decides by)."""

    workers: int  # alive now
    queue_seconds: float  # p95 of audio handed over -> decoded
    backlog_seconds: float  # the oldest audio handed over and not decoded yet, now (a stalled worker shows here)
    busy: float  # fraction of the workers' time spent decoding
    busy_per_call: float  # what one more call being transcribed adds to ``busy``


class CpuLoad(Protocol):
    def busy(self) -> float: ...  # fraction of every core busy over the last few seconds, all processes


@dataclass(frozen=True, slots=True)
class Overload:
    """Why a new call is not taken into a conversation now: the measure that refused it."""

    reason: str  # "stt_queue", "stt_busy", "tts_queue", "cpu"
    detail: str  # for the log: the measured value and its limit
    hand_off: bool = False  # the agent has a fallback destination: answer, say so, put the caller through


@dataclass(frozen=True, slots=True)
class ToolRequest:
    """The model asks for an action instead of (or after) saying something."""

    name: str
    arguments: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class ToolAnswer:
    """What a site's service answered a tool call: its body as text, and how long it took."""

    text: str
    seconds: float


class ToolFailed(Exception):
    """A tool call that got no usable answer. ``kind``: timeout, refused, http-4xx, http-5xx, too-large,
    not-utf8, error (for the metrics); the message, for the model and the log."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


class ToolCaller(Protocol):
    async def call(self, tool: SiteTool, arguments: Mapping[str, object]) -> ToolAnswer: ...


class LanguageModel(Protocol):
    # text deltas of the reply, and any tool the model asks for; ``tools``: JSON-schema function specs
    def stream_reply(self, agent: Agent, history: Sequence[ConversationTurn],
                     tools: Sequence[Mapping[str, object]] = ()) -> AsyncIterator[str | ToolRequest]: ...


class ConsultationLeg(Protocol):
    """A call Victoria placed to an attended transfer's target, to announce the caller before connecting them."""

    def play(self, audio: SpeechAudio) -> None: ...

    def playout_pending(self) -> bool: ...

    def send_digits(self, digits: str) -> None: ...  # DTMF out (RFC 4733, else SIP INFO): an IVR's menu keys

    def hangup(self) -> None: ...


class CallLeg(Protocol):
    """The media side of an answered call, as the SIP adapter hands it to the application.

    ``read_audio`` and ``play`` never block: the SIP adapter's media clock thread
    fills and drains the buffers behind them.
    """

    call_id: CallId
    caller: str
    callee: str
    account: str | None
    sample_rate: int
    encryption: Encryption  # known once media is up, before the application hears of the call
    channel: str  # "sip"; "web": the console's browser test call

    def read_audio(self) -> bytes: ...  # everything received since the last read

    def play(self, audio: SpeechAudio, mark: int | None = None) -> None: ...

    def playout_started(self, mark: int) -> float | None: ...  # monotonic time its first frame went out

    def stop_playout(self) -> None: ...  # also ends the utterance under way (see ``speaking``)

    # True while an utterance is being spoken chunk by chunk, False once all of it is queued: running out
    # of audio in between is a gap in the voice (a playout underflow, counted by the adapter)
    def speaking(self, under_way: bool) -> None: ...

    def playout_pending(self) -> bool: ...

    def media_stats(self) -> tuple[int, int]: ...  # (frames received, frames sent)

    def recording_path(self) -> str | None: ...  # the call's stereo WAV, when calls are recorded

    def transfer(self, target: str) -> None: ...  # blind transfer (REFER); outcome: CallHandler.transfer_finished

    # attended transfer: call the target (outcome: CallHandler.consultation_answered), then REFER the caller to
    # that call with Replaces (outcome: CallHandler.transfer_finished)
    def consult(self, target: str) -> ConsultationLeg: ...

    def transfer_to_consultation(self, consultation: ConsultationLeg) -> None: ...

    def hangup(self) -> None: ...


class CallHandler(Protocol):
    """What the SIP adapter calls into.

    ``route`` runs on the SIP thread and must be quick and pure (it decides 404 or answer);
    the ``async`` methods run on the application's event loop, never on a pjsua2 thread.
    """

    def route(self, callee: str, account: str | None) -> str | None: ...  # agent name, or None: no route

    # SIP thread, quick: None to answer; over the limit, why (the caller is refused busy, or handed off)
    def admit(self, agent: str) -> Overload | None: ...

    # ``overload``: admitted only to be told all assistants are busy and put through to the fallback destination
    async def call_answered(self, leg: CallLeg, agent: str, overload: Overload | None = None) -> None: ...

    async def call_ended(self, call_id: CallId, reason: EndReason) -> None: ...

    async def call_rejected(self, call_id: CallId, caller: str, callee: str, reason: EndReason) -> None: ...

    async def keypad_pressed(self, call_id: CallId, key: str) -> None: ...  # one DTMF digit, 0-9 * # A-D

    async def transfer_finished(self, call_id: CallId, status_code: int, reason: str) -> None: ...  # final NOTIFY

    # the call placed by CallLeg.consult: 200 once its media is up, else the final failure (486, 404, 408 ...)
    async def consultation_answered(self, call_id: CallId, status_code: int, reason: str) -> None: ...


class Telemetry(Protocol):
    """What happened, for ops' metrics. Called from any thread; must be quick and never raise.

    Labels stay few and bounded: agent and account names come from the configuration,
    outcomes are ``EndReason`` values, stages are "stt", "llm" and "tts". Never a call id.
    """

    def call_answered(self, agent: str) -> None: ...

    def call_ended(self, agent: str, outcome: EndReason) -> None: ...  # an answered call

    def call_rejected(self, agent: str, outcome: EndReason) -> None: ...  # busy, no route, shutting down

    def reply_timed(self, agent: str, latency: TurnLatency) -> None: ...

    def speech_synthesised(self, audio_seconds: float, compute_seconds: float) -> None: ...

    def barge_in(self, agent: str) -> None: ...

    # a reply prepared in a pause: "hit" (played the moment the turn ended), "miss" (the caller went on or said
    # something else: discarded unheard)
    def speculation(self, agent: str, outcome: str) -> None: ...

    def model_error(self, stage: str) -> None: ...

    def turn_persisted(self) -> None: ...

    # each REGISTER's outcome; status_code 0: no REGISTER, the registrar stopped answering OPTIONS
    def registration_result(self, account: str, registered: bool, status_code: int) -> None: ...

    def rtp_received(self, packets: int, lost: int, discarded: int, jitter_seconds: float | None) -> None: ...

    def invite_refused(self, reason: str) -> None: ...  # "source": not in the allow-list

    def playout_underflow(self) -> None: ...  # a frame of an utterance was due and not ready (pjmedia's clock thread)

    def admission_refused(self, reason: str) -> None: ...  # a call refused (or handed off) for want of headroom

    def stt_queue_delay(self, seconds: float) -> None: ...  # audio handed to a recogniser -> decoded

    def call_encryption(self, signalling: str, media: str) -> None: ...  # an answered call's: "tls"/"udp", "srtp"/"rtp"

    # a site tool the model called: outcome "ok", "invalid" (arguments refused by its schema) or a ToolFailed kind
    def tool_called(self, agent: str, tool: str, outcome: str, seconds: float | None) -> None: ...
