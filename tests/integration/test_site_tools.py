"""An agent's site tools on a call: the real Ollama client against the Ollama-protocol double (which asks
for the tool in Ollama's own format, then answers with what the tool said), the real HTTP tool caller, and a
real HTTP service on 127.0.0.1 as the site's API. The call itself runs on the session's fakes for the media
(``tests/unit/test_call_session.py``), in real time."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from tests.support.ollama_double import OllamaDouble
from tests.unit.test_call_session import FakeSTT, run_session, silence, voiced
from victoria_sip.adapters.http_tools import HttpToolCaller
from victoria_sip.adapters.llm_ollama import OllamaLLM
from victoria_sip.adapters.metrics import PrometheusTelemetry
from victoria_sip.domain import Role, SiteTool

ORDER_SCHEMA = {"type": "object", "required": ["order"], "properties": {
    "order": {"type": "string", "pattern": "^[0-9]{4,8}$"}, "pin": {"type": "string", "secret": True}}}


class SiteService:
    """The site's order API: records what it was sent; answers as told (a body, a status, after a delay)."""

    def __init__(self, body: bytes = b'{"order": "4411", "status": "ships tomorrow"}', status: int = 200,
                 delay: float = 0.0) -> None:
        self.body, self.status, self.delay, self.received = body, status, delay, []
        self.abandoned = 0
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                service.received.append((json.loads(self.rfile.read(length)), dict(self.headers)))
                time.sleep(service.delay)
                try:
                    self.send_response(service.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(service.body)))
                    self.end_headers()
                    self.wfile.write(service.body)
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    service.abandoned += 1  # Victoria hung up on the request

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/orders"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def service():
    site = SiteService()
    yield site
    site.close()


def order_tool(url: str, **fields) -> SiteTool:
    return SiteTool("order_status", "Where a customer's order is, by its number.", url, ORDER_SCHEMA,
                    headers=(("Authorization", "Bearer site-token"),), **fields)


def asks_once(arguments: dict):
    """The model asks for the tool until it has an answer, then speaks from it (as a tool-calling model does)."""
    def tool_calls(messages: list[dict]) -> list[dict]:
        return [] if any(m["role"] == "tool" for m in messages) else [{"name": "order_status", "arguments": arguments}]

    def reply(messages: list[dict]) -> str:
        answers = [m["content"] for m in messages if m["role"] == "tool"]
        if not answers:
            return ""
        return "Your order ships tomorrow." if "ships tomorrow" in answers[-1] else "Sorry, I could not look that up."
    return tool_calls, reply


def call_with_tool(ollama: OllamaDouble, tool: SiteTool, seconds: float = 7.0):
    """One caller turn asking about an order; returns the stored turns and the metrics exposition."""
    telemetry = PrometheusTelemetry(["front"])
    llm = OllamaLLM(ollama.host, "llama3.2:1b", 3.0, 3.0)
    _, _, turns = run_session(np.concatenate([silence(2.0), voiced(1.0)]), llm, seconds=seconds,
                              stt=FakeSTT("where is my order 4411 my pin is 1234"), telemetry=telemetry,
                              tool_caller=HttpToolCaller(), tools=(tool,))
    return turns, telemetry.exposition().decode()


def said(turns) -> list[tuple[str, str]]:
    return [(t.role.value, t.content) for t in turns]


def test_the_model_looks_an_order_up_and_speaks_what_the_site_answered(service, caplog):
    tool_calls, reply = asks_once({"order": "4411", "pin": "9876"})
    with OllamaDouble(reply=reply) as ollama, caplog.at_level("DEBUG"):
        ollama.tool_calls = tool_calls
        turns, metrics = call_with_tool(ollama, order_tool(service.url))
    [(sent, headers)] = service.received
    assert sent == {"order": "4411", "pin": "9876"} and headers["Authorization"] == "Bearer site-token"
    assert not [t for t in turns if "9876" in t.content] and "9876" not in caplog.text, "the secret is sent only"
    assert said(turns)[2:] == [
        ("system", "[tool] order_status(order=4411, pin=•••)"),
        ("tool", 'order_status: {"order": "4411", "status": "ships tomorrow"}'),
        ("assistant", "Your order ships tomorrow."),
    ]
    [answer] = [t for t in turns if t.role is Role.TOOL]
    assert answer.latency.tool_ms > 0 and answer.latency.first_frame_out_ms is None
    asked_again = ollama.requests[-1]["messages"]
    assert asked_again[-1] == {"role": "tool", "content": 'order_status: {"order": "4411", "status": "ships tomorrow"}'}
    assert ollama.requests[0]["tools"][-1]["function"]["parameters"]["properties"]["pin"] == {"type": "string"}
    assert 'victoria_tool_calls_total{agent="front",outcome="ok",tool="order_status"} 1.0' in metrics


