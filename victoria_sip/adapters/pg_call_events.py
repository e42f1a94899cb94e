"""Call events between instances that share one PostgreSQL database: LISTEN/NOTIFY.

    relay = PostgresEventRelay(url, events); relay.start()    # this instance's events out, the others' in
    relay.stop()

Why PostgreSQL and not Redis: a site with several instances already runs the
PostgreSQL they share (the call log), so nothing new to install, secure and
watch; a notification is only sent to listeners that are connected, which is what
a live view wants (a console that was away reads the database, not a backlog).
The payload names the call and the turn, never the words (NOTIFY payloads stay
under 8000 bytes and out of PostgreSQL's logs); watchers read the rows.

Notifications go out on a connection of their own, after the row is committed;
a listener thread waits on another. When the server goes away the listener
says so once, tries again with backoff, and says when it is back; events
meanwhile are lost (the pages still show what the database holds when they load).
"""

from __future__ import annotations

import json
import logging
import queue
import select
import threading
import uuid

from victoria_sip.application.call_events import CallEvent, CallEvents

log = logging.getLogger("victoria.console")

CHANNEL = "victoria_call_events"
RETRY_SECONDS = (1, 2, 5, 10, 30)
WAIT_SECONDS = 1.0  # how often the listener looks up from select() to see whether it should stop
OUTBOX_LIMIT = 10000


class PostgresEventRelay:
    def __init__(self, url: str, events: CallEvents) -> None:
        self._url = url
        self._events = events
        self._origin = uuid.uuid4().hex[:12]  # this process: its own notifications come back and are skipped
        self._outbox: queue.Queue[CallEvent | None] = queue.Queue(OUTBOX_LIMIT)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        import psycopg2  # noqa: F401  (the postgres extra: fail at start-up, not on the first event)

        self._events.relay_to(self._send)
        for target, name in ((self._listen, "events-listen"), (self._notify, "events-notify")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self._outbox.put(None)
        for thread in self._threads:
            thread.join(timeout=WAIT_SECONDS + 2)

    def _send(self, event: CallEvent) -> None:
        try:
            self._outbox.put_nowait(event)
        except queue.Full:  # the server is away: nobody is listening anyway
            pass

    def _connect(self):
        import psycopg2

        connection = psycopg2.connect(self._url, connect_timeout=5, application_name="victoria-sip events")
        connection.autocommit = True
        return connection

    def _notify(self) -> None:
        connection = None
        while not self._stop.is_set():
            event = self._outbox.get()
            if event is None:
                break
            payload = json.dumps({"call": event.call_id, "turn": event.turn, "from": self._origin})
            try:
                connection = connection or self._connect()
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
            except Exception as exc:  # psycopg2.Error, OSError: this event is lost, the next one reconnects
                log.debug("live events: cannot notify the other instances: %s", exc)
                connection = _closed(connection)
        _closed(connection)

    def _listen(self) -> None:
        attempt, connection, was_down = 0, None, False
        while not self._stop.is_set():
            try:
                if connection is None:
                    connection = self._connect()
                    with connection.cursor() as cursor:
                        cursor.execute(f"LISTEN {CHANNEL}")
                    if was_down:
                        log.info("live events: listening to the other instances again")
                    attempt, was_down = 0, False
                if select.select([connection], [], [], WAIT_SECONDS)[0]:
                    connection.poll()
                    while connection.notifies:
                        self._received(connection.notifies.pop(0).payload)
            except Exception as exc:
                connection = _closed(connection)
                if not was_down:
                    log.warning("live events: lost the other instances' calls (%s); trying again", exc)
                    was_down = True
                self._stop.wait(RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)])
                attempt += 1
        _closed(connection)

    def _received(self, payload: str) -> None:
        try:
            message = json.loads(payload)
            if message["from"] == self._origin:
                return
            self._events.publish(CallEvent(str(message["call"]), message["turn"], local=False))
        except (ValueError, KeyError, TypeError):
            log.debug("live events: ignored a notification that is not ours: %r", payload[:200])


def _closed(connection) -> None:
    if connection is not None:
        try:
            connection.close()
        except Exception:
            pass
    return None
