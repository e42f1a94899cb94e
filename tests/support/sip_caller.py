"""A scripted SIP caller for tests: a second pjsua2 process that dials, talks and listens.

It plays a WAV file (the caller's speech) into the call, records everything it
receives to a WAV file, and prints one JSON report on its last stdout line:
whether and when the call was answered, when the first non-silent audio came
back, what the far end said as SIP status, and how it ended.

    python -m tests.support.sip_caller --dial sip:7000@127.0.0.1:5080 --play hello.wav \
        --record heard.wav --hangup-after 6 [--proxy sip:127.0.0.1:5070 --user caller --password pw]
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import wave

import numpy as np
import pjsua2 as pj

from victoria_sip.adapters.sip import byte_vector
from victoria_sip.audio.levels import rms_dbfs
from victoria_sip.audio.resample import resample

RATE = 16000
FRAME = RATE // 50
NON_SILENT_DBFS = -45.0
TLS_TRANSPORT = [-1]  # the TLS transport's id, once created


class Port(pj.AudioMediaPort):
    def __init__(self, speech: np.ndarray) -> None:
        super().__init__()
        self.speech = speech
        self.position = 0
        self.received: list[np.ndarray] = []
        self.first_voice_at: float | None = None
        fmt = pj.MediaFormatAudio()
        fmt.type = pj.PJMEDIA_TYPE_AUDIO
        fmt.init(pj.PJMEDIA_FORMAT_PCM, RATE, 1, 20000, 16)
        self.createPort("caller", fmt)

    def onFrameReceived(self, frame):
        if frame.type == pj.PJMEDIA_FRAME_TYPE_AUDIO and frame.size:
            samples = byte_vector.read_int16(frame.buf)
            self.received.append(samples)
            if self.first_voice_at is None and rms_dbfs(samples) > NON_SILENT_DBFS:
                self.first_voice_at = time.monotonic()

    def onFrameRequested(self, frame):
        chunk = self.speech[self.position : self.position + FRAME]
        self.position += FRAME
        if len(chunk) < FRAME:
            chunk = np.concatenate((chunk, np.zeros(FRAME - len(chunk), np.int16)))
        byte_vector.write_int16(frame.buf, chunk)
        frame.size = chunk.nbytes
        frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO


class Call(pj.Call):
    def __init__(self, account, report, speech):
        super().__init__(account)
        self.account = account
        self.transferred_call = None
        self.report = report
        self.speech = speech
        self.port: Port | None = None

    def onCallState(self, prm):
        info = self.getInfo()
        self.report["last_status"] = info.lastStatusCode
        self.report["last_reason"] = info.lastReason
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED and self.report["answered_at"] is None:
            self.report["answered_at"] = time.monotonic()
        if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.report["disconnected_at"] = time.monotonic()

    def onCallTransferRequest(self, prm):  # accepted (202); pjsua dials the target on this new Call
        self.report["transferred_to"] = prm.dstUri
        self.transferred_call = Call(self.account, {**self.report, "answered_at": None}, np.zeros(0, np.int16))
        prm.newCall = self.transferred_call

    def onCallMediaState(self, prm):
        info = self.getInfo()
        for media_info in info.media:
            if media_info.type == pj.PJMEDIA_TYPE_AUDIO and media_info.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                media = self.getAudioMedia(media_info.index)
                if self.port is None:
                    self.port = Port(self.speech)
                    stream = self.getStreamInfo(media_info.index)
                    self.report["codec"] = stream.codecName
                    secure = stream.proto in (pj.PJMEDIA_TP_PROTO_RTP_SAVP, pj.PJMEDIA_TP_PROTO_RTP_SAVPF)
                    self.report["media"] = "srtp" if secure else "rtp"
                media.startTransmit(self.port)
                self.port.startTransmit(media)


def start_endpoint(host: str, port: int, codec: str | None = None, ca_file: str | None = None,
                   client_cert: tuple[str, str] | None = None) -> pj.Endpoint:
    """A polled pjsua2 endpoint on UDP host:port (threads and shutdown as in NOTES.md), null sound device;
    with ``codec``, that codec only; with ``ca_file``, a TLS transport too (port of the system's choosing) that
    checks the far end's certificate against it."""
    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.logConfig.level = 1
    cfg.logConfig.consoleLevel = 1
    cfg.medConfig.clockRate = RATE
    cfg.medConfig.sndClockRate = RATE
    cfg.medConfig.noVad = True
    cfg.medConfig.ecTailLen = 0
    ep.libInit(cfg)
    ep.audDevManager().setNullDev()
    byte_vector.select_fast_path()
    if codec:
        for each in ep.codecEnum2():
            ep.codecSetPriority(each.codecId, 0)
        ep.codecSetPriority(codec, 255)
    tcfg = pj.TransportConfig()
    tcfg.port = port
    tcfg.boundAddress = host
    ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
    if ca_file:
        tls = pj.TransportConfig()
        tls.boundAddress = host
        tls.tlsConfig.CaListFile = ca_file
        tls.tlsConfig.verifyServer = True
        if client_cert:
            tls.tlsConfig.certFile, tls.tlsConfig.privKeyFile = client_cert
        TLS_TRANSPORT[0] = ep.transportCreate(pj.PJSIP_TRANSPORT_TLS, tls)
    ep.libStart()
    return ep


def load_speech(path: str | None) -> np.ndarray:
    if not path:
        return np.zeros(0, np.int16)
    with wave.open(path) as wav:
        samples = np.frombuffer(wav.readframes(wav.getnframes()), "<i2")
        return resample(samples, wav.getframerate(), RATE)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dial", required=True)
    parser.add_argument("--bind", default="127.0.0.1:0")
    parser.add_argument("--proxy", help="outbound proxy, e.g. sip:127.0.0.1:5070")
    parser.add_argument("--user", default="caller")
    parser.add_argument("--password")
    parser.add_argument("--codec", default="PCMU/8000/1")
    parser.add_argument("--play")
    parser.add_argument("--record")
    parser.add_argument("--hangup-after", type=float, default=5.0, help="seconds after answer")
    parser.add_argument("--timeout", type=float, default=20.0)
    parser.add_argument("--dtmf", help="keys to press (RFC 4733) --dtmf-after seconds after answer; "
                                         "comma-separated groups are pressed --dtmf-gap seconds apart")
    parser.add_argument("--dtmf-after", type=float, default=3.0)
    parser.add_argument("--dtmf-gap", type=float, default=6.0)
    parser.add_argument("--stay-transferred", type=float, default=1.0,
                        help="seconds to stay on the call to a transfer target once Victoria has left")
    parser.add_argument("--tls-ca", help="call over TLS, trusting this CA (dial and proxy URIs need ;transport=tls)")
    parser.add_argument("--tls-cert", nargs=2, metavar=("CERTIFICATE", "KEY"), help="a client certificate (TLS)")
    parser.add_argument("--srtp", choices=("off", "optional", "mandatory"), default="off",
                        help="offer SRTP (SDES): mandatory offers RTP/SAVP only")
    args = parser.parse_args()

    host, port = args.bind.rsplit(":", 1)
    report = {"answered_at": None, "disconnected_at": None, "last_status": None, "last_reason": "", "codec": "",
              "transferred_to": None, "media": ""}
    ep = start_endpoint(host, int(port), codec=args.codec, ca_file=args.tls_ca, client_cert=args.tls_cert)

    acfg = pj.AccountConfig()
    acfg.idUri = f"sip:{args.user}@{host}"
    acfg.mediaConfig.transportConfig.boundAddress = host
    # RTP from 42000-43999 (bench latency sniffs there), from a random start: callers running side by side
    # (several in one test, or two suites on one machine) would otherwise all try 42000 first
    acfg.mediaConfig.transportConfig.port = 42000
    acfg.mediaConfig.transportConfig.portRange = 2000
    acfg.mediaConfig.transportConfig.randomizePort = True
    if args.proxy:
        acfg.sipConfig.proxies.append(args.proxy + ";lr")
    if args.tls_ca:
        acfg.sipConfig.transportId = TLS_TRANSPORT[0]
    if args.srtp != "off":
        acfg.mediaConfig.srtpUse = pj.PJMEDIA_SRTP_MANDATORY if args.srtp == "mandatory" else pj.PJMEDIA_SRTP_OPTIONAL
        acfg.mediaConfig.srtpSecureSignaling = 0
    if args.password:
        acfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", args.user, 0, args.password))
    account = pj.Account()
    account.create(acfg)

    call = Call(account, report, load_speech(args.play))
    started = time.monotonic()
    call.makeCall(args.dial, pj.CallOpParam(True))
    hung_up = False
    key_groups = args.dtmf.split(",") if args.dtmf else []
    while time.monotonic() - started < args.timeout and report["disconnected_at"] is None:
        ep.libHandleEvents(10)
        answered = report["answered_at"]
        due = args.dtmf_after + args.dtmf_gap * (len(args.dtmf.split(",")) - len(key_groups)) if key_groups else None
        if answered and key_groups and time.monotonic() - answered >= due:
            call.dialDtmf(key_groups.pop(0))
        if answered and not hung_up and time.monotonic() - answered >= args.hangup_after:
            call.hangup(pj.CallOpParam(True))
            hung_up = True
    if report["disconnected_at"] is None and not hung_up:
        try:
            call.hangup(pj.CallOpParam(True))
        except pj.Error:
            pass
    transferred = call.transferred_call
    if transferred is not None:  # the call to the transfer target: a short talk, then hang up before teardown
        for _ in range(int(args.stay_transferred * 100)):
            ep.libHandleEvents(10)
        try:
            transferred.hangup(pj.CallOpParam(True))
        except pj.Error:
            pass
    for _ in range(50):
        ep.libHandleEvents(10)

    received = np.concatenate(call.port.received) if call.port and call.port.received else np.zeros(0, np.int16)
    first_voice = call.port.first_voice_at if call.port else None
    if args.record:
        with wave.open(args.record, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(RATE)
            wav.writeframes(received.tobytes())
    answered = report["answered_at"]
    heard_after_transfer = transferred.port.received if transferred is not None and transferred.port else []
    summary = {
        "answered": answered is not None,
        "transferred_to": report["transferred_to"],
        "transferred_answered": transferred is not None and transferred.report["answered_at"] is not None,
        "transferred_rms_dbfs": round(rms_dbfs(np.concatenate(heard_after_transfer)), 1) if heard_after_transfer else None,
        "hung_up_by_caller": hung_up,
        "last_status": report["last_status"],
        "last_reason": report["last_reason"],
        "codec": report["codec"],
        "media": report["media"],
        "seconds_to_answer": None if answered is None else round(answered - started, 3),
        "seconds_answer_to_voice": None if answered is None or first_voice is None else round(first_voice - answered, 3),
        "seconds_received": round(len(received) / RATE, 2),
        "received_rms_dbfs": round(rms_dbfs(received), 1),
        "call_seconds": None if answered is None or report["disconnected_at"] is None else round(report["disconnected_at"] - answered, 2),
    }
    from pjsua2 import _pjsua2

    for each in (call, transferred):
        if each is not None and each.port is not None:
            _pjsua2.delete_AudioMediaPort(each.port)
            each.port = None
    call.transferred_call = None
    call = transferred = None
    sys.last_traceback = sys.last_value = sys.last_type = None
    gc.collect()
    account.shutdown()
    ep.libDestroy(pj.PJSUA_DESTROY_NO_NETWORK)
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
