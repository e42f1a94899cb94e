"""pjsua2's callback classes, as two-line shims into ``SipUserAgent``.

All of these run on the SIP thread (the one polling ``libHandleEvents``) except
``PjLogWriter.write``, which pjlib calls from whichever thread logs.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import pjsua2 as pj

if TYPE_CHECKING:
    from victoria_sip.adapters.sip.user_agent import SipUserAgent

pjsip_log = logging.getLogger("victoria.pjsip")
log = logging.getLogger("victoria.sip")
_PJ_LEVELS = {0: logging.ERROR, 1: logging.ERROR, 2: logging.WARNING, 3: logging.DEBUG}
_Shim = TypeVar("_Shim")


def contained(callback: Callable[[_Shim, object], None]) -> Callable[[_Shim, object], None]:
    """No exception reaches SWIG from a callback: SWIG would print it and keep it in ``sys.last_traceback``,
    which pins the call's objects until ``libDestroy`` aborts on them. An odd message (a caller id, an SDP)
    costs at most that event, logged with its traceback; the process and the other calls go on."""

    @functools.wraps(callback)
    def guarded(self: _Shim, prm: object) -> None:
        try:
            callback(self, prm)
        except Exception:
            log.exception("SIP event %s failed (the process goes on)", callback.__name__)

    return guarded


class PjEndpoint(pj.Endpoint):
    def __init__(self, agent: SipUserAgent) -> None:
        super().__init__()
        self.agent = agent

    @contained
    def onTransportState(self, prm: pj.OnTransportStateParam) -> None:
        tls = prm.tlsInfo
        if prm.state == pj.PJSIP_TP_STATE_DISCONNECTED and not tls.isEmpty() and tls.verifyStatus:
            self.agent.on_tls_refused(tls.remoteAddr, tls.verifyStatus, list(tls.verifyMsgs))


class PjAccount(pj.Account):
    def __init__(self, agent: SipUserAgent, name: str | None) -> None:
        super().__init__()
        self.agent = agent
        self.name = name  # None: the direct (unregistered) account

    @contained
    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        self.agent.on_incoming_call(self, prm.callId, prm.rdata.srcAddress, prm.rdata.wholeMsg)

    @contained
    def onRegState(self, prm: pj.OnRegStateParam) -> None:
        self.agent.on_registration_state(self, prm.code, prm.reason, prm.expiration)


class PjCall(pj.Call):
    def __init__(self, agent: SipUserAgent, account: PjAccount, call_id: int) -> None:
        super().__init__(account, call_id)
        self.agent = agent

    @contained
    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        self.agent.on_call_state(self)

    @contained
    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        self.agent.on_call_media_state(self)

    @contained
    def onStreamDestroyed(self, prm: pj.OnStreamDestroyedParam) -> None:  # the last moment its stats exist
        self.agent.on_stream_destroyed(self)

    @contained
    def onCallTransferStatus(self, prm: pj.OnCallTransferStatusParam) -> None:  # NOTIFYs about our REFER
        self.agent.on_transfer_status(self, prm.statusCode, prm.reason, prm.finalNotify)

    @contained
    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:  # RFC 4733 telephone-event or SIP INFO
        self.agent.on_dtmf_digit(self, prm.digit, prm.method)


class PjLogWriter(pj.LogWriter):
    def write(self, entry: pj.LogEntry) -> None:
        pjsip_log.log(_PJ_LEVELS.get(entry.level, logging.DEBUG), "%s", entry.msg.rstrip())
