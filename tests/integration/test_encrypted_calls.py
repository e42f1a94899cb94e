"""Encrypted calls on loopback (issue 16): SIP over TLS to Victoria's listener and SDES-keyed SRTP, with a real
pjsua2 caller, certificates from a private CA, and the wire watched as an eavesdropper would watch it."""

import re
import socket
import time
import urllib.request

import numpy as np
import pytest

from tests.integration.conftest import read_wav, write_wav
from tests.integration.test_conversation import transcribe
from tests.support.certificates import TestPki
from tests.support.loopback_capture import LoopbackCapture
from tests.support.ollama_double import OllamaDouble
from tests.support.processes import LOOPBACK, Victoria, run_caller
from victoria_sip.audio.g711 import mulaw_decode

pytestmark = pytest.mark.integration

RATE = 16000
QUESTION = "Hello, I would like to book a table for two people tomorrow evening."
REPLY = "We have a table for two people at seven tomorrow evening. Shall I book it for you?"
CALLER_RTP = range(42000, 44000)  # the test caller's RTP ports (tests/support/sip_caller.py)


def tls_victoria(tmp_path, pki: TestPki, srtp: str, llm_host: str = "http://127.0.0.1:9") -> Victoria:
    listener = pki.issue("victoria", names=("127.0.0.1",))
    config = f"""
[sip]
transport = "tls"
certificate = "{listener.certificate}"
private_key = "{listener.private_key}"
ca_file = "{pki.ca_file}"
srtp = "{srtp}"

[llm]
host = "{llm_host}"
first_token_timeout = 3.0
"""
    server = Victoria(tmp_path / f"victoria-{srtp}", config)
    server.start()
    server.wait_ready()
    return server


def tls_call(server: Victoria, pki: TestPki, tmp_path, srtp: str, audio: np.ndarray | None = None,
             hangup_after: float = 4.0, codec: str = "PCMU/8000/1") -> tuple[dict, np.ndarray]:
    played = write_wav(tmp_path / f"caller-{srtp}.wav", audio if audio is not None else np.zeros(RATE, np.int16), RATE)
    heard = tmp_path / f"heard-{srtp}.wav"
    report = run_caller(f"sip:7000@{LOOPBACK}:{server.sip_port};transport=tls", tls_ca=pki.ca_file, srtp=srtp,
                        play=played, record=heard, hangup_after=hangup_after, timeout=hangup_after + 20, codec=codec)
    return report, (read_wav(heard)[0] if heard.exists() else np.zeros(0, np.int16))


def caller_stream(capture: LoopbackCapture) -> list[bytes]:
    """The RTP payloads the caller sent (after the 12-byte header), from its one RTP port."""
    [port] = [p for p in capture.udp_ports() if p in CALLER_RTP and len(capture.udp_payloads(p)) > 50]
    return [packet[12:] for packet in capture.udp_payloads(port)]


def silent_share(payloads: list[bytes]) -> float:
    """The share of packets that decode, as G.711 μ-law, to silence (the caller plays silence first)."""
    silent = [np.abs(mulaw_decode(p).astype(np.int32)).max() < 64 for p in payloads]
    return sum(silent) / len(silent)


