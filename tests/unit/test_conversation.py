from dataclasses import FrozenInstanceError

import pytest

from victoria_sip.domain import Agent, Conversation, Role, VoiceConfig


def test_turns_are_numbered_in_order_and_make_a_transcript():
    conversation = Conversation()
    first = conversation.add_turn("assistant", "Hello, how can I help?")
    second = conversation.add_turn(Role.CALLER, "I'd like to book a room.")
    assert (first.index, second.index) == (0, 1)
    assert first.at <= second.at
    assert conversation.get_transcript() == "assistant: Hello, how can I help?\ncaller: I'd like to book a room."


def test_turns_and_voices_are_frozen_values():
    turn = Conversation().add_turn("caller", "hi")
    with pytest.raises(FrozenInstanceError):
        turn.content = "changed"  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        VoiceConfig().speed = 2.0  # type: ignore[misc]


def test_unknown_roles_are_refused():
    with pytest.raises(ValueError):
        Conversation().add_turn("robot", "beep")


@pytest.mark.parametrize("kwargs", [{"speed": 0.1}, {"speed": 5}, {"pitch": 3}])
def test_voice_values_out_of_range_are_refused(kwargs):
    with pytest.raises(ValueError):
        VoiceConfig(**kwargs)


def test_an_agent_needs_a_name():
    with pytest.raises(ValueError):
        Agent(name=" ", system_prompt="", first_message="hi")
