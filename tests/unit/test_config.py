from pathlib import Path

import pytest

from victoria_sip.config import load_settings, ollama_host_url

from victoria_sip.settings import DEFAULT_AGENT
from victoria_sip.errors import ConfigError

EXAMPLE = Path(__file__).parents[2] / "config" / "victoria.example.toml"

MINIMAL = """
[[agents]]
name = "front"
first_message = "Hello."
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "victoria.toml"
    path.write_text(text)
    return path


def error_for(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> ConfigError:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={} if environ is None else environ)
    assert str(path) in str(caught.value), "the error must name the file"
    return caught.value


EXAMPLE_ENVIRON = {"VICTORIA_ACCOUNT_RECEPTION_PASSWORD": "change-me"}


def test_the_example_config_is_valid_and_complete():
    settings = load_settings(EXAMPLE, environ=EXAMPLE_ENVIRON)
    assert settings.sip.accounts[0].agent == "reception"
    assert settings.agents["reception"].first_message.startswith("Hello")
    assert settings.routes == {"7000": "reception"}
    assert settings.sip.codecs == ("PCMU", "PCMA", "G722")


def test_no_file_means_embedded_defaults_that_answer_direct_calls():
    settings = load_settings(None, environ={})
    assert settings.sip.accounts == ()
    assert settings.agent_for("anything", None) == DEFAULT_AGENT.name
    assert (settings.sip.listen.host, settings.sip.listen.port) == ("0.0.0.0", 5060)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_broken_toml_is_reported(tmp_path):
    assert "not valid TOML" in str(error_for(tmp_path, "[sip\nlisten = 1"))


@pytest.mark.parametrize(
    "snippet, key, expected",
    [
        ('[sip]\nlisten = "nonsense"', "sip.listen", "HOST:PORT"),
        ('[sip]\nlisten = "0.0.0.0:70000"', "sip.listen", "HOST:PORT"),
        ('[sip]\nmax_concurrent_calls = "ten"', "sip.max_concurrent_calls", "integer from 1 to 4096"),
        ('[sip]\ncodecs = ["PCMU", "OPUS"]', "sip.codecs", "'OPUS'"),
        ('[sip]\nbusy_response = 404', "sip.busy_response", "486"),
        ('[sip]\ntransport = "sctp"', "sip.transport", "udp, tcp"),
        ('[sip]\nlisen = "0.0.0.0:5060"', "sip.lisen", "unknown key"),
        ('colour = "blue"', "colour", "unknown key"),
        ('[database]\nurl = 5', "database.url", "string"),
        ('default_agent = "ghost"', "default_agent", "no agent named 'ghost'"),
        ('[routes]\n"7000" = "ghost"', "routes.7000", "no agent named 'ghost'"),
        ('[stt]\nworkers = -1', "stt.workers", "integer from 0 to 256"),
        ('[admission]\nmax_stt_busy = 1.5', "admission.max_stt_busy", "from 0.01 to 1"),
        ('[admission]\nwindow = 10', "admission.window", "unknown key"),
        ('[admission]\nenabled = "yes"', "admission.enabled", "true or false"),
    ],
)
def test_bad_values_name_the_key_and_what_was_expected(tmp_path, snippet, key, expected):
    error = error_for(tmp_path, snippet + "\n" + MINIMAL if not snippet.startswith("[") else MINIMAL + snippet)
    assert error.key == key
    assert expected in error.problem


def test_agent_keys_are_checked(tmp_path):
    error = error_for(tmp_path, '[[agents]]\nname = "a"\nfirst_message = "hi"\n[agents.voice]\nspeed = 9')
    assert error.key == "agents[0].voice.speed"
    error = error_for(tmp_path, '[[agents]]\nname = "a"')
    assert error.key == "agents[0].first_message" and "required" in error.problem


ACCOUNT = """
[[sip.accounts]]
name = "desk"
registrar = "127.0.0.1:5070"
user = "7000"
agent = "front"
"""


def test_a_registering_account_needs_a_password_and_says_where_to_put_it(tmp_path):
    error = error_for(tmp_path, MINIMAL + ACCOUNT)
    assert error.key == "sip.accounts[0].password"
    assert "VICTORIA_ACCOUNT_DESK_PASSWORD" in error.problem


def test_passwords_come_from_the_environment(tmp_path):
    path = write(tmp_path, MINIMAL + ACCOUNT)
    settings = load_settings(path, environ={"VICTORIA_ACCOUNT_DESK_PASSWORD": "s3cret"})
    account = settings.sip.accounts[0]
    assert account.password == "s3cret"
    assert account.registrar == "sip:127.0.0.1:5070"
    assert account.aor == "sip:7000@127.0.0.1"
    assert "s3cret" not in repr(settings), "secrets never show up in reprs (and so in logs)"
    assert settings.agent_for("7000", "desk") == "front"


def test_an_account_must_name_a_known_agent(tmp_path):
    error = error_for(tmp_path, MINIMAL + ACCOUNT.replace('"front"', '"nobody"'), {"VICTORIA_ACCOUNT_DESK_PASSWORD": "x"})
    assert error.key == "sip.accounts[0].agent"


def test_several_extensions_each_with_its_own_agent(tmp_path):
    text = MINIMAL + '[[agents]]\nname = "support"\nfirst_message = "Support."\n' + ACCOUNT + ACCOUNT.replace(
        '"desk"', '"help"'
    ).replace('"7000"', '"7001"').replace('"front"', '"support"')
    settings = load_settings(write(tmp_path, text), environ={"VICTORIA_ACCOUNT_DESK_PASSWORD": "a", "VICTORIA_ACCOUNT_HELP_PASSWORD": "b"})
    assert [a.user for a in settings.sip.accounts] == ["7000", "7001"]
    assert settings.agent_for("7001", "help") == "support"
    assert settings.agent_for("7000", "desk") == "front"


def test_database_url_comes_from_the_environment(tmp_path):
    settings = load_settings(write(tmp_path, MINIMAL), environ={"VICTORIA_DATABASE_URL": "sqlite:////tmp/x.db"})
    assert settings.database_url == "sqlite:////tmp/x.db"


def test_conversation_settings_are_read_and_checked(tmp_path):
    text = MINIMAL + '[agents.turn_taking]\nhangover_ms = 700\nbarge_in = false\n[stt]\nprovider = "vosk"\nmodel = "models/x"\n[llm]\nhost = "http://10.0.0.5:11434"\n'
    settings = load_settings(write(tmp_path, text), environ={})
    agent = settings.agents["front"]
    assert agent.turn_taking.hangover_ms == 700 and agent.turn_taking.barge_in is False
    assert (settings.stt.provider, settings.stt.model) == ("vosk", "models/x")
    assert settings.llm.host == "http://10.0.0.5:11434"
    assert load_settings(write(tmp_path, MINIMAL), environ={"VICTORIA_LLM_HOST": "http://127.0.0.1:9"}).llm.host == "http://127.0.0.1:9"


@pytest.mark.parametrize(
    "snippet, key, expected",
    [
        ('[agents.turn_taking]\nbarge_in = "yes"', "agents[0].turn_taking.barge_in", "true or false"),
        ('[agents.turn_taking]\nstart_window = 10\nstart_frames = 12', "agents[0].turn_taking.start_frames", "from 1 to 10"),
        ('[agents.turn_taking]\nhangover_ms = 20', "agents[0].turn_taking.hangover_ms", "from 100 to 5000"),
        ('[stt]\nprovider = "whisper"', "stt.provider", "pocketsphinx, vosk, none"),
        ('[stt]\nprovider = "vosk"', "stt.model", "required"),
        ('[llm]\nhost = "localhost:11434"', "llm.host", "http://HOST:PORT"),
        ('[llm]\nmodle = "x"', "llm.modle", "unknown key"),
    ],
)
def test_bad_conversation_settings_name_the_key(tmp_path, snippet, key, expected):
    error = error_for(tmp_path, MINIMAL + snippet)
    assert error.key == key
    assert expected in error.problem


ONE_ACCOUNT = '[[sip.accounts]]\nname = "desk"\nregistrar = "pbx:5060"\nuser = "7000"\nagent = "victoria"\n'


def test_the_password_comes_from_the_environment_or_a_private_file(tmp_path):
    secret = tmp_path / "desk.secret"
    secret.write_text("s3cret-from-file\n")
    secret.chmod(0o600)
    path = tmp_path / "v.toml"
    path.write_text(ONE_ACCOUNT + f'password_file = "{secret}"\n')
    assert load_settings(path, environ={}).sip.accounts[0].password == "s3cret-from-file"
    env = {"VICTORIA_ACCOUNT_DESK_PASSWORD": "from-env"}
    assert load_settings(path, environ=env).sip.accounts[0].password == "from-env", "the environment wins"
    assert "s3cret" not in repr(load_settings(path, environ={})), "never printed with the settings"


def test_a_password_file_others_can_read_is_refused_with_the_fix(tmp_path):
    secret = tmp_path / "desk.secret"
    secret.write_text("s3cret\n")
    secret.chmod(0o644)
    error = error_for(tmp_path, ONE_ACCOUNT + f'password_file = "{secret}"\n')
    assert "sip.accounts[0].password_file" in str(error) and f"chmod 600 {secret}" in str(error)
    assert "s3cret" not in str(error)
    assert "cannot read" in str(error_for(tmp_path, ONE_ACCOUNT + f'password_file = "{tmp_path / "missing"}"\n'))


def test_a_password_written_in_a_config_others_can_read_is_refused_with_the_fix(tmp_path):
    path = tmp_path / "v.toml"
    path.write_text(ONE_ACCOUNT + 'password = "in-the-file"\n')
    path.chmod(0o640)
    environ = {"VICTORIA_ACCOUNT_DESK_PASSWORD": "from-env"}
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ=environ)
    error = caught.value
    assert error.key == "sip.accounts[0].password", "refused even when the environment would win: the file leaks it"
    assert f"chmod 600 {path}" in error.problem and "VICTORIA_ACCOUNT_DESK_PASSWORD" in error.problem
    assert "in-the-file" not in str(error)
    path.chmod(0o600)
    assert load_settings(path, environ={}).sip.accounts[0].password == "in-the-file"


def test_admission_limits_are_read():
    settings = load_settings(None, environ={})
    assert settings.admission.enabled and settings.stt.workers == 0  # one worker per core


def test_admission_limits_from_the_file(tmp_path):
    path = write(tmp_path, MINIMAL + "[stt]\nworkers = 3\n[admission]\nwindow_seconds = 5\nmax_stt_busy = 0.6\n")
    settings = load_settings(path, environ={})
    assert (settings.stt.workers, settings.admission.window_seconds, settings.admission.max_stt_busy) == (3, 5, 0.6)


@pytest.mark.parametrize("value, url", [
    ("10.0.0.5", "http://10.0.0.5:11434"),
    ("10.0.0.5:8080", "http://10.0.0.5:8080"),
    (":56789", "http://127.0.0.1:56789"),
    ("0.0.0.0", "http://127.0.0.1:11434"),
    ("http://llm.lan", "http://llm.lan:80"),
    ("https://llm.lan", "https://llm.lan:443"),
    ("https://llm.lan:8443/", "https://llm.lan:8443"),
    ("[fd00::5]:11434", "http://[fd00::5]:11434"),
])
def test_ollama_host_is_read_as_ollama_reads_it(value, url):
    assert ollama_host_url(value) == url


def test_ollama_host_applies_only_when_neither_the_file_nor_victoria_llm_host_names_the_host(tmp_path):
    ollama = {"OLLAMA_HOST": "10.0.0.7:11434"}
    assert load_settings(None, environ=ollama).llm.host == "http://10.0.0.7:11434"
    assert load_settings(write(tmp_path, MINIMAL), environ=ollama).llm.host == "http://10.0.0.7:11434"
    in_file = write(tmp_path, MINIMAL + '[llm]\nhost = "http://10.0.0.5:11434"\n')
    assert load_settings(in_file, environ=ollama).llm.host == "http://10.0.0.5:11434"
    ours = {**ollama, "VICTORIA_LLM_HOST": "http://10.0.0.9:11434"}
    assert load_settings(write(tmp_path, MINIMAL), environ=ours).llm.host == "http://10.0.0.9:11434"


@pytest.mark.parametrize("value", ["ftp://x", "a b", "host:99999", "host:port"])
def test_a_malformed_ollama_host_is_refused_naming_the_variable(value):
    with pytest.raises(ConfigError, match="OLLAMA_HOST"):
        load_settings(None, environ={"OLLAMA_HOST": value})


def test_adaptive_turn_taking_is_read_and_its_hangovers_follow_a_configured_hangover(tmp_path):
    text = MINIMAL + ('[agents.turn_taking]\npause_ms = 150\nfinished_hangover_ms = 250\nunfinished_hangover_ms = 1200\n'
                      'unfinished_words = ["Um", "and"]\nspeculate = false\n')
    rules = load_settings(write(tmp_path, text), environ={}).agents["front"].turn_taking
    assert (rules.pause_ms, rules.finished_hangover_ms, rules.hangover_ms, rules.unfinished_hangover_ms) == \
        (150, 250, 500, 1200)
    assert rules.unfinished_words == ("um", "and") and rules.speculate is False
    slow = load_settings(write(tmp_path, MINIMAL + "[agents.turn_taking]\nhangover_ms = 1500\n"), environ={})
    assert slow.agents["front"].turn_taking.unfinished_hangover_ms == 1500
    quick = load_settings(write(tmp_path, MINIMAL + "[agents.turn_taking]\nhangover_ms = 110\n"), environ={})
    rules = quick.agents["front"].turn_taking
    assert (rules.pause_ms, rules.finished_hangover_ms) == (110, 110)


def test_hangovers_out_of_order_are_refused_naming_the_key(tmp_path):
    text = MINIMAL + "[agents.turn_taking]\nfinished_hangover_ms = 800\n"
    with pytest.raises(ConfigError, match="finished_hangover_ms"):
        load_settings(write(tmp_path, text), environ={})


def test_llm_options_go_to_ollama_as_given(tmp_path):
    text = MINIMAL + '[llm]\noptions = { num_predict = 120, temperature = 0.6, stop = ["Caller:"] }\n'
    assert dict(load_settings(write(tmp_path, text)).llm.options) == {
        "num_predict": 120, "temperature": 0.6, "stop": ["Caller:"]}
    assert load_settings(write(tmp_path, MINIMAL)).llm.options == ()


@pytest.mark.parametrize("options, key", [
    ("{ num_predicts = 120 }", "llm.options.num_predicts"),
    ('{ num_predict = "lots" }', "llm.options.num_predict"),
    ("{ temperature = true }", "llm.options.temperature"),
    ("{ stop = [1] }", "llm.options.stop"),
])
def test_a_wrong_llm_option_is_refused_naming_it(tmp_path, options, key):
    assert key in str(error_for(tmp_path, MINIMAL + f"[llm]\noptions = {options}\n"))


def test_retention_defaults_are_numbers_when_the_file_leaves_them_out(tmp_path):
    # slotted dataclasses have no class-level defaults: reading one off the class gave a descriptor
    path = tmp_path / "victoria.toml"
    path.write_text("[recording]\nenabled = true\n\n[history]\n")
    settings = load_settings(path)
    assert settings.recording.retention_days == 30.0 and settings.history.retention_days == 0.0


TOOL = MINIMAL + """
[[agents.tools]]
name = "order_status"
description = "Where a customer's order is, by its number."
url = "http://127.0.0.1:8081/orders"
parameters = { type = "object", properties = { order = { type = "string", pattern = "^[0-9]{4,8}$" }, pin = { type = "string", secret = true } }, required = ["order"] }
"""


def test_an_agent_s_tools_are_read_with_their_schema_and_defaults(tmp_path):
    [tool] = load_settings(write(tmp_path, TOOL), environ={}).agents["front"].tools
    assert tool.name == "order_status" and tool.url == "http://127.0.0.1:8081/orders"
    assert tool.parameters["required"] == ["order"] and tool.secret_fields == {"pin"}
    assert tool.timeout_seconds == 3.0 and tool.filler == "One moment, let me check that."
    assert "secret" not in tool.model_schema()["properties"]["pin"], "Victoria's own mark stays with Victoria"


@pytest.mark.parametrize("change, key, problem", [
    (("parameters = { type", "# parameters = { type"), "agents[0].tools[0].parameters", "is required"),
    (('url = "http://127.0.0.1:8081/orders"', 'url = "ftp://127.0.0.1/orders"'), "agents[0].tools[0].url",
     "http:// or https://"),
    (('name = "order_status"', 'name = "order_status"\ncolour = "red"'), "agents[0].tools[0].colour",
     "unknown key"),
    (('name = "order_status"', 'name = "end_call"'), "agents[0].tools[0].name", "Victoria's own"),
    (("type = \"object\", properties", "type = \"string\", properties"), "agents[0].tools[0].parameters",
     "JSON Schema object"),
    (('pattern = "^[0-9]{4,8}$"', "minLength = -1"), "agents[0].tools[0].parameters", "not a valid JSON Schema"),
])
def test_a_tool_that_cannot_work_is_refused_at_start_up_naming_the_key(tmp_path, change, key, problem):
    error = error_for(tmp_path, TOOL.replace(*change))
    assert error.key == key and problem in error.problem, error


def test_tool_headers_take_secrets_from_the_environment_or_a_private_file(tmp_path):
    with_header = TOOL + 'headers = { Authorization = "${ORDERS_TOKEN}", Accept = "application/json" }\n'
    [tool] = load_settings(write(tmp_path, with_header), environ={"ORDERS_TOKEN": "Bearer s3cret"}).agents["front"].tools
    assert dict(tool.headers) == {"Authorization": "Bearer s3cret", "Accept": "application/json"}
    assert "s3cret" not in repr(tool)
    unset = error_for(tmp_path, with_header)
    assert unset.key == "agents[0].tools[0].headers.Authorization" and "ORDERS_TOKEN" in unset.problem

    written = TOOL + 'headers = { Authorization = "Bearer s3cret" }\n'
    path = write(tmp_path, written)
    path.chmod(0o644)
    refused = error_for(tmp_path, written)
    assert refused.key == "agents[0].tools[0].headers.Authorization" and "chmod 600" in refused.problem
    path = write(tmp_path, written)
    path.chmod(0o600)
    assert dict(load_settings(path, environ={}).agents["front"].tools[0].headers)["Authorization"] == "Bearer s3cret"
