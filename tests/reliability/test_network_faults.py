"""A call over a bad network: 5 % of the caller's RTP packets lost, up to 40 ms of jitter, 3 % reordered
(built into a pcap SIPp replays at its timestamps; no netem needed). The call completes, the caller's words are
still transcribed, and pjmedia's statistics (victoria_rtp_packets_lost_total / _late_total) say what happened."""

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from victoria_sip.audio.g711 import mulaw_encode

from tests.support.ollama_double import OllamaDouble
from tests.support.processes import LOOPBACK, Victoria, run_sipp
from tests.support.rtp_pcap import write_impaired_pcap

pytestmark = pytest.mark.integration

@pytest.fixture(scope="module")
def speech_ulaw(piper_voice, tmp_path_factory):
    """The caller's sentence in the embedded voice, 8 kHz μ-law: 5.5 s of silence (the greeting), then speech."""
    speech = piper_voice("Hello, I would like to book a table for two people tomorrow evening, please.", 8000)
    pcm = np.concatenate([np.zeros(8000 * 11 // 2, np.int16), speech, np.zeros(8000, np.int16)])
    path = tmp_path_factory.mktemp("network") / "caller.ulaw"
    path.write_bytes(mulaw_encode(pcm).tobytes())
    return path


def rtp_counters(server: Victoria) -> dict[str, float]:
    _, body = server.http_get("/metrics")
    return {s.name.removeprefix("victoria_rtp_packets_").removesuffix("_total"): s.value
            for f in text_string_to_metric_families(body) for s in f.samples
            if s.name.startswith("victoria_rtp_packets_") and s.name.endswith("_total")}


def call_over(tmp_path, speech_ulaw, name: str, **impairment) -> dict:
    pcap = tmp_path / f"{name}.pcap"
    sent = write_impaired_pcap(speech_ulaw, pcap, seed=7, **impairment)
    with OllamaDouble(reply="Certainly.") as ollama:
        server = Victoria(tmp_path / name, f'[llm]\nhost = "{ollama.host}"\n')
        server.start()
        server.wait_ready()
        try:
            result = run_sipp("uac_pcap_pcmu.xml", f"{LOOPBACK}:{server.sip_port}", "7000",
                              fill={"pcap": str(pcap), "pause_ms": "12000"}, workdir=tmp_path)
            server.wait_for_log(r"ended, caller-hangup", timeout=15)
            counters = rtp_counters(server)
        finally:
            assert server.stop() == 0
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    [call] = server.calls()
    turns = server.call_detail(call["id"])["turns"]
    heard = " ".join(t["text"] for t in turns if t["role"] == "caller")
    return {"pcap": sent, "rtp": counters, "transcript": heard, "end_reason": call["end_reason"]}


def test_a_call_over_a_lossy_jittery_reordering_network_still_gets_transcribed(tmp_path, speech_ulaw):
    clean = call_over(tmp_path, speech_ulaw, "clean")
    bad = call_over(tmp_path, speech_ulaw, "bad", loss=0.05, jitter_ms=40, reorder=0.03)
    print("\n| network | packets sent | dropped | swapped | received | lost (pjmedia) | late (pjmedia) | transcript |")
    for name, run in (("clean", clean), ("bad", bad)):
        print(f"| {name} | {run['pcap']['sent']} | {run['pcap']['lost']} | {run['pcap']['swapped']} | "
              f"{run['rtp'].get('received', 0):.0f} | {run['rtp'].get('lost', 0):.0f} | {run['rtp'].get('late', 0):.0f} "
              f"| {run['transcript']} |")
    assert clean["end_reason"] == bad["end_reason"] == "caller-hangup", "the impaired call completed"
    assert bad["pcap"]["lost"] > 10 and bad["pcap"]["swapped"] > 5, "the network really was bad"
    assert bad["rtp"]["lost"] >= 0.5 * bad["pcap"]["lost"], "pjmedia saw the loss"
    assert clean["rtp"]["lost"] == 0
    # PocketSphinx is a weak recogniser even on a clean line; what must hold is that the bad line still yields a
    # transcript of about the same length (the words themselves are printed above for the record)
    assert len(clean["transcript"].split()) >= 5, clean["transcript"]
    assert len(bad["transcript"].split()) >= 0.5 * len(clean["transcript"].split()), bad["transcript"]
