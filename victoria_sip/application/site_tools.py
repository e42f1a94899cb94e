"""The site's tools on a call: their specs for the model, the model's arguments checked against each schema
before anything is sent, and how a request is shown where it is kept (secrets masked).

    problem = check_arguments(tool, {"order": "44x"})   # "'44x' does not match '^[0-9]{4,8}$'" or None
    shown(tool, {"order": "4411", "pin": "1234"})       # "order_status(order=4411, pin=•••)"
"""

from __future__ import annotations

from collections.abc import Mapping

import jsonschema

from victoria_sip.domain import SiteTool

MASK = "•••"
MAX_RESULT_CHARS = 4000  # what the model is given back (and stored) of an answer


def tool_spec(tool: SiteTool) -> dict:
    return {"type": "function",
            "function": {"name": tool.name, "description": tool.description, "parameters": tool.model_schema()}}


def check_arguments(tool: SiteTool, arguments: Mapping[str, object]) -> str | None:
    """Why the model's arguments may not be sent to the service, or None when they fit its schema."""
    validator = jsonschema.validators.validator_for(tool.parameters)(tool.parameters)
    error = jsonschema.exceptions.best_match(validator.iter_errors(dict(arguments)))
    if error is None:
        return None
    where = ".".join(str(p) for p in error.absolute_path)
    message = error.message
    for name in tool.secret_fields:  # the message may quote the value, whatever its type
        value = arguments.get(name)
        for quoted in {repr(value), str(value)} if value not in (None, "") else ():
            message = message.replace(quoted, MASK)
    return f"{where}: {message}" if where else message


def shown(tool: SiteTool, arguments: Mapping[str, object]) -> str:
    """The request as the call's record and the log show it: secret arguments masked."""
    secret = tool.secret_fields
    listed = ", ".join(f"{name}={MASK if name in secret else value}" for name, value in arguments.items())
    return f"{tool.name}({listed})"


def for_the_model(text: str) -> str:
    """An answer cut to what the model is given (and the call's record keeps)."""
    return text if len(text) <= MAX_RESULT_CHARS else text[:MAX_RESULT_CHARS] + " …(cut)"
