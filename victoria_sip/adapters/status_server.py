"""The ops listener: ``/metrics`` (Prometheus), ``/healthz`` (alive) and ``/readyz`` (can take calls).

A small threaded HTTP server of the standard library on its own daemon
threads; it never touches pjsua2 or the event loop. Readiness checks are plain
callables that return a detail string or raise; each runs with a time limit
and its last answer is reused for a couple of seconds, so a scraper polling
every second does not hammer Ollama or the database.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST

from victoria_sip.errors import VictoriaError

log = logging.getLogger("victoria.status")

Check = Callable[[], str]  # returns what it saw; raises when not ready
CHECK_TIMEOUT_SECONDS = 3.0
CHECK_CACHE_SECONDS = 2.0


class ReadinessChecks:
    def __init__(self, checks: Mapping[str, Check]) -> None:
        self._checks = dict(checks)
        self._pool = ThreadPoolExecutor(max_workers=len(self._checks) or 1, thread_name_prefix="readyz")
        self._cached: tuple[float, dict[str, dict]] | None = None
        self._lock = threading.Lock()

    def run(self) -> dict[str, dict]:
        with self._lock:
            if self._cached and time.monotonic() - self._cached[0] < CHECK_CACHE_SECONDS:
                return self._cached[1]
            futures = {name: self._pool.submit(check) for name, check in self._checks.items()}
            results = {name: _outcome(future) for name, future in futures.items()}
            self._cached = (time.monotonic(), results)
            return results

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _outcome(future) -> dict:
    try:
        return {"ok": True, "detail": future.result(timeout=CHECK_TIMEOUT_SECONDS)}
    except FutureTimeout:
        return {"ok": False, "detail": f"no answer within {CHECK_TIMEOUT_SECONDS:.0f} s"}
    except VictoriaError as exc:
        return {"ok": False, "detail": str(exc)}
    except Exception as exc:  # noqa: BLE001 — a broken check says so instead of crashing the listener
        return {"ok": False, "detail": f"{type(exc).__name__}: {exc}"}


class StatusServer:
    def __init__(self, host: str, port: int, metrics: Callable[[], bytes], readiness: ReadinessChecks) -> None:
        self._metrics = metrics
        self._readiness = readiness
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="status-http", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        return self._server.server_address[:2]

    def start(self) -> None:
        self._thread.start()
        log.info("metrics and health on http://%s:%d (/metrics, /healthz, /readyz)", *self.address)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._readiness.close()

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # a scrape every few seconds is not news
                pass

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(200, server._metrics(), CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    self._json(200, {"status": "alive"})
                elif path == "/readyz":
                    checks = server._readiness.run()
                    ready = all(check["ok"] for check in checks.values())
                    self._json(200 if ready else 503, {"ready": ready, "checks": checks})
                else:
                    self._json(404, {"error": "not found", "paths": ["/metrics", "/healthz", "/readyz"]})

            def _json(self, status: int, body: dict) -> None:
                self._send(status, json.dumps(body, indent=1).encode(), "application/json")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler
