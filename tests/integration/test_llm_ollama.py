"""The production Ollama adapter against a loopback server speaking Ollama's /api/chat protocol."""

import asyncio
import time

import pytest

from tests.support.ollama_double import OllamaDouble
from victoria_sip.adapters.llm_ollama import OllamaLLM
from victoria_sip.domain import Agent, Conversation
from victoria_sip.errors import ModelError

AGENT = Agent(name="front", system_prompt="You are a receptionist.", first_message="Hello.")


def history(*turns):
    conversation = Conversation()
    for role, text in turns:
        conversation.add_turn(role, text)
    return conversation.turns


async def collect(llm, turns):
    return [delta async for delta in llm.stream_reply(AGENT, turns)]


def test_a_reply_streams_token_by_token_with_the_prompt_and_history():
    with OllamaDouble(reply="We open at nine. See you!") as ollama:
        llm = OllamaLLM(ollama.host, "llama3.2:1b")
        turns = history(("assistant", "Hello."), ("caller", "When do you open?"))
        deltas = asyncio.run(collect(llm, turns))
    assert "".join(deltas) == "We open at nine. See you!"
    assert len(deltas) > 3, "streamed, not in one piece"
    [request] = ollama.requests
    assert request["model"] == "llama3.2:1b" and request["stream"] is True
    assert request["messages"] == [
        {"role": "system", "content": "You are a receptionist."},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "When do you open?"},
    ]


def test_a_missing_model_says_what_to_pull():
    with OllamaDouble(models=("other:7b",)) as ollama:
        with pytest.raises(ModelError, match=r"no model 'llama3.2:1b': run `ollama pull llama3.2:1b`"):
            asyncio.run(collect(OllamaLLM(ollama.host, "llama3.2:1b"), history(("caller", "hi"))))


def test_a_daemon_that_is_not_running_is_a_clear_error():
    with OllamaDouble() as ollama:
        host = ollama.host
    with pytest.raises(ModelError, match="cannot reach Ollama"):
        asyncio.run(collect(OllamaLLM(host, "llama3.2:1b"), history(("caller", "hi"))))


def test_a_slow_first_token_times_out():
    with OllamaDouble(reply="Too late.", first_token_delay=3.0) as ollama:
        llm = OllamaLLM(ollama.host, "llama3.2:1b", first_token_timeout=0.5)
        started = time.monotonic()
        with pytest.raises(ModelError, match="did not answer within the timeout"):
            asyncio.run(collect(llm, history(("caller", "hi"))))
        assert time.monotonic() - started < 2.0


@pytest.mark.parametrize("failure, message", [("error-line", "failed"), ("drop", "broke off"), ("stall", "timeout"),
                                              ("http-500", "failed")])
def test_failures_mid_stream_become_model_errors(failure, message):
    with OllamaDouble(reply="One two three four five six.") as ollama:
        ollama.failure = failure
        llm = OllamaLLM(ollama.host, "llama3.2:1b", first_token_timeout=2, token_timeout=1)
        received = []

        async def run():
            async for delta in llm.stream_reply(AGENT, history(("caller", "count"))):
                received.append(delta)

        with pytest.raises(ModelError, match=message):
            asyncio.run(run())
    if failure != "http-500":
        assert "".join(received) == "One two", "what came before the failure was delivered"
