"""The command line as an admin meets it: bad configs, a busy port, check-config."""

import os
import socket
import subprocess
import sys

import pytest

from tests.support.processes import LOOPBACK, ROOT, Victoria, free_port

pytestmark = pytest.mark.integration


def victoria_sip(*args: str, timeout: float = 60, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "victoria_sip.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})})


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def test_serve_refuses_a_bad_config_before_opening_any_socket(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('[sip]\nmax_concurrent_calls = "lots"\n')
    port = free_port()
    result = victoria_sip("serve", "--config", str(config), "--sip-listen", f"{LOOPBACK}:{port}")
    assert result.returncode == 2
    assert f"{config}: sip.max_concurrent_calls: expected an integer from 1 to 4096, got 'lots'" in result.stderr
    assert "SIP listening" not in result.stderr
    assert port_is_free(port)


def test_serve_names_a_missing_config_file(tmp_path):
    result = victoria_sip("serve", "--config", str(tmp_path / "missing.toml"))
    assert result.returncode == 2 and "missing.toml: no such file" in result.stderr


def test_serve_refuses_a_bad_listen_flag():
    result = victoria_sip("serve", "--sip-listen", "localhost")
    assert result.returncode == 2 and "--sip-listen: expected HOST:PORT" in result.stderr


def test_serve_explains_a_port_already_in_use(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind((LOOPBACK, 0))
        port = squatter.getsockname()[1]
        result = victoria_sip("serve", "--sip-listen", f"{LOOPBACK}:{port}", "--db", f"sqlite:///{tmp_path}/v.db")
    assert result.returncode == 1
    assert f"cannot listen for SIP on udp {LOOPBACK}:{port}" in result.stderr
    assert "Address already in use" in result.stderr


def test_check_config_summarises_the_example():
    example = str(ROOT / "config" / "victoria.example.toml")
    result = victoria_sip("check-config", example, env={"VICTORIA_ACCOUNT_RECEPTION_PASSWORD": "change-me"})
    assert result.returncode == 0, result.stderr
    assert "account reception: sip:7000@pbx.example.org" in result.stdout
    assert "agent reception: voice piper/en_US-joe-medium" in result.stdout
    without = victoria_sip("check-config", example, env={"VICTORIA_ACCOUNT_RECEPTION_PASSWORD": ""})
    assert without.returncode != 0 and "set VICTORIA_ACCOUNT_RECEPTION_PASSWORD" in without.stderr


def test_calls_show_says_when_there_is_no_such_call(tmp_path):
    result = victoria_sip("calls", "show", "abc123", "--db", f"sqlite:///{tmp_path}/empty.db")
    assert result.returncode == 1 and "no call with id 'abc123'" in result.stderr
    listed = victoria_sip("calls", "list", "--db", f"sqlite:///{tmp_path}/empty.db")
    assert listed.returncode == 0 and "no calls yet" in listed.stdout


def test_sigint_stops_an_idle_server_cleanly(tmp_path):
    server = Victoria(tmp_path / "v")
    server.start()
    server.wait_ready()
    import signal

    assert server.stop(signal.SIGINT) == 0
    assert "SIP stopped" in server.log()


def test_a_missing_vosk_model_stops_serve_at_start_up_naming_the_path(tmp_path):
    config = tmp_path / "v.toml"
    config.write_text(f'[stt]\nprovider = "vosk"\nmodel = "{tmp_path}/no-model"\n')
    port = free_port()
    result = victoria_sip("serve", "--config", str(config), "--sip-listen", f"{LOOPBACK}:{port}",
                          "--db", f"sqlite:///{tmp_path}/v.db")
    assert result.returncode == 1
    assert f"Vosk model directory {tmp_path}/no-model does not exist" in result.stderr
    assert "SIP listening" not in result.stderr and port_is_free(port)


def test_a_broken_vosk_model_is_refused_at_start_up(tmp_path):
    model = tmp_path / "broken"
    (model / "am").mkdir(parents=True)
    (model / "am" / "final.mdl").write_bytes(b"not a kaldi model")
    (model / "graph").mkdir()
    (model / "graph" / "HCLr.fst").write_bytes(b"junk")
    config = tmp_path / "v.toml"
    config.write_text(f'[stt]\nprovider = "vosk"\nmodel = "{model}"\n')
    result = victoria_sip("serve", "--config", str(config), "--sip-listen", f"{LOOPBACK}:{free_port()}",
                          "--db", f"sqlite:///{tmp_path}/v.db")
    assert result.returncode == 1
    assert f"Vosk could not load the model in {model}" in result.stderr


def test_without_the_recorded_apology_victoria_synthesises_it_at_start_up(tmp_path):
    server = Victoria(tmp_path / "v", '[stt]\nprovider = "none"\n', env={"VICTORIA_MEDIA_DIR": str(tmp_path / "nowhere")})
    server.start()
    try:
        log = server.wait_for_log(r"Victoria is ready", timeout=60)
    finally:
        assert server.stop() == 0
    assert "prompt 'apology' is missing or unreadable" in log
    assert "synthesising the apology with the embedded voice instead" in log


def test_json_logs_are_one_object_per_line_and_call_lines_carry_the_call_id(tmp_path, speech_wav):
    import json

    from tests.support.processes import run_caller

    server = Victoria(tmp_path / "v", '[stt]\nprovider = "none"\n')
    server.start("--log-format", "json")
    try:
        server.wait_for_log(r'"msg": "Victoria is ready', timeout=60)
        report = run_caller(f"sip:7000@{LOOPBACK}:{server.sip_port}", play=speech_wav, hangup_after=3)
        server.wait_for_log(r"ended, caller-hangup", timeout=10)
    finally:
        assert server.stop() == 0
    assert report["answered"]
    lines = [json.loads(line) for line in server.log().splitlines() if line.strip()]  # every line is JSON
    assert {"ts", "level", "logger", "msg"} <= set(lines[0])
    [call] = server.calls()
    call_lines = [line for line in lines if call["id"] in line["msg"] or line.get("call_id") == call["id"]]
    [answered] = [line for line in call_lines if "answered by agent" in line["msg"]]
    assert answered["call_id"] == call["id"], "lines logged while handling a call carry its id as a field"


def test_calls_export_writes_jsonl_and_csv_and_list_filters(tmp_path):
    import csv
    import json

    from victoria_sip.adapters.repository import SqlCallRepository, open_database
    from victoria_sip.domain import Call, CallId, EndReason, PhoneNumber, Role, TurnLatency

    url = f"sqlite:///{tmp_path / 'calls.db'}"
    repository = SqlCallRepository(open_database(url))
    answered = Call(id=CallId.new(), agent="front", caller=PhoneNumber("+4930123"), callee="7000")
    answered.start()
    repository.save_call(answered)
    for role, text, latency in [(Role.ASSISTANT, "Hello, front desk.", None), (Role.CALLER, "A table, please.", None),
                                (Role.ASSISTANT, "For how many, with a comma?", TurnLatency(stt_final_ms=640.0))]:
        repository.add_turn(answered.id, answered.conversation.add_turn(role, text, latency=latency))
    answered.end(EndReason.CALLER_HANGUP)
    repository.save_call(answered)
    busy = Call(id=CallId.new(), agent="sales", caller=PhoneNumber("+4930999"), callee="7001")
    busy.reject(EndReason.BUSY)
    repository.save_call(busy)
    repository.close()

    jsonl = victoria_sip("calls", "export", "--db", url, "--format", "jsonl")
    assert jsonl.returncode == 0 and "exported 2 call(s)" in jsonl.stderr
    lines = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert [c["id"] for c in lines] == [answered.id.value, busy.id.value]
    assert [t["text"] for t in lines[0]["turns"]] == ["Hello, front desk.", "A table, please.", "For how many, with a comma?"]

    out = tmp_path / "turns.csv"
    result = victoria_sip("calls", "export", "--db", url, "--format", "csv", "-o", str(out), "--agent", "front")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [(r["call_id"], r["turn"], r["role"], r["text"]) for r in rows] == [
        (answered.id.value, "0", "assistant", "Hello, front desk."),
        (answered.id.value, "1", "caller", "A table, please."),
        (answered.id.value, "2", "assistant", "For how many, with a comma?"),
    ]
    assert rows[2]["stt_final_ms"] == "640.0"

    listed = victoria_sip("calls", "list", "--db", url, "--status", "rejected", "--since", "1d", "--json")
    assert [c["id"] for c in json.loads(listed.stdout)] == [busy.id.value]
    bad = victoria_sip("calls", "list", "--db", url, "--since", "yesterday")
    assert bad.returncode == 2 and "expected 30m, 2h, 7d or an ISO date" in bad.stderr


def test_serve_refuses_more_calls_than_pjsip_has_slots_for(tmp_path):
    from victoria_sip.adapters.sip.pjsip_build import pjsip_build

    slots = pjsip_build().call_slots
    config = tmp_path / "big.toml"
    config.write_text(f"[sip]\nmax_concurrent_calls = {slots}\n")  # one slot must stay free to answer busy
    port = free_port()
    result = victoria_sip("serve", "--config", str(config), "--sip-listen", f"{LOOPBACK}:{port}",
                          "--db", f"sqlite:///{tmp_path}/v.db", "--metrics-listen", "off")
    assert result.returncode == 1, result.stderr
    assert f"max_concurrent_calls = {slots} is more than this PJSIP can take" in result.stderr
    assert f"lower [sip] max_concurrent_calls to {slots - 1}" in result.stderr
    assert "SIP listening" not in result.stderr and port_is_free(port)


def test_calls_delete_erases_by_id_prefix_or_caller_and_refuses_calls_in_progress(tmp_path):
    import json
    from datetime import datetime, timedelta, timezone

    from victoria_sip.adapters.repository import SqlCallRepository, open_database
    from victoria_sip.domain import Call, CallId, EndReason, PhoneNumber, Role

    url = f"sqlite:///{tmp_path / 'calls.db'}"
    repository = SqlCallRepository(open_database(url))

    def stored(caller: str, ended: bool = True, days_ago: float = 0) -> Call:
        call = Call(id=CallId.new(), agent="front", caller=PhoneNumber(caller), callee="7000",
                    created_at=datetime.now(timezone.utc) - timedelta(days=days_ago))
        call.start(at=call.created_at)
        recording = tmp_path / f"{call.id.value}.wav"
        recording.write_bytes(b"RIFF")
        call.recording = str(recording)
        repository.save_call(call)
        repository.add_turn(call.id, call.conversation.add_turn(Role.CALLER, "my account is 4411"))
        if ended:
            call.end(EndReason.CALLER_HANGUP, at=call.created_at + timedelta(minutes=1))
            repository.save_call(call)
        return call

    by_id, first, second, talking, kept = (stored("+491"), stored("+492"), stored("+492"), stored("+493", ended=False),
                                           stored("+494"))
    repository.close()

    erased = victoria_sip("calls", "delete", by_id.id.value[:10], "--db", url)
    assert erased.returncode == 0 and "erased 1 call(s) and 1 turn(s), 1 recording(s)" in erased.stdout, erased.stderr
    assert not (tmp_path / f"{by_id.id.value}.wav").exists()
    assert victoria_sip("calls", "delete", "--caller", "+492", "--db", url).stdout.startswith("erased 2 call(s)")
    refused = victoria_sip("calls", "delete", talking.id.value, kept.id.value, "--db", url)
    assert refused.returncode == 1 and "in progress" in refused.stderr and "nothing erased" in refused.stderr
    unknown = victoria_sip("calls", "delete", "f" * 32, "--db", url)
    assert unknown.returncode == 1 and "no call with id" in unknown.stderr
    assert victoria_sip("calls", "delete", "--db", url).returncode == 2  # neither ids nor --caller
    left = json.loads(victoria_sip("calls", "list", "--db", url, "--json").stdout)
    assert sorted(c["id"] for c in left) == sorted([talking.id.value, kept.id.value])


def test_serve_erases_calls_older_than_the_history_retention_at_start_up(tmp_path):
    from datetime import datetime, timedelta, timezone

    from victoria_sip.adapters.repository import SqlCallRepository, open_database
    from victoria_sip.domain import Call, CallId, EndReason, PhoneNumber

    url = f"sqlite:///{tmp_path / 'calls.db'}"
    repository = SqlCallRepository(open_database(url))
    ages = {}
    for days in (45, 10):
        call = Call(id=CallId.new(), agent="front", caller=PhoneNumber("+491"), callee="7000",
                    created_at=datetime.now(timezone.utc) - timedelta(days=days))
        call.start(at=call.created_at)
        call.end(EndReason.CALLER_HANGUP, at=call.created_at + timedelta(minutes=2))
        repository.save_call(call)
        ages[days] = call.id
    repository.close()

    server = Victoria(tmp_path / "v", '[stt]\nprovider = "none"\n\n[history]\nretention_days = 30\n', db_url=url)
    server.start()
    try:
        server.wait_for_log(r"erased 1 call\(s\) and 0 turn\(s\) older than 30 days", timeout=90)
    finally:
        assert server.stop() == 0
    assert "calls are kept 30 days" in server.log()
    assert [c["id"] for c in server.calls()] == [ages[10].value]
