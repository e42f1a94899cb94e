"""SIP thread: calls to Victoria. Who may call, routing to an agent, busy and draining answers, media up,
keypad digits, RTP statistics, and the end of each call, reported to the application's ``CallHandler``."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

import pjsua2 as pj

from victoria_sip.adapters.sip.call_legs import SipCallLeg, SipConsultation
from victoria_sip.adapters.sip.media_port import CallMediaPort
from victoria_sip.adapters.sip.secure_transport import SECURE_MEDIA_PROTOCOLS, InviteSecurity
from victoria_sip.adapters.sip.shims import PjAccount, PjCall
from victoria_sip.domain import CallId, EndReason, PhoneNumber

if TYPE_CHECKING:
    from victoria_sip.adapters.recordings import Recorder
    from victoria_sip.adapters.sip.allow_list import InviteAllowList
    from victoria_sip.settings import SipSettings
    from victoria_sip.domain.ports import CallHandler, Overload, Telemetry

log = logging.getLogger("victoria.sip")

RTP_STATS_SECONDS = 2.0  # how often each call's inbound RTP statistics go to telemetry
# A caller ACKs our 200 OK within a round trip; pjsip would wait Timer H (32 s) for one that never comes, and
# a flood of INVITEs that are answered but never ACKed would hold every slot that long. So: an answered call
# with no ACK after ACK_WAIT_SECONDS is hung up, and when Victoria is full, one that has waited ACK_GRACE_SECONDS
# gives its place to a new caller at once. The conversation (greeting, database row) starts at the ACK.
ACK_WAIT_SECONDS = 4.0
ACK_GRACE_SECONDS = 0.5
REPORT_EVERY_SECONDS = 10.0  # busy answers and dropped calls of a flood: one log line per interval, with counts


class IncomingCallsMixin:
    """Part of ``SipUserAgent``: everything here runs on the SIP thread."""

    settings: SipSettings
    sample_rate: int
    _legs: dict[int, SipCallLeg]
    _consultations: dict[int, SipConsultation]
    _rejected: dict[int, PjCall]
    _allowed: InviteAllowList
    _handler: CallHandler
    _telemetry: Telemetry
    _recorder: Recorder | None
    _stopping: threading.Event
    _draining: bool
    _rtp_stats_due: float
    _awaiting_ack: dict[int, float]  # pjsua call id -> when our 200 OK went out
    _flood_report: FloodReport

    def on_incoming_call(self, account: PjAccount, pj_call_id: int, source: str, message: str = "") -> None:
        pj_call = PjCall(self, account, pj_call_id)
        if not self._allowed.allows(source):  # before routing: a scanner learns nothing, costs nothing
            self._allowed.log_refusal(source, account.name or "direct")
            self._telemetry.invite_refused("source")
            self._rejected[pj_call_id] = pj_call
            self._answer(pj_call, 403)
            return
        info = pj_call.getInfo()
        caller = info.remoteUri
        callee = account.name and self._registrations[account.name].settings.user or PhoneNumber.from_sip_uri(info.localUri).value
        where = f"account {account.name!r}" if account.name else "direct"
        agent = self._handler.route(callee, account.name)
        security = InviteSecurity.of(message)
        srtp = self._registrations[account.name].settings.srtp if account.name else self.settings.srtp
        if self._stopping.is_set() or self._draining:
            log.info("call from %s to %s refused with 503: shutting down", caller, callee)
            self._reject(pj_call, 503, caller, callee, EndReason.SHUTDOWN)
        elif agent is None:
            log.warning("call from %s to %s (%s, from %s): no agent answers it; 404", caller, callee, where, source)
            self._reject(pj_call, 404, caller, callee, EndReason.NO_ROUTE)
        elif srtp == "mandatory" and not security.srtp_offered:
            log.warning("call from %s to %s (%s, from %s) refused with 488: srtp = \"mandatory\" and the offer has %s "
                        "(have the PBX encrypt media: Asterisk media_encryption=sdes, FreeSWITCH rtp_secure_media)",
                        caller, callee, where, source, security.describe_offer())
            self._reject(pj_call, 488, caller, callee, EndReason.UNENCRYPTED)
        elif self._calls_in_progress() >= self.settings.max_concurrent_calls and not self._give_up_an_unacked_call():
            self._flood_report.busy(caller, callee, self.settings.busy_response, len(self._legs))
            self._refuse_busy(pj_call, caller, callee, agent)
        elif (overload := self._handler.admit(agent)) is not None and not overload.hand_off:
            self._flood_report.overloaded(caller, callee, self.settings.busy_response, overload)
            self._refuse_busy(pj_call, caller, callee, agent)
        else:
            leg = SipCallLeg(self, pj_call, caller, callee, account.name, agent, overload)
            leg.signalling = security.signalling
            if overload is not None:
                log.warning("call from %s to %s: all assistants busy, %s: answered to be put through to %r",
                            caller, callee, overload.detail, agent)
            self._legs[info.id] = leg
            log.info("call %s: incoming from %s to %s (%s, from %s), agent %r", leg.call_id, caller, callee, where, source, agent)
            self._answer(pj_call, 180)
            self._answer(pj_call, 200)
            self._awaiting_ack[info.id] = time.monotonic()

    def _refuse_busy(self, pj_call: PjCall, caller: str, callee: str, agent: str) -> None:
        if self._flood_report.store_rejection():
            self._reject(pj_call, self.settings.busy_response, caller, callee, EndReason.BUSY)
        else:  # a flood: counted, not stored one by one
            self._rejected[pj_call.getId()] = pj_call
            self._answer(pj_call, self.settings.busy_response)
            self._telemetry.call_rejected(agent, EndReason.BUSY)

    def _calls_in_progress(self) -> int:
        return sum(not leg.hangup_requested for leg in self._legs.values())

    def _give_up_an_unacked_call(self) -> bool:
        """Full: hang up the oldest answered call still without an ACK after the grace time, for a new one."""
        now = time.monotonic()
        waiting = [(since, pj_id) for pj_id, since in self._awaiting_ack.items()
                   if now - since >= ACK_GRACE_SECONDS and not self._legs[pj_id].hangup_requested]
        if not waiting:
            return False
        _, pj_id = min(waiting)
        self._drop_unacked(pj_id, "a new caller needs its place")
        return True

    def _drop_calls_never_acked(self) -> None:
        now = time.monotonic()
        for pj_id, since in list(self._awaiting_ack.items()):
            if now - since >= ACK_WAIT_SECONDS:
                self._drop_unacked(pj_id, f"no ACK in {ACK_WAIT_SECONDS:.0f} s")

    def _drop_unacked(self, pj_id: int, why: str) -> None:
        del self._awaiting_ack[pj_id]
        leg = self._legs[pj_id]
        self._flood_report.dropped(leg.caller, why)
        self.hangup(leg)

    def _answer(self, pj_call: PjCall, code: int) -> None:
        param = pj.CallOpParam()
        param.statusCode = code
        pj_call.answer(param)

    def _reject(self, pj_call: PjCall, code: int, caller: str, callee: str, reason: EndReason) -> None:
        self._rejected[pj_call.getId()] = pj_call
        self._answer(pj_call, code)
        self._post(self._handler.call_rejected(CallId.new(), caller, callee, reason))

    def on_call_media_state(self, pj_call: PjCall) -> None:
        info = pj_call.getInfo()
        if info.id in self._consultations:
            self._consultation_media(self._consultations[info.id], pj_call, info)
            return
        leg = self._legs.get(info.id)
        if leg is None:
            return
        for media_info in info.media:
            if media_info.type != pj.PJMEDIA_TYPE_AUDIO or media_info.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            try:
                call_media = pj_call.getAudioMedia(media_info.index)
            except pj.Error as exc:  # an offer pjsua calls audio but cannot bridge: try the next stream
                log.warning("call %s: media stream %d unusable: %s", leg.call_id, media_info.index, exc.reason.strip())
                continue
            if leg.port is None:
                if self._recorder is not None:
                    leg.recording = self._recorder.begin(leg.call_id.value, self.sample_rate)
                tap = leg.recording.tap if leg.recording else None
                leg.port = CallMediaPort(f"call{info.id}", self.sample_rate, leg.inbound, leg.playout, tap)
            call_media.startTransmit(leg.port)
            leg.port.startTransmit(call_media)
            if leg.media_index is None:
                leg.media_index = media_info.index
                stream = pj_call.getStreamInfo(media_info.index)
                leg.codec = stream.codecName
                leg.media = "srtp" if stream.proto in SECURE_MEDIA_PROTOCOLS else "rtp"
                self._telemetry.call_encryption(leg.signalling, leg.media)
                log.info("call %s: media up (%s, %s over %s)", leg.call_id, leg.codec, leg.media.upper(),
                         leg.signalling.upper())
            self._start_conversation(leg)
            return

    def _start_conversation(self, leg: SipCallLeg) -> None:
        """Once the call is both confirmed (ACKed) and has media: pjsua reports the two in either order."""
        if leg.confirmed and leg.port is not None and not leg.answered and not leg.hangup_requested:
            leg.answered = True
            self._post(self._handler.call_answered(leg, leg.agent_name, leg.overload))

    def on_stream_destroyed(self, pj_call: PjCall) -> None:
        leg = self._legs.get(pj_call.getId())
        if leg is not None:
            self._report_rtp_stats(leg)  # the call's last seconds of RTP statistics

    def on_dtmf_digit(self, pj_call: PjCall, digit: str, method: int) -> None:
        leg = self._legs.get(pj_call.getId())
        if leg is None or not leg.answered:
            return
        how = "SIP INFO" if method == pj.PJSUA_DTMF_METHOD_SIP_INFO else "RFC 4733"
        log.debug("call %s: keypad %r (%s)", leg.call_id, digit, how)  # digits may be a PIN: not at INFO
        self._post(self._handler.keypad_pressed(leg.call_id, digit))

    def on_call_state(self, pj_call: PjCall) -> None:
        info = pj_call.getInfo()
        if info.id in self._consultations:
            self._consultation_state(self._consultations[info.id], info)
            return
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED and info.id in self._legs:
            self._awaiting_ack.pop(info.id, None)
            self._legs[info.id].confirmed = True
            self._start_conversation(self._legs[info.id])
        if info.state != pj.PJSIP_INV_STATE_DISCONNECTED:
            return
        self._awaiting_ack.pop(info.id, None)
        if self._rejected.pop(info.id, None) is not None:
            return
        leg = self._legs.pop(info.id, None)
        if leg is None:
            return
        reason = self._end_reason(leg, info)
        frames = leg.media_stats()
        leg.release()  # destroys the media port; dropping the Call here is safe in poll mode
        if leg.recording is not None:
            self._recorder.finish(leg.call_id.value)
        log.info(
            "call %s: ended (%s, %d %s), %d frames in, %d out",
            leg.call_id, reason.value, info.lastStatusCode, info.lastReason, frames[0], frames[1],
        )
        if leg.answered:
            self._post(self._handler.call_ended(leg.call_id, reason))

    def _sample_rtp_stats(self) -> None:
        if time.monotonic() < self._rtp_stats_due:
            return
        self._rtp_stats_due = time.monotonic() + RTP_STATS_SECONDS
        for leg in self._legs.values():
            self._report_rtp_stats(leg)

    def _report_rtp_stats(self, leg: SipCallLeg) -> None:
        """Hand telemetry what arrived since the last report (pjmedia's RTCP and jitter-buffer counters)."""
        pj_call = leg.pj_call()
        if pj_call is None or leg.media_index is None or not pj_call.hasMedia():
            return  # no stream (any more): pjsua2 would log an error for asking
        try:
            stat = pj_call.getStreamStat(leg.media_index)
        except pj.Error:
            return  # the stream is already gone (the call is ending)
        rx = stat.rtcp.rxStat
        now = (rx.pkt, rx.loss, stat.jbuf.discard)
        packets, lost, discarded = (max(n - before, 0) for n, before in zip(now, leg.rtp_counted))
        leg.rtp_counted = now
        jitter = rx.jitterUsec.last / 1e6 if rx.jitterUsec.n else None
        self._telemetry.rtp_received(packets, lost, discarded, jitter)

    def _end_reason(self, leg: SipCallLeg, info: pj.CallInfo) -> EndReason:
        if leg.transferred:
            return EndReason.TRANSFERRED
        if leg.hangup_requested:
            return EndReason.SHUTDOWN if self._stopping.is_set() or self._draining else EndReason.AGENT_HANGUP
        if not leg.confirmed:
            return EndReason.CALLER_CANCELLED if info.lastStatusCode == 487 else EndReason.MEDIA_FAILURE
        return EndReason.CALLER_HANGUP

    def hangup(self, leg: SipCallLeg) -> None:
        pj_call = leg.pj_call()
        if pj_call is None or leg.hangup_requested:
            return
        leg.hangup_requested = True
        try:
            pj_call.hangup(pj.CallOpParam(True))
        except pj.Error as exc:
            log.warning("call %s: hangup failed: %s", leg.call_id, exc.reason)


class FloodReport:
    """What a flood of INVITEs costs in logs and rows: the first busy answer and dropped call logged at once,
    then one line per interval with the counts; rejected calls stored at most ``rows_per_second``."""

    def __init__(self, rows_per_second: float = 5.0, interval: float = REPORT_EVERY_SECONDS) -> None:
        self._interval = interval
        self._rows_per_second = rows_per_second
        self._tokens = rows_per_second
        self._refilled = time.monotonic()
        self._counts = {"busy": 0, "dropped": 0, "overloaded": 0}
        self._logged = {"busy": 0.0, "dropped": 0.0, "overloaded": 0.0}

    def busy(self, caller: str, callee: str, code: int, calls: int) -> None:
        if self._due("busy"):
            log.warning("call from %s to %s rejected with %d: already %d calls (max_concurrent_calls); %d busy "
                        "answer(s) since the last report", caller, callee, code, calls, self._take("busy"))

    def overloaded(self, caller: str, callee: str, code: int, overload: Overload) -> None:
        if self._due("overloaded"):
            log.warning("call from %s to %s rejected with %d: no headroom (%s): %s; %d such answer(s) since the "
                        "last report", caller, callee, code, overload.reason, overload.detail, self._take("overloaded"))

    def dropped(self, caller: str, why: str) -> None:
        if self._due("dropped"):
            log.warning("call from %s answered but never confirmed (%s): hung up; %d such call(s) since the "
                        "last report", caller, why, self._take("dropped"))

    def store_rejection(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self._rows_per_second, self._tokens + (now - self._refilled) * self._rows_per_second)
        self._refilled = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    def _due(self, kind: str) -> bool:
        self._counts[kind] += 1
        now = time.monotonic()
        if now - self._logged[kind] < self._interval:
            return False
        self._logged[kind] = now
        return True

    def _take(self, kind: str) -> int:
        count, self._counts[kind] = self._counts[kind], 0
        return count
