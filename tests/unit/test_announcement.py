"""The line an attended transfer's target hears: the model's one-sentence summary, or the caller's last words."""

import asyncio
from collections.abc import AsyncIterator

import pytest

from victoria_sip.application.announcement import BRIEFING_PROMPT, announcement, summarise
from victoria_sip.config import load_settings
from victoria_sip.domain import Agent, Conversation, Destination, Role
from victoria_sip.errors import ConfigError, ModelError

AGENT = Agent(name="front", system_prompt="You are Victoria.", first_message="Hi.")


class ScriptedModel:
    """A LanguageModel that streams fixed text (or fails, or stalls) and remembers what it was asked."""

    def __init__(self, text: str = "", fail: bool = False, stall: float = 0.0) -> None:
        self.text, self.fail, self.stall = text, fail, stall
        self.asked: list[tuple[str, list]] = []

    async def stream_reply(self, agent, history, tools=()) -> AsyncIterator[str]:
        self.asked.append((agent.system_prompt, list(history)))
        await asyncio.sleep(self.stall)
        if self.fail:
            raise ModelError("llama runner terminated")
        for word in self.text.split(" "):
            yield word + " "


def conversation() -> Conversation:
    talk = Conversation()
    talk.add_turn(Role.ASSISTANT, "Hello, how can I help?")
    talk.add_turn(Role.CALLER, "My order 1234 has not arrived.")
    talk.add_turn(Role.SYSTEM, "[tool] transfer_call(target=operator): accepted")
    return talk


def test_the_model_briefs_the_target_in_one_sentence_from_the_transcript():
    model = ScriptedModel("The caller's order 1234 has not arrived. Also, more words the target need not hear.")
    summary = asyncio.run(summarise(model, AGENT, conversation().turns, timeout=2.0))
    assert summary == "The caller's order 1234 has not arrived."
    [(prompt, [request])] = model.asked
    assert prompt == BRIEFING_PROMPT, "the briefing prompt replaces the agent's persona"
    assert request.role is Role.CALLER and "caller: My order 1234 has not arrived." in request.content
    assert "[tool]" not in request.content, "Victoria's own notes are not part of the transcript"
    assert announcement(AGENT, summary) == "Hello, I have a caller for you. The caller's order 1234 has not arrived."


@pytest.mark.parametrize("model", [ScriptedModel(fail=True), ScriptedModel("Too late.", stall=1.0)])
def test_a_failing_or_slow_model_gives_way_to_the_callers_last_words(model):
    started = asyncio.run(asyncio.wait_for(summarise(model, AGENT, conversation().turns, timeout=0.3), 2.0))
    assert started == 'The caller said: "My order 1234 has not arrived."'


def test_a_caller_who_has_said_nothing_is_announced_without_a_summary():
    talk = Conversation()
    talk.add_turn(Role.ASSISTANT, "Hello.")
    model = ScriptedModel("Should not be asked.")
    assert asyncio.run(summarise(model, AGENT, talk.turns, timeout=1.0)) == ""
    assert model.asked == []
    assert announcement(AGENT, "") == "Hello, I have a caller for you."


def test_destinations_are_a_uri_or_a_table_with_attended_and_dtmf(tmp_path):
    config = tmp_path / "v.toml"
    config.write_text('[[agents]]\nname = "front"\nfirst_message = "Hi."\n[agents.destinations]\n'
                      'operator = "sip:100@pbx"\n'
                      'billing = { uri = "sip:ivr@pbx", attended = true, dtmf = "2#" }\n')
    agent = load_settings(config).agents["front"]
    assert agent.destination("operator") == Destination("operator", "sip:100@pbx")
    assert agent.destination("billing") == Destination("billing", "sip:ivr@pbx", attended=True, dtmf="2#")
    config.write_text('[[agents]]\nname = "front"\nfirst_message = "Hi."\n[agents.destinations]\n'
                      'billing = { uri = "sip:ivr@pbx", dtmf = "2" }\n')
    with pytest.raises(ConfigError, match=r"agents\[0\]\.destinations\.billing.*dtmf needs attended = true"):
        load_settings(config)
    config.write_text('[[agents]]\nname = "front"\nfirst_message = "Hi."\n[agents.destinations]\n'
                      'billing = { uri = "sip:ivr@pbx", attended = true, dtmf = "2x" }\n')
    with pytest.raises(ConfigError, match="only keypad keys"):
        load_settings(config)
    config.write_text('[[agents]]\nname = "front"\nfirst_message = "Hi."\n[agents.destinations]\n'
                      'billing = { url = "sip:ivr@pbx" }\n')
    with pytest.raises(ConfigError, match="uri"):
        load_settings(config)
