"""``victoria-sip doctor`` and ``serve --offline`` against real parts: each broken part gets its own finding."""

import re
import shutil
import socket
import subprocess
import sys

import pytest

from tests.support.ollama_double import OllamaDouble
from tests.support.processes import LOOPBACK, ROOT, desk_account, free_port
from victoria_sip.airgap import offenders
from victoria_sip.config import load_settings

pytestmark = pytest.mark.integration

CONFIG = """
[sip]
listen = "{listen}"

[stt]
provider = "{stt}"
{stt_model}

[llm]
host = "{llm}"
model = "llama3.2:1b"

[metrics]
listen = "off"

[database]
url = "{db}"

[[agents]]
name = "front"
first_message = "Hello."

[agents.voice]
provider = "piper"
voice = "{voice}"
"""


def write_config(tmp_path, *, registrar, llm, listen=None, stt="pocketsphinx", stt_model="", db=None,
                 voice="en_US-joe-medium", extra=""):
    path = tmp_path / "victoria.toml"
    path.write_text(CONFIG.format(listen=listen or f"{LOOPBACK}:{free_port()}", stt=stt,
                                  stt_model=f'model = "{stt_model}"' if stt_model else "", llm=llm,
                                  db=db or f"sqlite:///{tmp_path / 'calls.db'}", voice=voice)
                    + desk_account(registrar) + extra)
    return path


