"""The site's own services, called for an agent's tools: the arguments POSTed as JSON, the answer read back.

    caller = HttpToolCaller()
    answer = await caller.call(tool, {"order": "4411"})   # ToolAnswer(text, seconds); ToolFailed(kind, detail)

Every way a service can fail becomes a ``ToolFailed`` with a kind for the metrics
(``timeout``, ``refused``, ``http-4xx``, ``http-5xx``, ``too-large``, ``not-utf8``,
``error``) and a sentence for the model and the log. A body is read up to
``MAX_ANSWER_BYTES``: a model cannot use more, and a service that sends more is
broken. Cancelling the call (the caller talked over the filler) closes the request.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import httpx

from victoria_sip.domain import SiteTool
from victoria_sip.domain.ports import ToolAnswer, ToolFailed

MAX_ANSWER_BYTES = 16 * 1024
USER_AGENT = "victoria-sip (agent tool)"


class HttpToolCaller:
    def __init__(self) -> None:
        # one pool for every call's tools; redirects not followed (a tool's URL is what the site configured)
        self._client = httpx.AsyncClient(follow_redirects=False, headers={"User-Agent": USER_AGENT})

    async def call(self, tool: SiteTool, arguments: Mapping[str, object]) -> ToolAnswer:
        started = time.monotonic()
        timeout = httpx.Timeout(tool.timeout_seconds)
        try:
            async with self._client.stream("POST", tool.url, json=dict(arguments), headers=dict(tool.headers),
                                           timeout=timeout) as response:
                body = await _read_limited(response)
        except httpx.TimeoutException:
            raise ToolFailed("timeout", f"{tool.url} did not answer within {tool.timeout_seconds:g} s") from None
        except httpx.ConnectError as exc:
            raise ToolFailed("refused", f"cannot connect to {tool.url}: {exc}") from None
        except httpx.HTTPError as exc:
            raise ToolFailed("error", f"{tool.url}: {type(exc).__name__}: {exc}") from None
        if response.status_code >= 400:
            kind = "http-5xx" if response.status_code >= 500 else "http-4xx"
            raise ToolFailed(kind, f"{tool.url} answered {response.status_code}: {_excerpt(body)}")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise ToolFailed("not-utf8", f"{tool.url} answered with a body that is not UTF-8 text") from None
        return ToolAnswer(text, time.monotonic() - started)

    async def aclose(self) -> None:
        await self._client.aclose()


async def _read_limited(response: httpx.Response) -> bytes:
    body = bytearray()
    async for part in response.aiter_bytes():
        body += part
        if len(body) > MAX_ANSWER_BYTES:
            raise ToolFailed("too-large", f"{response.request.url} answered more than {MAX_ANSWER_BYTES} bytes")
    return bytes(body)


def _excerpt(body: bytes) -> str:
    return body[:200].decode("utf-8", "replace").strip() or "(no body)"