def test_arguments_the_schema_refuses_are_never_sent_and_the_model_is_told(service):
    tool_calls, reply = asks_once({"order": "44x"})
    with OllamaDouble(reply=reply) as ollama:
        ollama.tool_calls = tool_calls
        turns, metrics = call_with_tool(ollama, order_tool(service.url))
    assert service.received == []
    [refusal] = [t.content for t in turns if t.role is Role.TOOL]
    assert refusal.startswith("order_status: not called: the arguments do not fit the tool: order: '44x' does not")
    assert 'victoria_tool_calls_total{agent="front",outcome="invalid",tool="order_status"} 1.0' in metrics


def test_a_slow_service_gets_the_filler_said_while_the_caller_waits():
    slow = SiteService(delay=1.5)
    tool_calls, reply = asks_once({"order": "4411"})
    try:
        with OllamaDouble(reply=reply) as ollama:
            ollama.tool_calls = tool_calls
            turns, _ = call_with_tool(ollama, order_tool(slow.url, filler_after_ms=300), seconds=8)
    finally:
        slow.close()
    assert said(turns)[2:] == [
        ("system", "[tool] order_status(order=4411)"),
        ("assistant", "One moment, let me check that."),
        ("tool", 'order_status: {"order": "4411", "status": "ships tomorrow"}'),
        ("assistant", "Your order ships tomorrow."),
    ]


@pytest.mark.parametrize("failure, outcome", [("500", "http-5xx"), ("timeout", "timeout"), ("refused", "refused")])
def test_a_service_that_fails_is_told_to_the_model_spoken_and_counted(failure, outcome):
    broken = SiteService(status=500, body=b"database down") if failure == "500" else SiteService(delay=2.0)
    url = broken.url
    if failure == "refused":
        broken.close()  # nothing listens there any more
    tool_calls, reply = asks_once({"order": "4411"})
    try:
        with OllamaDouble(reply=reply) as ollama:
            ollama.tool_calls = tool_calls
            turns, metrics = call_with_tool(ollama, order_tool(url, timeout_seconds=0.5, filler=""))
    finally:
        if failure != "refused":
            broken.close()
    [answer] = [t.content for t in turns if t.role is Role.TOOL]
    assert answer.startswith(f"order_status: failed ({outcome})"), answer
    assert said(turns)[-1] == ("assistant", "Sorry, I could not look that up.")
    assert f'victoria_tool_calls_total{{agent="front",outcome="{outcome}",tool="order_status"}} 1.0' in metrics


@pytest.mark.parametrize("body, kind", [(b"\xff\xfe not text", "not-utf8"), (b"x" * 20000, "too-large")])
def test_an_answer_the_model_cannot_use_is_a_failure_of_its_own_kind(body, kind):
    import asyncio

    from victoria_sip.domain.ports import ToolFailed

    site = SiteService(body=body)
    try:
        async def ask():
            caller = HttpToolCaller()
            try:
                return await caller.call(order_tool(site.url), {"order": "4411"})
            finally:
                await caller.aclose()

        with pytest.raises(ToolFailed) as failed:
            asyncio.run(ask())
    finally:
        site.close()
    assert failed.value.kind == kind


def test_a_secret_argument_is_masked_where_it_is_kept_even_in_a_refusal():
    from victoria_sip.application.site_tools import check_arguments, shown

    tool = order_tool("http://127.0.0.1:9/orders")
    bad_pin = {"order": "4411", "pin": 1234}  # a number where the schema wants a string
    assert "1234" not in check_arguments(tool, bad_pin)
    assert check_arguments(tool, {"order": "4411", "pin": "1234"}) is None
    assert shown(tool, {"order": "4411", "pin": "1234"}) == "order_status(order=4411, pin=•••)"


