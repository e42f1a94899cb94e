"""Who may call: INVITEs from outside ``[sip] allow_invites_from`` get 403 and a counter, never an answered call."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.processes import LOOPBACK, Victoria, run_caller
from tests.support.raw_sip import invite, send_request

pytestmark = pytest.mark.integration

OUTSIDER = "127.0.0.2"  # another loopback address: a different source, still on this machine


def refused_count(server: Victoria) -> float:
    status, body = server.http_get("/metrics")
    assert status == 200
    samples = [s for family in text_string_to_metric_families(body) for s in family.samples
               if s.name == "victoria_invites_refused_total"]
    return sum(s.value for s in samples if s.labels == {"reason": "source"})


def test_an_invite_from_outside_the_allow_list_gets_403_and_is_counted(tmp_path):
    server = Victoria(tmp_path / "v", '[sip]\nallow_invites_from = ["127.0.0.1"]\n')
    server.start()
    server.wait_ready()
    try:
        target = (LOOPBACK, server.sip_port)
        codes = [send_request(invite(LOOPBACK, server.sip_port, user="7000", source=OUTSIDER), target,
                              source=OUTSIDER) for _ in range(3)]
        assert codes == [403, 403, 403]
        assert refused_count(server) == 3
        report = run_caller(f"sip:7000@{LOOPBACK}:{server.sip_port}", hangup_after=2)  # from 127.0.0.1
        assert report["answered"], "a caller on the list still gets through"
        server.wait_for_log(r"ended, caller-hangup", timeout=10)
    finally:
        assert server.stop() == 0
    [call] = server.calls()
    assert "tester" not in call["caller"], "refused INVITEs leave no call record"
    log = server.log()
    assert log.count("refused with 403") == 1, "a scan is logged once per interval, not once per INVITE"
    assert f"from {OUTSIDER}:" in log


def test_a_bad_allow_list_entry_stops_serve_with_the_key(tmp_path):
    server = Victoria(tmp_path / "v", '[sip]\nallow_invites_from = ["10.0.0.0/8", "not a host!"]\n')
    result = server.cli("check-config", str(server.config_path))
    assert result.returncode != 0
    assert "sip.allow_invites_from" in result.stderr + result.stdout and "'not a host!'" in result.stderr + result.stdout