def run(*args: str, password: str = "reception-secret", timeout: float = 120) -> subprocess.CompletedProcess:
    env = {"VICTORIA_ACCOUNT_DESK_PASSWORD": password, "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"}
    return subprocess.run([sys.executable, "-m", "victoria_sip.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)


def finding(output: str, part: str) -> str:
    """The finding line for ``part`` and its fix line, if any."""
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if line[6:].startswith(part + " "):
            fix = lines[i + 1] if i + 1 < len(lines) and lines[i + 1].strip().startswith("fix:") else ""
            return line + "\n" + fix
    raise AssertionError(f"no finding for {part!r} in:\n{output}")


def test_doctor_passes_when_every_part_is_in_order(tmp_path, kamailio):
    with OllamaDouble() as ollama:
        config = write_config(tmp_path, registrar=kamailio.registrar, llm=ollama.host)
        result = run("doctor", "--config", str(config), "--offline")
    assert result.returncode == 0, result.stdout + result.stderr
    for part in ("config", "pjsip", "sip port", "account desk", "stt", "voice front", "llm", "database", "offline"):
        assert finding(result.stdout, part).startswith("ok  "), part
    assert re.search(r"PJSIP 2\.\d+ \(built by setup\): \d+ call slots, epoll I/O queue", finding(result.stdout, "pjsip"))
    assert "accepted sip:7000@127.0.0.1 (then unregistered)" in result.stdout
    kamcmd = shutil.which("kamcmd") or "/usr/sbin/kamcmd"
    bindings = subprocess.run([kamcmd, "-s", f"unix:{kamailio.workdir}/ctl", "ul.dump"], capture_output=True,
                              text=True, timeout=10, check=True).stdout
    assert "7000" not in bindings, "doctor removed the binding it made"
    assert "everything Victoria needs is in order" in result.stdout


def test_doctor_names_each_broken_part_with_its_fix(tmp_path, kamailio):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter, OllamaDouble(models=("other:7b",)) as ollama:
        squatter.bind((LOOPBACK, 0))
        blocker = tmp_path / "a-file"
        blocker.write_text("not a directory")
        config = write_config(tmp_path, registrar=kamailio.registrar, llm=ollama.host,
                              listen=f"{LOOPBACK}:{squatter.getsockname()[1]}", stt="vosk",
                              stt_model=str(tmp_path / "no-such-model"), db=f"sqlite:///{blocker}/calls.db",
                              voice=str(tmp_path / "missing-voice.onnx"))
        result = run("doctor", "--config", str(config), password="wrong-secret")
    out = result.stdout
    assert result.returncode == 1, out
    assert "Address already in use" in finding(out, "sip port") and "--sip-listen" in finding(out, "sip port")
    account = finding(out, "account desk")
    assert "answered 401" in account and "VICTORIA_ACCOUNT_DESK_PASSWORD" in account
    assert "no-such-model" in finding(out, "stt") and "models pull" in finding(out, "stt")
    assert "missing-voice.onnx" in finding(out, "voice front")
    assert "has no model 'llama3.2:1b'" in finding(out, "llm") and "pull" in finding(out, "llm")
    assert "cannot open the call database" in finding(out, "database")
    assert out.rstrip().endswith("6 problem(s)")


def test_doctor_says_when_the_registrar_and_ollama_are_not_there(tmp_path):
    config = write_config(tmp_path, registrar=f"{LOOPBACK}:{free_port()}", llm=f"http://{LOOPBACK}:{free_port(socket.SOCK_STREAM)}",
                          stt="none")
    result = run("doctor", "--config", str(config))
    assert result.returncode == 1
    assert "no answer from" in finding(result.stdout, "account desk") or "refused" in finding(result.stdout, "account desk")
    assert "is the PBX running" in finding(result.stdout, "account desk")
    assert "cannot reach Ollama" in finding(result.stdout, "llm")


def test_doctor_reports_a_broken_config_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[sip]\nlisten = 5060\n")
    result = run("doctor", "--config", str(bad))
    assert result.returncode == 1 and "sip.listen" in finding(result.stdout, "config")


def test_serve_offline_refuses_public_endpoints_and_hub_models_naming_each(tmp_path):
    coqui_voice = '\n[[agents]]\nname = "fancy"\nfirst_message = "Hi."\n[agents.voice]\nprovider = "coqui"\n' \
                  'voice = "tts_models/en/ljspeech/vits"\n'
    config = write_config(tmp_path, registrar=f"{LOOPBACK}:{free_port()}", llm="http://203.0.113.7:11434",
                          extra=coqui_voice)
    result = run("serve", "--config", str(config), "--offline", timeout=60)
    assert result.returncode == 2
    assert "[llm] host 203.0.113.7 is outside the allowed networks" in result.stderr
    assert "agent 'fancy': Coqui voice 'tts_models/en/ljspeech/vits' is not on local disk" in result.stderr
    assert "registrar" not in result.stderr, "loopback is allowed"

    config.write_text(config.read_text().replace(coqui_voice, "") + '\n[offline]\nhosts = ["203.0.113.7"]\n')
    settings = load_settings(config, {"VICTORIA_ACCOUNT_DESK_PASSWORD": "x"})
    assert offenders(settings, settings.offline) == [], "an allowed host passes"


TOOLS = """
[[agents.tools]]
name = "opening_hours"
description = "Opening hours."
url = "{up}"
parameters = {{ type = "object", properties = {{}} }}

[[agents.tools]]
name = "order_status"
description = "Where an order is."
url = "{down}"
parameters = {{ type = "object", properties = {{ order = {{ type = "string" }} }} }}
"""


def test_doctor_says_whether_each_agent_tool_s_service_answers_and_offline_names_a_public_one(tmp_path):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    site = ThreadingHTTPServer((LOOPBACK, 0), BaseHTTPRequestHandler)  # answers HEAD with 501: it is there
    threading.Thread(target=site.serve_forever, daemon=True).start()
    up = f"http://{LOOPBACK}:{site.server_address[1]}/hours"
    down = f"http://{LOOPBACK}:{free_port(socket.SOCK_STREAM)}/orders"
    try:
        with OllamaDouble() as ollama:
            config = write_config(tmp_path, registrar=f"{LOOPBACK}:{free_port()}", llm=ollama.host, stt="none",
                                  extra=TOOLS.format(up=up, down=down))
            out = run("doctor", "--config", str(config)).stdout
    finally:
        site.shutdown()
        site.server_close()
    assert f"{up} answers (HTTP 501 to HEAD)" in finding(out, "tool front/opening_hours")
    broken = finding(out, "tool front/order_status")
    assert "does not answer" in broken and f"start the service at {down}" in broken

    config.write_text(config.read_text().replace(down, "http://203.0.113.9/orders"))
    settings = load_settings(config, {"VICTORIA_ACCOUNT_DESK_PASSWORD": "x"})
    assert offenders(settings, settings.offline) == [
        "agent 'front' tool 'order_status' 203.0.113.9 is outside the allowed networks ([offline] networks)"]
