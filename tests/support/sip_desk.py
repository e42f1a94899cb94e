"""A desk phone for tests: a pjsua2 process that answers every call, plays a tone into it and listens.

It stands for the person (or IVR) Victoria puts callers through to. It honours
Replaces (RFC 3891) as a real desk phone does: a caller's INVITE that replaces
Victoria's call to it takes that call over. For each call it reports who called,
whether it replaced another, the keys pressed on it (DTMF) and how many seconds
of sound it heard, as one JSON line on stdout once ``--calls`` calls have ended
(or ``--timeout`` passed).

    python -m tests.support.sip_desk --bind 127.0.0.1:5090 --calls 2 --timeout 60 [--ring-seconds 3]
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time

import numpy as np
import pjsua2 as pj

from tests.support.sip_caller import RATE, Port, start_endpoint
from victoria_sip.audio.levels import rms_dbfs

TONE_HZ = 660
SOUND_DBFS = -45.0


def tone(seconds: float) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return (np.sin(2 * np.pi * TONE_HZ * t) * 8000).astype(np.int16)


class DeskCall(pj.Call):
    def __init__(self, desk: Desk, account: pj.Account, call_id: int, replaced: int | None = None) -> None:
        super().__init__(account, call_id)
        self.desk = desk
        self.report = {"from": "", "replaced_call": replaced, "answered": False, "digits": "", "sound_seconds": 0.0,
                       "ended": False}
        self.port: Port | None = None
        desk.calls.append(self)

    def onCallState(self, prm):
        info = self.getInfo()
        self.report["from"] = info.remoteUri
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED:
            self.report["answered"] = True
        if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.report["ended"] = True
            # cancelled while ringing: pjsua asserts (SIGABRT) on an answer to a call id it has freed
            self.desk.to_answer = [entry for entry in self.desk.to_answer if entry[1] is not self]

    def onCallMediaState(self, prm):
        info = self.getInfo()  # held: its media vector dies with it
        for media_info in info.media:
            if media_info.type == pj.PJMEDIA_TYPE_AUDIO and media_info.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                media = self.getAudioMedia(media_info.index)
                if self.port is None:
                    self.port = Port(tone(120))
                media.startTransmit(self.port)
                self.port.startTransmit(media)

    def onDtmfDigit(self, prm):
        self.report["digits"] += prm.digit

    def onCallReplaced(self, prm):  # a caller's INVITE with Replaces takes this call over
        prm.newCall = DeskCall(self.desk, self.desk.account, prm.newCallId, replaced=self.desk.calls.index(self))

    def finish(self) -> dict:
        if self.port is not None:
            frames = self.port.received
            self.report["sound_seconds"] = round(sum(1 for f in frames if rms_dbfs(f) > SOUND_DBFS) * 0.02, 2)
            self.report["seconds"] = round(len(frames) * 0.02, 2)
        return self.report


class DeskAccount(pj.Account):
    def __init__(self, desk: Desk) -> None:
        super().__init__()
        self.desk = desk

    def onIncomingCall(self, prm):
        call = DeskCall(self.desk, self, prm.callId)
        ringing = pj.CallOpParam()
        ringing.statusCode = 180
        call.answer(ringing)
        self.desk.to_answer.append((time.monotonic() + self.desk.ring_seconds, call))


class Desk:
    def __init__(self, ring_seconds: float) -> None:
        self.calls: list[DeskCall] = []
        self.account: DeskAccount | None = None
        self.ring_seconds = ring_seconds
        self.to_answer: list[tuple[float, DeskCall]] = []  # (when, call): answered from the main loop

    def answer_due(self) -> None:
        now = time.monotonic()
        for due in [entry for entry in self.to_answer if entry[0] <= now]:
            self.to_answer.remove(due)
            answer = pj.CallOpParam()
            answer.statusCode = 200
            due[1].answer(answer)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bind", required=True, help="host:port to listen on")
    parser.add_argument("--user", default="operator")
    parser.add_argument("--calls", type=int, default=1, help="exit once this many calls have ended")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--ring-seconds", type=float, default=0.0, help="ring this long before answering")
    args = parser.parse_args()
    host, port = args.bind.rsplit(":", 1)

    ep = start_endpoint(host, int(port))

    desk = Desk(args.ring_seconds)
    acfg = pj.AccountConfig()
    acfg.idUri = f"sip:{args.user}@{host}:{port}"
    acfg.mediaConfig.transportConfig.boundAddress = host
    acfg.mediaConfig.transportConfig.port = 43000
    desk.account = DeskAccount(desk)
    desk.account.create(acfg, True)
    print("ready", flush=True)

    started = time.monotonic()
    while time.monotonic() - started < args.timeout:
        ep.libHandleEvents(10)
        desk.answer_due()
        if sum(call.report["ended"] for call in desk.calls) >= args.calls:
            break
    for call in desk.calls:
        if not call.report["ended"]:
            try:
                call.hangup(pj.CallOpParam(True))
            except pj.Error:
                pass
    for _ in range(50):
        ep.libHandleEvents(10)
    reports = [call.finish() for call in desk.calls]

    from pjsua2 import _pjsua2

    for call in desk.calls:
        if call.port is not None:
            _pjsua2.delete_AudioMediaPort(call.port)
            call.port = None
    desk.calls.clear()
    call = None  # the loop's last: a Call that outlives libDestroy aborts at exit
    sys.last_traceback = sys.last_value = sys.last_type = None
    gc.collect()
    desk.account.shutdown()
    ep.libDestroy(pj.PJSUA_DESTROY_NO_NETWORK)
    print(json.dumps({"calls": reports}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
