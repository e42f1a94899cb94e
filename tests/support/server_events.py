"""Reading server-sent events (the console's /api/live) from an httpx streamed response."""

from __future__ import annotations

import json


class ServerEvents:
    def __init__(self, response) -> None:
        self._lines = response.iter_lines()  # a response streams once: one iterator for every read

    def read(self, count: int) -> list[tuple[str, object]]:
        """The next ``count`` events as (name, data), skipping keep-alive comments."""
        found, name = [], None
        for line in self._lines:
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                found.append((name, json.loads(line[6:])))
                if len(found) == count:
                    return found
        raise AssertionError(f"the stream ended after {found}")

    def rest(self) -> list[str]:
        """Every line until the stream ends."""
        return list(self._lines)
