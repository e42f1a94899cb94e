"""Call events for whoever watches calls as they happen (the console's Live page), in this process.

    events = CallEvents()
    with events.subscribe() as watching:       # on an event loop: each watcher its own queue
        event = await watching.next(timeout=15)   # None on a timeout; raises Overflowed if it fell behind
    events.publish(CallEvent(call_id, turn=3))    # from any thread, once the row is committed

An event names what changed, not what it is now: watchers read the call from the
database, which holds the truth for every instance sharing it (a relay carries
other instances' events here, ``adapters/pg_call_events.py``). A watcher that
falls ``QUEUE_LIMIT`` events behind is dropped rather than holding memory for it;
its page reconnects and starts again from what is in progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

QUEUE_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class CallEvent:
    call_id: str
    turn: int | None = None  # a turn was committed; None: the call itself changed (rang, answered, ended)
    local: bool = True  # happened in this process (a relay passes on only these)


class Overflowed(Exception):
    """The watcher fell too far behind and was dropped."""


class Watching:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._queue: asyncio.Queue[CallEvent | None] = asyncio.Queue(QUEUE_LIMIT)
        self.overflowed = False

    async def next(self, timeout: float) -> CallEvent | None:
        if self.overflowed:
            raise Overflowed("this watcher fell behind or the events were closed")
        try:
            event = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None
        if event is None:
            raise Overflowed("this watcher fell behind or the events were closed")
        return event

    def _offer(self, event: CallEvent | None) -> None:  # on the loop
        if self.overflowed:
            return
        if event is None or self._queue.full():
            self.overflowed = True
            if self._queue.full():
                self._queue.get_nowait()  # room for the end marker, which wakes a watcher waiting now
            self._queue.put_nowait(None)
            return
        self._queue.put_nowait(event)


class CallEvents:
    def __init__(self) -> None:
        self._watchers: set[Watching] = set()
        self._lock = threading.Lock()
        self._relays: list[Callable[[CallEvent], None]] = []

    def relay_to(self, send: Callable[[CallEvent], None]) -> None:
        """Also hand this process's own events to ``send`` (called on the publishing thread; must not block)."""
        self._relays.append(send)

    def publish(self, event: CallEvent) -> None:
        with self._lock:
            watchers = list(self._watchers)
        with contextlib.suppress(RuntimeError):  # the loop has closed: shutting down, nobody is watching
            for watcher in watchers:
                watcher.loop.call_soon_threadsafe(watcher._offer, event)
        if event.local:
            for send in self._relays:
                send(event)

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[Watching]:
        watcher = Watching(asyncio.get_running_loop())
        with self._lock:
            self._watchers.add(watcher)
        try:
            yield watcher
        finally:
            with self._lock:
                self._watchers.discard(watcher)

    def close(self) -> None:
        """Shutting down: every watcher's stream ends (an open Live page must not hold the console's stop)."""
        with self._lock:
            watchers, self._watchers = list(self._watchers), set()
        with contextlib.suppress(RuntimeError):
            for watcher in watchers:
                watcher.loop.call_soon_threadsafe(watcher._offer, None)
