"""Malformed SIP, SDP and RTP never crash Victoria nor disturb a call in progress.

Every request goes to 127.0.0.1 from a plain UDP socket; each one is answered
with an error or dropped, and a real caller keeps talking to Victoria meanwhile.
"""

import socket
import threading
import time

import pytest

from tests.support.processes import LOOPBACK, Victoria, free_port, run_caller
from tests.support.raw_sip import invite, send_request

pytestmark = pytest.mark.integration

SDP_UNKNOWN_CODEC = ("v=0\r\no=- 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
                     "m=audio {rtp_port} RTP/AVP 98\r\na=rtpmap:98 NOSUCH/8000\r\n")
SDP_VIDEO_ONLY = ("v=0\r\no=- 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
                  "m=video {rtp_port} RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n")
SDP_BROKEN = "v=0\r\nthis is not sdp\r\nm=audio nope RTP/AVP\r\n"


def malformed_requests(port: int) -> dict[str, bytes]:
    """name -> datagram. Each must get an error response or be dropped; none may be answered 200."""
    good = invite(LOOPBACK, port).decode()
    return {
        "garbage": bytes(range(256)) * 4,
        "empty": b"",
        "only a request line": f"INVITE sip:victoria@{LOOPBACK}:{port} SIP/2.0\r\n\r\n".encode(),
        "no Call-ID": good.replace("Call-ID:", "X-Not-Call-ID:").encode(),
        "bad CSeq": good.replace("CSeq: 1 INVITE", "CSeq: banana INVITE").encode(),
        "broken Via": good.replace("Via: SIP/2.0/UDP", "Via: SIP/9.9/CARRIER-PIGEON").encode(),
        "header without colon": good.replace("Max-Forwards: 70\r\n", "Max-Forwards 70\r\n").encode(),
        "huge header": good.replace("Max-Forwards: 70\r\n", "Max-Forwards: 70\r\nX-Big: " + "A" * 60000 + "\r\n").encode(),
        "oversized datagram": b"INVITE " + b"x" * 65000,
        "Content-Length too long": invite(LOOPBACK, port, content_length=5000),
        "Content-Length negative": invite(LOOPBACK, port, content_length=-5),
        "unknown codecs only": invite(LOOPBACK, port, sdp=SDP_UNKNOWN_CODEC),
        "SDP without audio": invite(LOOPBACK, port, sdp=SDP_VIDEO_ONLY),
        "broken SDP": invite(LOOPBACK, port, sdp=SDP_BROKEN),
        "binary in headers": good.replace("Max-Forwards: 70", "Max-Forwards: \x00\x01\x02\xff").encode("latin-1"),
    }


def blast_rtp(port: int, stop: threading.Event) -> int:
    """Garbage and wrong-payload-type RTP at Victoria's RTP port until ``stop``; returns datagrams sent."""
    sent = 0
    wrong_pt = bytes([0x80, 0x7F]) + b"\x00\x01" + b"\x00" * 8 + b"\xff" * 160  # PT 127, never negotiated
    short = b"\x80"  # shorter than an RTP header
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        while not stop.is_set() and sent < 5000:
            for payload in (wrong_pt, short, bytes(range(200)), b"\x00" * 1400):
                sock.sendto(payload, (LOOPBACK, port))
                sent += 1
            time.sleep(0.005)
    return sent


def test_malformed_sip_and_sdp_get_errors_and_the_process_stays_up(tmp_path):
    server = Victoria(tmp_path / "v", "")
    server.start()
    server.wait_ready()
    target = (LOOPBACK, server.sip_port)
    try:
        answers = {name: send_request(request, target, timeout=1.0)
                   for name, request in malformed_requests(server.sip_port).items()}
        assert server.process.poll() is None, "Victoria is still running"
        assert answers["unknown codecs only"] == 488 and answers["SDP without audio"] == 488, answers
        assert answers["broken SDP"] == 400, answers
        # pjsip reads a datagram whose Content-Length overstates its body as far as it goes (the SDP in it is
        # whole), so that one INVITE is answered, then ACKed and hung up by the sender; nothing else is
        lenient = answers.pop("Content-Length too long")
        assert not any(code is not None and 200 <= code < 300 for code in answers.values()), answers
        report = run_caller(f"sip:7000@{LOOPBACK}:{server.sip_port}", hangup_after=2)
        assert report["answered"], "a good call after the bad ones is answered"
        server.wait_for_log(r"ended, caller-hangup", timeout=10)
    finally:
        assert server.stop() == 0, server.log()[-3000:]
    records = [(call["caller"], call["end_reason"]) for call in server.calls()]
    assert ("caller", "caller-hangup") in records
    assert len(records) == 1 + (lenient == 200), f"malformed requests leave no call records: {records}"


def test_garbage_rtp_does_not_disturb_a_call_in_progress(tmp_path, speech_wav):
    rtp_port = free_port()
    rtp_port -= rtp_port % 2  # RTP on an even port; Victoria's first call takes rtp_port
    server = Victoria(tmp_path / "v", f"[sip]\nrtp_port = {rtp_port}\nrtp_port_range = 2\n")
    server.start()
    server.wait_ready()
    stop = threading.Event()
    try:
        blaster = threading.Thread(target=lambda: setattr(blaster, "sent", blast_rtp(rtp_port, stop)))
        blaster.start()
        report = run_caller(f"sip:7000@{LOOPBACK}:{server.sip_port}", play=speech_wav, hangup_after=12,
                            record=tmp_path / "heard.wav")
        stop.set()
        blaster.join(10)
        server.wait_for_log(r"ended, caller-hangup", timeout=10)
    finally:
        stop.set()
        assert server.stop() == 0, server.log()[-3000:]
    assert blaster.sent > 500
    assert report["answered"] and report["hung_up_by_caller"], report
    assert report["seconds_answer_to_voice"] is not None and report["received_rms_dbfs"] > -40, \
        "the caller heard the greeting despite the garbage"
    [call] = server.calls()
    assert call["end_reason"] == "caller-hangup"
    assert call["frames_received"] > 0.9 * 50 * 12, "the caller's own RTP kept arriving"
    assert call["caller_peak_dbfs"] is not None and call["caller_peak_dbfs"] > -30, \
        f"Victoria heard the caller's speech, not the garbage: {call}\n{server.log()[-3000:]}"