def test_a_call_over_tls_with_srtp_is_unreadable_on_the_wire_and_still_converses(tmp_path, piper_voice):
    pki = TestPki(tmp_path / "pki")
    speech = np.concatenate([np.zeros(3 * RATE, np.int16), piper_voice(QUESTION), np.zeros(9 * RATE, np.int16)])
    with OllamaDouble(reply=REPLY) as ollama:
        server = tls_victoria(tmp_path, pki, "optional", ollama.host)
        try:
            with LoopbackCapture() as plain_wire:
                plain, _ = tls_call(server, pki, tmp_path, "off")
            server.wait_for_log(r"ended, caller-hangup", timeout=15)
            with LoopbackCapture() as secret_wire:
                secret, _ = tls_call(server, pki, tmp_path, "mandatory")
            server.wait_for_log(r"ended, caller-hangup", timeout=15, count=2)
            # G.722 keeps the line wideband, so the reply can be transcribed back
            spoken, heard = tls_call(server, pki, tmp_path, "mandatory", speech, hangup_after=13, codec="G722/16000/1")
            server.wait_for_log(r"ended, caller-hangup", timeout=15, count=3)
            metrics = urllib.request.urlopen(f"http://{LOOPBACK}:{server.metrics_port}/metrics", timeout=5).read()
        finally:
            assert server.stop() == 0, server.log()[-3000:]

    assert plain["answered"] and plain["media"] == "rtp", plain
    assert secret["answered"] and secret["media"] == "srtp", secret
    assert spoken["answered"] and (spoken["media"], spoken["codec"]) == ("srtp", "G722"), spoken
    # plain RTP: the caller's opening second of silence decodes as silence; SRTP: not one packet does
    assert silent_share(caller_stream(plain_wire)) > 0.5
    assert silent_share(caller_stream(secret_wire)) == 0
    # SIP: TLS records only, no request, response or SDP readable
    for wire in (plain_wire, secret_wire):
        signalling = wire.tcp_bytes(server.sip_port)
        assert b"\x16\x03" in signalling, "a TLS handshake"
        assert not re.search(rb"INVITE sip:|SIP/2\.0 \d{3}|m=audio|a=crypto|7000@", signalling)
        assert server.sip_port not in {p for p in wire.udp_ports()}

    # the call records and the metric say which call was encrypted
    records = {c["id"]: c for c in server.calls()}
    assert sorted((c["signalling"], c["media"]) for c in records.values()) == [
        ("tls", "rtp"), ("tls", "srtp"), ("tls", "srtp")]
    assert re.search(rb'victoria_call_encryption_total\{media="srtp",signalling="tls"\} 2\.0', metrics), metrics

    # and over SRTP she heard the question and the caller heard her reply
    request = ollama.requests[-1]  # earlier ones: replies prepared in mid-sentence pauses, discarded
    assert len(set(request["messages"][-1]["content"].split()) & {"book", "table", "two", "people", "tomorrow"}) >= 3
    reply_start = int((3 + len(piper_voice(QUESTION)) / RATE) * RATE)
    words = set(transcribe(heard[reply_start:]).split())
    assert len(words & {"table", "two", "people", "seven", "tomorrow", "evening", "book", "you"}) >= 3, words


def test_mandatory_srtp_refuses_plain_rtp_and_garbage_or_stalled_tls_clients_stop_nobody(tmp_path):
    pki = TestPki(tmp_path / "pki")
    server = tls_victoria(tmp_path, pki, "mandatory")
    try:
        refused, _ = tls_call(server, pki, tmp_path, "off")
        assert not refused["answered"] and refused["last_status"] == 488, refused
        server.wait_for_log(r'refused with 488: srtp = "mandatory" and the offer has plain RTP', timeout=5)

        garbage = socket.create_connection((LOOPBACK, server.sip_port), timeout=5)
        garbage.sendall(b"\x16\x03\x01\x02\x00" + bytes(range(256)) * 4)  # a ClientHello that is not one
        stalled = socket.create_connection((LOOPBACK, server.sip_port), timeout=5)
        stalled.sendall(b"\x16\x03\x01\x02\x00\x01")  # a handshake begun, never finished
        time.sleep(0.5)
        accepted, _ = tls_call(server, pki, tmp_path, "mandatory")
        assert accepted["answered"] and accepted["media"] == "srtp", accepted
        garbage.close()
        stalled.close()
        server.wait_for_log(r"ended, caller-hangup", timeout=15)
        assert server.process.poll() is None
    finally:
        assert server.stop() == 0, server.log()[-3000:]
    statuses = sorted(c["status"] for c in server.calls())
    assert statuses == ["ended", "rejected"], statuses
