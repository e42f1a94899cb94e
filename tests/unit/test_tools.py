"""What the model may ask for, and the configuration rules around destinations."""

import pytest

from victoria_sip.application.tools import tools_for
from victoria_sip.config import load_settings
from victoria_sip.domain import Agent, Destination, Keypad
from victoria_sip.errors import ConfigError


def test_transfer_is_offered_only_with_destinations_and_only_by_name():
    bare = Agent(name="a", system_prompt="", first_message="Hi.")
    assert [t["function"]["name"] for t in tools_for(bare)] == ["end_call"]
    staffed = Agent(name="a", system_prompt="", first_message="Hi.",
                    destinations=(Destination("operator", "sip:100@pbx"), Destination("sales", "sip:200@pbx")))
    transfer = {t["function"]["name"]: t for t in tools_for(staffed)}["transfer_call"]["function"]
    assert transfer["parameters"]["properties"]["target"]["enum"] == ["operator", "sales"]
    assert transfer["parameters"]["required"] == ["target"]


def test_an_escape_key_or_fallback_must_name_a_destination(tmp_path):
    config = tmp_path / "v.toml"
    config.write_text('[[agents]]\nname = "front"\nfirst_message = "Hi."\n'
                      '[agents.keypad.escape_keys]\n"0" = "transfer:operator"\n')
    with pytest.raises(ConfigError, match="transfers to 'operator', which is not one of the agent's destinations"):
        load_settings(config)
    config.write_text('[[agents]]\nname = "front"\nfirst_message = "Hi."\nfallback_destination = "desk"\n'
                      '[agents.destinations]\noperator = "sip:100@pbx"\n')
    with pytest.raises(ConfigError, match="fallback_destination 'desk' is not one of"):
        load_settings(config)
    config.write_text('[[agents]]\nname = "front"\nfirst_message = "Hi."\n[agents.destinations]\noperator = "100"\n')
    with pytest.raises(ConfigError, match="expected a SIP URI"):
        load_settings(config)


def test_escape_key_actions_are_checked():
    with pytest.raises(ValueError, match="unknown action 'dance'"):
        Keypad(escape_keys=(("9", "dance"),))
    with pytest.raises(ValueError, match="other than the terminator"):
        Keypad(escape_keys=(("#", "repeat"),))
