"""RTP port range and NAT: the SDP Victoria answers with carries [sip] public_address and a port inside
[rtp_port, rtp_port + rtp_port_range), which is what the firewall rules open."""

import re

import pytest

from tests.support.processes import LOOPBACK, Victoria, free_port
from tests.support.raw_sip import exchange, invite

pytestmark = pytest.mark.integration


def test_the_answer_sdp_uses_the_public_address_and_the_configured_rtp_range(tmp_path):
    rtp_port = free_port()
    rtp_port -= rtp_port % 2
    server = Victoria(tmp_path / "v", f'[sip]\nrtp_port = {rtp_port}\nrtp_port_range = 20\n'
                                      f'public_address = "192.0.2.99"\n')
    server.start()
    server.wait_ready()
    try:
        answer = exchange(invite(LOOPBACK, server.sip_port, user="7000"), (LOOPBACK, server.sip_port))
    finally:
        assert server.stop() == 0
    assert answer is not None and answer.startswith(b"SIP/2.0 200"), answer
    text = answer.decode()
    assert re.search(r"^c=IN IP4 192\.0\.2\.99\r?$", text, re.M), text
    port = int(re.search(r"^m=audio (\d+) RTP/AVP", text, re.M).group(1))
    assert rtp_port <= port < rtp_port + 20, f"RTP port {port} outside {rtp_port}..{rtp_port + 19}"
    assert re.search(r"^Contact: <sip:[^@>]*@?192\.0\.2\.99:", text, re.M), "the Contact says the public address too"
