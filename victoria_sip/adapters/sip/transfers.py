"""SIP thread: putting callers through. Blind transfers are a REFER; attended ones call the target first
(a consultation Victoria speaks into), then REFER the caller with Replaces. The outcome reaches the
application's ``CallHandler`` from the final NOTIFY."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pjsua2 as pj

from victoria_sip.adapters.sip.call_legs import SipCallLeg, SipConsultation
from victoria_sip.adapters.sip.media_port import CallMediaPort
from victoria_sip.adapters.sip.shims import PjCall

if TYPE_CHECKING:
    from victoria_sip.adapters.sip.registrations import Registration
    from victoria_sip.adapters.sip.shims import PjAccount
    from victoria_sip.domain.ports import CallHandler
    from victoria_sip.settings import SipSettings

log = logging.getLogger("victoria.sip")


class TransfersMixin:
    """Part of ``SipUserAgent``: everything here runs on the SIP thread."""

    settings: SipSettings
    sample_rate: int
    _legs: dict[int, SipCallLeg]
    _consultations: dict[int, SipConsultation]
    _registrations: dict[str, Registration]
    _direct: PjAccount | None
    _handler: CallHandler

    def transfer(self, leg: SipCallLeg, target: str) -> None:
        pj_call = leg.pj_call()
        if pj_call is None:
            return
        log.info("call %s: transferring to %s (REFER)", leg.call_id, target)
        try:
            pj_call.xfer(target, pj.CallOpParam(True))
        except pj.Error as exc:
            log.warning("call %s: transfer failed: %s", leg.call_id, exc.reason)
            self._post(self._handler.transfer_finished(leg.call_id, 500, exc.reason))

    def place_consultation(self, consultation: SipConsultation) -> None:
        """Call an attended transfer's target from the account the caller came in on."""
        leg = consultation.leg
        registration = self._registrations.get(leg.account or "")
        account = registration.account if registration is not None else self._direct
        transport = registration.settings.transport if registration is not None else self.settings.transport
        target = over_transport(consultation.target, transport)
        pj_call = PjCall(self, account, pj.PJSUA_INVALID_ID)
        log.info("call %s: calling %s to announce the caller (attended transfer)", leg.call_id, target)
        try:
            pj_call.makeCall(target, pj.CallOpParam(True))
        except pj.Error as exc:
            log.warning("call %s: could not call %s: %s", leg.call_id, consultation.target, exc.reason.strip())
            consultation.reported = True
            self._post(self._handler.consultation_answered(leg.call_id, 500, exc.reason.strip()))
            return
        consultation.attach(pj_call)
        self._consultations[pj_call.getId()] = consultation

    def _consultation_media(self, consultation: SipConsultation, pj_call: PjCall, info: pj.CallInfo) -> None:
        for media_info in info.media:
            if media_info.type != pj.PJMEDIA_TYPE_AUDIO or media_info.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            try:
                call_media = pj_call.getAudioMedia(media_info.index)
            except pj.Error:
                continue
            if consultation.port is None:
                consultation.port = CallMediaPort(f"consult{info.id}", self.sample_rate, consultation.inbound,
                                                  consultation.playout)
            call_media.startTransmit(consultation.port)
            consultation.port.startTransmit(call_media)
            self._report_consultation_answered(consultation)
            return

    def _report_consultation_answered(self, consultation: SipConsultation) -> None:
        # answered = the dialog is confirmed and its media is up (pjsua reports the two in either order)
        if consultation.confirmed and consultation.port is not None and not consultation.reported:
            consultation.reported = True
            log.info("call %s: %s answered", consultation.leg.call_id, consultation.target)
            self._post(self._handler.consultation_answered(consultation.leg.call_id, 200, "OK"))

    def _consultation_state(self, consultation: SipConsultation, info: pj.CallInfo) -> None:
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED:
            consultation.confirmed = True
            self._report_consultation_answered(consultation)
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            del self._consultations[info.id]
            consultation.release()
            log.info("call %s: call to %s ended (%d %s)", consultation.leg.call_id, consultation.target,
                     info.lastStatusCode, info.lastReason)
            if not consultation.reported:
                consultation.reported = True
                code = info.lastStatusCode if info.lastStatusCode >= 300 else 500
                self._post(self._handler.consultation_answered(consultation.leg.call_id, code, info.lastReason))

    def send_digits(self, consultation: SipConsultation, digits: str) -> None:
        pj_call = consultation.pj_call()
        if pj_call is None:
            return
        log.debug("call %s: pressing %d key(s) on the call to %s", consultation.leg.call_id, len(digits),
                  consultation.target)
        try:
            pj_call.dialDtmf(digits)  # RFC 4733, when the target offered telephone-event
        except pj.Error:
            param = pj.CallSendDtmfParam()
            param.method = pj.PJSUA_DTMF_METHOD_SIP_INFO
            param.digits = digits
            try:
                pj_call.sendDtmf(param)
            except pj.Error as exc:
                log.warning("call %s: could not send keys to %s: %s", consultation.leg.call_id, consultation.target,
                            exc.reason.strip())

    def transfer_replacing(self, leg: SipCallLeg, consultation: SipConsultation) -> None:
        """REFER the caller to the target with Replaces: the caller's phone calls the target, which swaps our
        call to it for the caller's; the final NOTIFY arrives as for a blind transfer."""
        pj_call, target_call = leg.pj_call(), consultation.pj_call()
        if pj_call is None or target_call is None:
            self._post(self._handler.transfer_finished(leg.call_id, 481, "the call to the target has ended"))
            return
        log.info("call %s: connecting the caller to %s (REFER with Replaces)", leg.call_id, consultation.target)
        try:
            pj_call.xferReplaces(target_call, pj.CallOpParam(True))
        except pj.Error as exc:
            log.warning("call %s: transfer failed: %s", leg.call_id, exc.reason.strip())
            self._post(self._handler.transfer_finished(leg.call_id, 500, exc.reason.strip()))

    def hangup_consultation(self, consultation: SipConsultation) -> None:
        pj_call = consultation.pj_call()
        if pj_call is None:
            return
        try:
            pj_call.hangup(pj.CallOpParam(True))
        except pj.Error as exc:
            log.debug("call %s: hanging up the call to %s: %s", consultation.leg.call_id, consultation.target,
                      exc.reason.strip())

    def on_transfer_status(self, pj_call: PjCall, code: int, reason: str, final: bool) -> None:
        leg = self._legs.get(pj_call.getId())
        if leg is None or not final:
            return
        leg.transferred = 200 <= code < 300
        log.info("call %s: transfer %s (%d %s)", leg.call_id, "done" if leg.transferred else "failed", code, reason)
        self._post(self._handler.transfer_finished(leg.call_id, code, reason))


def over_transport(uri: str, transport: str) -> str:
    """``uri`` over the account's transport: the consultation call leaves as the caller came in (over TLS, never
    in clear), unless the URI names a transport itself."""
    if transport == "udp" or ";transport=" in uri.lower() or uri.lower().startswith("sips:"):
        return uri
    head, _, params = uri.partition(";")
    return f"{head};transport={transport}" + (f";{params}" if params else "")