def test_the_worked_example_in_the_docs_answers_through_victoria_s_tool_caller(tmp_path):
    """docs/agent-tools.md's config, read as Victoria reads it, against examples/site_service.py running."""
    import asyncio
    import re
    import subprocess
    import sys
    from pathlib import Path

    from tests.support.processes import free_port
    from victoria_sip.config import load_settings

    root = Path(__file__).parents[2]
    port = free_port(__import__("socket").SOCK_STREAM)
    snippet = re.search(r"```toml\n(.*?)```", (root / "docs" / "agent-tools.md").read_text(), re.S).group(1)
    config = tmp_path / "victoria.toml"
    config.write_text('[[agents]]\nname = "shop"\nfirst_message = "Hello."\n\n'
                      + snippet.replace("127.0.0.1:8081", f"127.0.0.1:{port}"))
    hours, orders = load_settings(config, environ={}).agents["shop"].tools
    service = subprocess.Popen([sys.executable, str(root / "examples" / "site_service.py"), str(port)])
    try:
        async def ask():
            caller = HttpToolCaller()
            try:
                for _ in range(50):  # the service starting
                    try:
                        return (await caller.call(hours, {"day": "saturday"}),
                                await caller.call(orders, {"order": "4411"}))
                    except Exception:
                        await asyncio.sleep(0.1)
                raise AssertionError("examples/site_service.py did not answer")
            finally:
                await caller.aclose()

        opening, order = asyncio.run(ask())
    finally:
        service.terminate()
        service.wait(10)
    assert json.loads(opening.text) == {"day": "saturday", "hours": "10:00-14:00"}
    assert json.loads(order.text)["status"].startswith("shipped")


def test_the_caller_talks_over_the_filler_and_the_request_is_abandoned():
    slow = SiteService(delay=3.0)
    asked = []

    def tool_calls(messages: list[dict]) -> list[dict]:
        asked.append(messages)
        return [{"name": "order_status", "arguments": {"order": "4411"}}] if len(asked) == 1 else []

    telemetry = PrometheusTelemetry(["front"])
    try:
        again = "What else can I do for you?"  # to the caller's second turn
        with OllamaDouble(reply=lambda messages: again if sum(m["role"] == "user" for m in messages) > 1 else "") \
                as ollama:
            ollama.tool_calls = tool_calls
            llm = OllamaLLM(ollama.host, "llama3.2:1b", 3.0, 3.0)
            # the question (2-3 s), then the caller speaks again over the filler (from about 3.8 s)
            audio = np.concatenate([silence(2.0), voiced(1.0), silence(1.3), voiced(1.2)])
            _, _, turns = run_session(audio, llm, seconds=8, stt=FakeSTT("where is my order 4411"),
                                      telemetry=telemetry, tool_caller=HttpToolCaller(),
                                      tools=(order_tool(slow.url, filler_after_ms=200),))
    finally:
        slow.close()
    fillers = [t for t in turns if t.content == "One moment, let me check that."]
    assert fillers and fillers[0].interrupted, said(turns)
    assert not [t for t in turns if t.role is Role.TOOL], "no answer was waited for"
    assert slow.abandoned == 1, "the request was closed, not left to run"
    assert 'outcome="ok"' not in telemetry.exposition().decode()
    assert said(turns)[-1] == ("assistant", "What else can I do for you?"), said(turns)


PHONE_CONFIG = """
[stt]
provider = "pocketsphinx"

[llm]
host = "{llm}"
model = "llama3.2:1b"

[[agents]]
name = "front"
first_message = "Hello, shop."
system_prompt = "You are the shop's front desk. Use order_status for orders."

[[agents.tools]]
name = "order_status"
description = "Where a customer's order is, by its number."
url = "{url}"
parameters = {{ type = "object", properties = {{ order = {{ type = "string" }}, pin = {{ type = "string", secret = true }} }}, required = ["order"] }}
"""


