"""A tool an agent may use on a call: one of the site's own HTTP services, which the model asks for by name
with arguments the tool's JSON Schema allows ("where is order 4411?" -> ``order_status(order="4411")``).

The schema is the site's promise about what its service takes; a property marked ``"secret": true`` (a PIN,
a date of birth) is sent to the service but never stored or logged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

BUILT_IN_TOOLS = ("end_call", "transfer_call")
TOOL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
DEFAULT_FILLER = "One moment, let me check that."


@dataclass(frozen=True, slots=True)
class SiteTool:
    name: str
    description: str
    url: str  # http(s)://..., POSTed the arguments as JSON
    parameters: Mapping[str, object] = field(hash=False)  # a JSON Schema object
    timeout_seconds: float = 3.0
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # values may be secrets
    filler: str = DEFAULT_FILLER  # said when the answer takes longer than filler_after_ms
    filler_after_ms: int = 800

    def __post_init__(self) -> None:
        if not TOOL_NAME.fullmatch(self.name):
            raise ValueError(f"tool name {self.name!r}: letters, digits and _, starting with a letter or _")
        if self.name in BUILT_IN_TOOLS:
            raise ValueError(f"tool name {self.name!r} is one of Victoria's own ({', '.join(BUILT_IN_TOOLS)})")
        if not self.description.strip():
            raise ValueError(f"tool {self.name!r} needs a description: the model chooses tools by it")
        if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", self.url):
            raise ValueError(f"tool {self.name!r}: url must be http:// or https://, got {self.url!r}")
        if self.parameters.get("type") != "object" or not isinstance(self.parameters.get("properties", {}), Mapping):
            raise ValueError(f"tool {self.name!r}: parameters must be a JSON Schema object "
                             '({ type = "object", properties = { ... } })')
        if not 0 < self.timeout_seconds <= 60:
            raise ValueError(f"tool {self.name!r}: timeout_seconds must be above 0 and at most 60")

    @property
    def secret_fields(self) -> frozenset[str]:
        """The arguments marked ``"secret": true``: sent, never stored or logged."""
        properties = self.parameters.get("properties", {})
        return frozenset(name for name, spec in properties.items() if isinstance(spec, Mapping) and spec.get("secret"))

    def model_schema(self) -> dict:
        """The schema as the model sees it: without Victoria's own ``secret`` marks."""
        properties = {name: {k: v for k, v in spec.items() if k != "secret"} if isinstance(spec, Mapping) else spec
                      for name, spec in self.parameters.get("properties", {}).items()}
        return {**self.parameters, "properties": properties}
