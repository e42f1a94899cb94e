"""The actions the model may ask for on a call, as the function specs Ollama's tool calling takes.

Offered per agent: ``end_call`` always, ``transfer_call`` only when the agent has
destinations, and then only by name (an enum): the model can never dial a number
it made up; and the agent's own site tools (``site_tools.py``).
"""

from __future__ import annotations

from victoria_sip.application.site_tools import tool_spec
from victoria_sip.domain import Agent


def tools_for(agent: Agent) -> list[dict]:
    tools = [_function("end_call", "Say goodbye and hang up, when the caller is done or asks to end the call.",
                       {"reason": {"type": "string", "description": "why the call ends, in a few words"}}, [])]
    names = [destination.name for destination in agent.destinations]
    if names:
        tools.append(_function(
            "transfer_call", "Put the caller through to a person. Only when the caller asks for one or you cannot help.",
            {"target": {"type": "string", "enum": names, "description": "who to put the caller through to"}},
            ["target"]))
    return tools + [tool_spec(tool) for tool in agent.tools]


def _function(name: str, description: str, properties: dict, required: list[str]) -> dict:
    return {"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object", "properties": properties, "required": required}}}