def test_a_caller_on_the_phone_asks_and_hears_what_the_site_s_service_answered(tmp_path, kamailio, piper_voice):
    """A pjsua2 caller (G.722) asks about an order; the reply, spoken from the service's answer, is transcribed
    back from what the caller heard; the request and the answer are stored with the call."""
    from tests.integration.test_conversation import call, silence, transcribe
    from tests.support.processes import registered_victoria

    site = SiteService(body=b'{"order": "4411", "status": "arrives on Thursday"}')

    def tool_calls(messages: list[dict]) -> list[dict]:
        return [] if any(m["role"] == "tool" for m in messages) else [
            {"name": "order_status", "arguments": {"order": "4411", "pin": "2468"}}]

    def reply(messages: list[dict]) -> str:
        return "Your order arrives on Thursday. Thank you." if any(m["role"] == "tool" for m in messages) else ""

    question = piper_voice("Hello, where is my order please?")
    try:
        with OllamaDouble(reply=reply) as ollama:
            ollama.tool_calls = tool_calls
            server = registered_victoria(tmp_path / "victoria", kamailio,
                                         PHONE_CONFIG.format(llm=ollama.host, url=site.url), timeout=90)
            try:
                _, heard = call(kamailio, tmp_path, np.concatenate([silence(3), question, silence(9)]),
                                hangup_after=13)
                server.wait_for_log(r"ended, caller-hangup", timeout=15)
            finally:
                assert server.stop() == 0
    finally:
        site.close()
    assert [sent for sent, _ in site.received] == [{"order": "4411", "pin": "2468"}]
    [summary] = server.calls()
    detail = server.call_detail(summary["id"])
    assert "2468" not in json.dumps(detail) and "2468" not in server.log(), "the secret was sent, and only sent"
    turns = [(t["role"], t["text"]) for t in detail["turns"]]
    assert ("system", "[tool] order_status(order=4411, pin=•••)") in turns
    assert ("tool", 'order_status: {"order": "4411", "status": "arrives on Thursday"}') in turns
    assert turns[-1] == ("assistant", "Your order arrives on Thursday. Thank you.")
    words = set(transcribe(heard[16000 * 5:]).split())  # after the greeting and the question
    assert len(words & {"order", "arrives", "thursday", "thank", "you"}) >= 3, words
    assert "tool order_status(order=4411, pin=•••): ok" in server.log()


def test_digits_typed_on_the_keypad_become_the_tool_s_argument(service):
    """"Type your order number, then hash": the digits reach the model as the caller's turn, and the model
    passes them on (as a tool-calling model does with what it was told)."""
    def tool_calls(messages: list[dict]) -> list[dict]:
        typed = [m["content"].removeprefix("[keypad] ") for m in messages if m["content"].startswith("[keypad] ")]
        if not typed or any(m["role"] == "tool" for m in messages):
            return []
        return [{"name": "order_status", "arguments": {"order": typed[-1]}}]

    _, reply = asks_once({})
    with OllamaDouble(reply=reply) as ollama:
        ollama.tool_calls = tool_calls
        llm = OllamaLLM(ollama.host, "llama3.2:1b", 3.0, 3.0)
        keys = [(2.0 + 0.2 * i, key) for i, key in enumerate("4411#")]
        _, _, turns = run_session(silence(6.0), llm, seconds=6, keys=keys, tool_caller=HttpToolCaller(),
                                  tools=(order_tool(service.url),))
    assert [sent for sent, _ in service.received] == [{"order": "4411"}]
    assert said(turns)[-1] == ("assistant", "Your order ships tomorrow.")


def test_a_failed_lookup_the_model_says_nothing_about_is_still_spoken():
    broken = SiteService(status=503, body=b"maintenance")
    tool_calls, _ = asks_once({"order": "4411"})
    try:
        with OllamaDouble(reply="") as ollama:  # a model that answers a failure with nothing at all
            ollama.tool_calls = tool_calls
            turns, _ = call_with_tool(ollama, order_tool(broken.url, filler=""))
    finally:
        broken.close()
    assert said(turns)[-2:] == [("tool", "order_status: failed (http-5xx): " + broken.url + " answered 503: "
                                 "maintenance. Tell the caller it could not be looked up."),
                                ("assistant", "Sorry, could you repeat that?")]


def test_two_failed_lookups_in_a_row_put_the_caller_through_to_the_fallback():
    from victoria_sip.domain import Destination

    broken = SiteService(status=500, body=b"down")

    def tool_calls(messages: list[dict]) -> list[dict]:  # after each of the caller's turns: look it up
        return [{"name": "order_status", "arguments": {"order": "4411"}}] if messages[-1]["role"] == "user" else []

    try:
        with OllamaDouble(reply=lambda m: "Sorry, I could not look that up." if m[-1]["role"] == "tool" else "") \
                as ollama:
            ollama.tool_calls = tool_calls
            llm = OllamaLLM(ollama.host, "llama3.2:1b", 3.0, 3.0)
            audio = np.concatenate([silence(2.0), voiced(1.0), silence(4.0), voiced(1.0)])
            _, leg, turns = run_session(audio, llm, seconds=13, tool_caller=HttpToolCaller(),
                                        tools=(order_tool(broken.url, filler=""),),
                                        destinations=(Destination("operator", "sip:100@pbx"),),
                                        fallback_destination="operator")
    finally:
        broken.close()
    assert len(broken.received) == 2
    assert leg.transferred_to == "sip:100@pbx", said(turns)
