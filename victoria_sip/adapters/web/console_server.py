"""The console's listener: uvicorn serving the console app on Victoria's own event loop.

    server = ConsoleServer(app, HostPort("127.0.0.1", 8080), tls=("cert.pem", "key.pem"))  # binds now, TLS read now:
                                                                # a taken port or a bad key fails at start-up
    server.start()                                               # a task on the running loop
    await server.stop()

uvicorn is asked not to handle signals: SIGTERM and SIGHUP belong to ``serve``
(drain the calls, reload the agents), and the console stops with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import uvicorn

from victoria_sip.settings import HostPort

STOP_SECONDS = 5.0


class ConsoleTlsError(Exception):
    """The console's certificate or key cannot be used."""


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # uvicorn >= 0.29
        yield

    def install_signal_handlers(self) -> None:  # older uvicorn
        pass


class ConsoleServer:
    def __init__(self, app, listen: HostPort, tls: tuple[str, str] | None = None) -> None:
        family = socket.AF_INET6 if ":" in listen.host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind((listen.host, listen.port))
        except OSError:
            self._socket.close()
            raise
        certificate, key = tls or (None, None)
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off",
                                timeout_graceful_shutdown=STOP_SECONDS, ssl_certfile=certificate, ssl_keyfile=key)
        try:
            config.load()  # reads the certificate and key now (else on the first connection)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            self._socket.close()
            raise ConsoleTlsError(f"{certificate} / {key}: {exc}") from None
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._server.serve(sockets=[self._socket]),
                                                            name="console")

    async def stop(self) -> None:
        if self._task is None:
            self._socket.close()
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(self._task, STOP_SECONDS + 2)
        except (TimeoutError, asyncio.CancelledError):
            self._task.cancel()
        finally:
            self._socket.close()
