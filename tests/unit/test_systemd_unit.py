"""config/systemd/victoria-sip.service: drains before systemd gives up, restarts on failure, runs sandboxed,
and systemd itself (systemd-analyze verify) accepts it."""

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from victoria_sip.settings import SipSettings

UNIT = Path(__file__).parents[2] / "config" / "systemd" / "victoria-sip.service"


def service() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string(UNIT.read_text())
    return parser["Service"]


def test_stopping_waits_for_the_drain_and_failures_restart():
    unit = service()
    assert unit["KillSignal"] == "SIGTERM"
    assert int(unit["TimeoutStopSec"]) > SipSettings().drain_seconds + 10, "calls finish before the SIGKILL"
    assert unit["Restart"] == "on-failure"
    assert "-HUP" in unit["ExecReload"], "systemctl reload re-reads the agents"
    assert unit["ExecStart"].split()[1:3] == ["serve", "--config"]


def test_the_service_is_sandboxed():
    unit = service()
    assert unit["User"] != "root"
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
                       "PrivateTmp": "yes", "UMask": "0077"}.items():
        assert unit[key] == value, key
    assert unit["ReadWritePaths"] == "/var/lib/victoria-sip"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_accepts_it(tmp_path):
    executable = Path(sys.executable).with_name("victoria-sip")
    unit = tmp_path / "victoria-sip.service"
    unit.write_text(UNIT.read_text().replace("/opt/victoria-sip/.venv/bin/victoria-sip", str(executable)))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_local_ollama_gets_the_cpu_after_victoria():
    dropin = configparser.ConfigParser(strict=False, interpolation=None)
    dropin.optionxform = str
    dropin.read_string((UNIT.parent / "ollama-below-victoria.conf").read_text())
    ollama = dropin["Service"]
    assert int(service()["CPUWeight"]) > 10 * int(ollama["CPUWeight"]) and int(ollama["Nice"]) >= 10
