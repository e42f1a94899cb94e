"""The LLM port over Ollama's streaming chat, with the official ``ollama`` client.

Every failure the caller could hear about becomes a ``ModelError`` with a
message ops can act on: the daemon is not running, the model is not pulled,
the first token took too long, the stream broke off.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence

import httpx
import ollama

from victoria_sip.domain import Agent, ConversationTurn, Role
from victoria_sip.domain.ports import ToolRequest
from victoria_sip.errors import ModelError

log = logging.getLogger("victoria.llm")

_ROLES = {Role.CALLER: "user", Role.ASSISTANT: "assistant", Role.SYSTEM: "system", Role.TOOL: "tool"}


def chat_messages(agent: Agent, history: Sequence[ConversationTurn]) -> list[dict[str, str]]:
    return [{"role": "system", "content": agent.system_prompt}] + [
        {"role": _ROLES[turn.role], "content": turn.content} for turn in history if turn.content
    ]


class OllamaLLM:
    def __init__(
        self,
        host: str,
        model: str,
        first_token_timeout: float = 5.0,
        token_timeout: float = 5.0,
        options: dict | None = None,
        keep_alive: str = "30m",
    ) -> None:
        self.host = host
        self.model = model
        self.first_token_timeout = first_token_timeout
        self.token_timeout = token_timeout
        self._options = options or {}
        self._keep_alive = keep_alive
        # connect/read timeouts on the socket itself; ollama-python has none by default
        self._client = ollama.AsyncClient(host=host, timeout=httpx.Timeout(max(first_token_timeout, token_timeout), connect=3.0))

    async def stream_reply(self, agent: Agent, history: Sequence[ConversationTurn],
                           tools: Sequence[Mapping[str, object]] = ()) -> AsyncIterator[str | ToolRequest]:
        """Text deltas of the reply, and the tools the model calls (Ollama tool calling). Each wait (first
        token, then each next one) has its own timeout."""
        model = agent.llm_model or self.model
        try:
            stream = await asyncio.wait_for(
                self._client.chat(model=model, messages=chat_messages(agent, history), stream=True,
                                  tools=list(tools) or None, options=self._options or None,
                                  keep_alive=self._keep_alive),
                self.first_token_timeout,
            )
            parts = aiter(stream)
            timeout = self.first_token_timeout
            while (part := await asyncio.wait_for(anext(parts, None), timeout)) is not None:
                timeout = self.token_timeout
                if part.message.content:
                    yield part.message.content
                for call in part.message.tool_calls or ():
                    yield ToolRequest(call.function.name, dict(call.function.arguments or {}))
        except ollama.ResponseError as exc:
            if exc.status_code == 404:
                raise ModelError(f"Ollama at {self.host} has no model {model!r}: run `ollama pull {model}`") from exc
            raise ModelError(f"Ollama at {self.host} failed: {exc.error} (status {exc.status_code})") from exc
        except TimeoutError as exc:
            raise ModelError(f"Ollama at {self.host} did not answer within the timeout (model {model!r})") from exc
        except (httpx.ConnectError, ConnectionError) as exc:
            raise ModelError(f"cannot reach Ollama at {self.host}: is `ollama serve` running? ({exc})") from exc
        except httpx.HTTPError as exc:
            raise ModelError(f"Ollama at {self.host}: the reply broke off ({type(exc).__name__}: {exc})") from exc

    def check_ready(self, models: Iterable[str] = (), timeout: float = 2.0) -> str:
        """Is the daemon up with the models pulled (ours and the agents')? Blocking; raises ``ModelError``."""
        try:
            response = httpx.get(f"{self.host.rstrip('/')}/api/tags", timeout=timeout)
            response.raise_for_status()
            pulled = {model.get("name") or model.get("model") for model in response.json().get("models", [])}
        except (httpx.HTTPError, ValueError) as exc:
            raise ModelError(f"cannot reach Ollama at {self.host}: is `ollama serve` running? ({exc})") from exc
        wanted = sorted({self.model, *models})
        for model in wanted:
            if model not in pulled and f"{model}:latest" not in pulled:
                raise ModelError(f"Ollama at {self.host} has no model {model!r}: run `ollama pull {model}`")
        return f"{', '.join(wanted)} at {self.host}"

    async def aclose(self) -> None:
        await self._client._client.aclose()
