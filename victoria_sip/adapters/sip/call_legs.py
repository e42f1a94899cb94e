"""The application's handles on SIP calls: an answered call's media (``CallLeg``) and the call Victoria
places to an attended transfer's target (``ConsultationLeg``). Any thread may use them: audio goes
through numpy buffers that pjmedia's clock thread fills and drains, and everything that needs pjsua2
is ``submit``ted to the SIP thread; the methods marked "SIP thread only" are the agent's."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from victoria_sip.adapters.recordings import Recording
from victoria_sip.adapters.sip.media_port import CallMediaPort, destroy_port
from victoria_sip.adapters.sip.shims import PjCall
from victoria_sip.audio.frame_ring import FrameRing
from victoria_sip.audio.leg_audio import LegAudio
from victoria_sip.audio.playout import PlayoutQueue
from victoria_sip.audio.resample import resample
from victoria_sip.domain import CallId, Encryption
from victoria_sip.domain.ports import Overload, SpeechAudio

if TYPE_CHECKING:
    from victoria_sip.adapters.sip.user_agent import SipUserAgent

RING_SECONDS = 10


class SipCallLeg(LegAudio):
    """One answered call's media, as the application sees it (the ``CallLeg`` port; its audio methods are
    ``LegAudio``'s)."""

    channel = "sip"

    def __init__(self, agent: SipUserAgent, pj_call: PjCall, caller: str, callee: str, account: str | None,
                 agent_name: str, overload: Overload | None = None) -> None:
        self.call_id = CallId.new()
        self.agent_name = agent_name  # routed once, when the INVITE came in
        self.overload = overload  # admitted only to be put through to the fallback destination
        self.caller = caller
        self.callee = callee
        self.account = account
        self.sample_rate = agent.sample_rate
        self.codec = ""
        self.signalling = ""  # the INVITE's last hop: "tls", "tcp", "udp"
        self.media = ""  # "srtp" or "rtp", once media is up
        self.inbound = FrameRing(self.sample_rate // 50, RING_SECONDS * 50)
        # a gap in her voice mid-utterance is counted where pjmedia asks for the frame (the clock thread)
        self.playout = PlayoutQueue(self.sample_rate // 50, agent._telemetry.playout_underflow)
        self.port: CallMediaPort | None = None
        self.confirmed = False
        self.answered = False
        self.media_index: int | None = None
        self.transferred = False  # the caller was put through (final NOTIFY 2xx)
        self.recording: Recording | None = None
        self.rtp_counted = (0, 0, 0)  # inbound packets, lost, discarded: already reported to telemetry
        self.hangup_requested = False
        self._final_stats = (0, 0)
        self._agent = agent
        self._pj_call: PjCall | None = pj_call

    @property
    def encryption(self) -> Encryption:
        return Encryption(self.signalling, self.media)

    def media_stats(self) -> tuple[int, int]:
        port = self.port
        return (port.frames_received, port.frames_sent) if port else self._final_stats

    def transfer(self, target: str) -> None:
        self._agent.submit(lambda: self._agent.transfer(self, target))

    def consult(self, target: str) -> SipConsultation:
        consultation = SipConsultation(self._agent, self, target)
        self._agent.submit(lambda: self._agent.place_consultation(consultation))
        return consultation

    def transfer_to_consultation(self, consultation: SipConsultation) -> None:
        self._agent.submit(lambda: self._agent.transfer_replacing(self, consultation))

    def recording_path(self) -> str | None:
        return str(self.recording.path) if self.recording else None

    def hangup(self) -> None:
        self._agent.submit(lambda: self._agent.hangup(self))

    # SIP thread only
    def pj_call(self) -> PjCall | None:
        return self._pj_call

    def release(self) -> None:
        if self.port is not None:
            self._final_stats = self.media_stats()
            port, self.port = self.port, None
            destroy_port(port)
        self._pj_call = None


class SipConsultation:
    """The call Victoria places to an attended transfer's target (the ``ConsultationLeg`` port): she speaks
    into it and presses keys; what the target says is not listened to."""

    def __init__(self, agent: SipUserAgent, leg: SipCallLeg, target: str) -> None:
        self.leg = leg  # the caller's call it is made for
        self.target = target
        self.playout = PlayoutQueue(agent.sample_rate // 50)
        self.inbound = FrameRing(agent.sample_rate // 50, 50)  # filled by the media port, never read: oldest dropped
        self.port: CallMediaPort | None = None
        self.confirmed = False
        self.reported = False  # consultation_answered has been posted
        self._agent = agent
        self._pj_call: PjCall | None = None

    def play(self, audio: SpeechAudio) -> None:
        samples = np.frombuffer(audio.pcm, dtype="<i2")
        self.playout.enqueue(resample(samples, audio.sample_rate, self._agent.sample_rate))

    def playout_pending(self) -> bool:
        return len(self.playout) > 0

    def send_digits(self, digits: str) -> None:
        self._agent.submit(lambda: self._agent.send_digits(self, digits))

    def hangup(self) -> None:
        self._agent.submit(lambda: self._agent.hangup_consultation(self))

    # SIP thread only
    def pj_call(self) -> PjCall | None:
        return self._pj_call

    def attach(self, pj_call: PjCall) -> None:
        self._pj_call = pj_call

    def release(self) -> None:
        if self.port is not None:
            port, self.port = self.port, None
            destroy_port(port)
        self.playout.clear()  # nobody will play it: the application must not wait for it
        self._pj_call = None
