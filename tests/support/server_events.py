"""Reading server-sent events (the console's /api/live) from an httpx streamed response."""

from __future__ import annotations

import json


def read_events(response, count: int) -> list[tuple[str, object]]:
    """The next ``count`` events of a streamed response as (name, data), skipping keep-alive comments."""
    found, name = [], None
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            found.append((name, json.loads(line[6:])))
            if len(found) == count:
                return found
    raise AssertionError(f"the stream ended after {found}")
