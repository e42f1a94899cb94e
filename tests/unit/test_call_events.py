"""Call events fan out to every watcher on its own loop, from any thread; a watcher that falls behind is dropped."""

import asyncio
import threading

import pytest

from victoria_sip.application.call_events import QUEUE_LIMIT, CallEvent, CallEvents, Overflowed


def test_an_event_published_on_another_thread_reaches_every_watcher():
    events = CallEvents()

    async def watch():
        with events.subscribe() as first, events.subscribe() as second:
            threading.Thread(target=events.publish, args=(CallEvent("a", 2),)).start()
            return await first.next(timeout=2), await second.next(timeout=2)

    assert asyncio.run(watch()) == (CallEvent("a", 2), CallEvent("a", 2))


def test_a_quiet_stream_times_out_with_none_and_a_watcher_that_left_gets_nothing():
    events = CallEvents()

    async def watch():
        with events.subscribe() as watching:
            assert await watching.next(timeout=0.05) is None
        events.publish(CallEvent("a"))  # nobody is watching: no error, nothing kept
        return watching._queue.qsize()

    assert asyncio.run(watch()) == 0


def test_a_watcher_that_falls_behind_is_dropped_and_close_ends_the_others():
    events = CallEvents()

    async def watch():
        with events.subscribe() as slow, events.subscribe() as keeping_up:
            for n in range(QUEUE_LIMIT + 1):
                events.publish(CallEvent("a", n))
                if n % 100 == 0:
                    await asyncio.sleep(0)  # let the deliveries run
                    while await keeping_up.next(timeout=0.01) is not None:
                        pass
            await asyncio.sleep(0.01)
            with pytest.raises(Overflowed):
                await slow.next(timeout=1)
            events.close()
            await asyncio.sleep(0.01)
            while True:  # what it had not read yet, then the end
                if await keeping_up.next(timeout=1) is None:
                    raise AssertionError("close did not end the stream")

    with pytest.raises(Overflowed):
        asyncio.run(watch())


def test_only_this_process_s_own_events_are_relayed():
    events, relayed = CallEvents(), []
    events.relay_to(relayed.append)
    events.publish(CallEvent("mine", 1))
    events.publish(CallEvent("theirs", 1, local=False))
    assert relayed == [CallEvent("mine", 1)]
