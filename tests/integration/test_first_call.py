"""The README's first call, made from another machine of the LAN: refused by default, answered once
``serve --allow-invites-from`` names the caller's network, as the quick start says.

The LAN is a network namespace the test creates (two private addresses on its own loopback), so the
caller's source address is not loopback and nothing leaves this machine.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reliability.test_floods import netns_unavailable
from tests.support.processes import ROOT, Victoria, free_port, run_caller
from tests.support.raw_sip import invite, send_request

pytestmark = pytest.mark.integration

VICTORIA_HOST = "10.77.0.1"  # Victoria's LAN address
SOFTPHONE = "10.77.0.2"      # a softphone on the admin's laptop
LAN = "10.77.0.0/24"


def test_a_softphone_elsewhere_on_the_lan_is_refused_until_its_network_is_allowed(tmp_path):
    if reason := netns_unavailable():
        pytest.skip(reason)
    result = subprocess.run(["unshare", "--net", sys.executable, "-m", "tests.integration.test_first_call",
                             str(tmp_path)], capture_output=True, text=True, timeout=150, cwd=ROOT)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert result.returncode == 0 and lines, result.stdout[-3000:] + result.stderr[-3000:]
    outcome = json.loads(lines[-1])
    assert outcome["default_status"] == 403, "default-deny: a LAN softphone is not loopback or a registrar"
    assert "serve --allow-invites-from" in outcome["default_log"], "the start-up line says how to widen it"
    assert outcome["allowed"]["answered"], outcome["allowed"]
    assert f"INVITEs from 127.0.0.0/8, ::1/128, {LAN}" in outcome["allowed_log"]


def _first_calls(workdir: Path) -> None:
    """Inside a fresh network namespace: the LAN's addresses, then Victoria on embedded defaults twice."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    for address in (VICTORIA_HOST, SOFTPHONE):
        subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", "lo"], check=True)
    port = free_port()
    outcome = {}

    server = Victoria(workdir / "default")  # no --config: the embedded defaults of the quick start
    server.start("--sip-listen", f"{VICTORIA_HOST}:{port}")
    server.wait_ready()
    try:
        outcome["default_status"] = send_request(invite(VICTORIA_HOST, port, user="7000", source=SOFTPHONE),
                                                 (VICTORIA_HOST, port), source=SOFTPHONE)
    finally:
        server.stop()
    outcome["default_log"] = _who_may_call(server)

    server = Victoria(workdir / "allowed")
    server.start("--sip-listen", f"{VICTORIA_HOST}:{port}", "--allow-invites-from", LAN)
    server.wait_ready()
    try:
        outcome["allowed"] = run_caller(f"sip:7000@{VICTORIA_HOST}:{port}", bind=f"{SOFTPHONE}:0", hangup_after=2)
        server.wait_for_log(r"ended, caller-hangup", timeout=15)
    finally:
        server.stop()
    outcome["allowed_log"] = _who_may_call(server)
    print(json.dumps(outcome), flush=True)


def _who_may_call(server: Victoria) -> str:
    return "".join(line for line in server.log().splitlines(keepends=True) if "who may call" in line)


if __name__ == "__main__":
    _first_calls(Path(sys.argv[1]))
