"""A stand-in for the Ollama daemon (which cannot be installed here), speaking its real wire protocol.

``POST /api/chat`` streams NDJSON over chunked HTTP/1.1 exactly as Ollama does
(one ``{"message": {"content": ...}, "done": false}`` object per token, then a
``done: true`` object with ``done_reason`` and counters); non-streaming requests
get one JSON object. Errors are Ollama's: 404 ``{"error": "model ... not found"}``,
an ``{"error": ...}`` line mid-stream, a dropped connection, a stall.
``GET /api/tags`` and ``/api/version`` answer too. It listens on 127.0.0.1 only.

    with OllamaDouble(reply="Hello there.") as ollama:   # ollama.host -> http://127.0.0.1:PORT
        ...
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Reply = str | Callable[[list[dict]], str]


def tokens(text: str) -> list[str]:
    """Roughly how an LLM streams: words with their leading space, punctuation apart."""
    return re.findall(r"\s*[\w'’]+|\s*[^\w\s]", text)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        # a client that hangs up mid-reply (a reply prepared in a pause and discarded) is Ollama's everyday
        # case, not an error worth a traceback
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


class OllamaDouble:
    def __init__(self, reply: Reply = "Hello.", models: tuple[str, ...] = ("llama3.2:1b",),
                 first_token_delay: float = 0.0, token_delay: float = 0.0) -> None:
        self.reply = reply
        self.models = set(models)
        self.first_token_delay = first_token_delay
        self.token_delay = token_delay
        self.failure: str | None = None  # None | "error-line" | "drop" | "stall" | "http-500"
        # sent after the reply's text, as Ollama streams them; or a function of the messages (a tool's answer in)
        self.tool_calls: list[dict] | Callable[[list[dict]], list[dict]] = []
        self.fail_after_tokens = 2
        self.requests: list[dict] = []
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, name="ollama-double", daemon=True)
        self._stalls = threading.Event()

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> OllamaDouble:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stalls.set()
        self._server.shutdown()
        self._server.server_close()

    def reply_for(self, messages: list[dict]) -> str:
        return self.reply(messages) if callable(self.reply) else self.reply

    def tool_calls_for(self, messages: list[dict]) -> list[dict]:
        return self.tool_calls(messages) if callable(self.tool_calls) else self.tool_calls

    def _handler(self):
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                if self.path == "/api/version":
                    self._json(200, {"version": "0.12.0"})
                elif self.path == "/api/tags":
                    self._json(200, {"models": [{"name": m, "model": m} for m in sorted(double.models)]})
                else:
                    self._json(404, {"error": "404 page not found"})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if self.path != "/api/chat":
                    self._json(404, {"error": "404 page not found"})
                    return
                double.requests.append(body)
                model = body.get("model", "")
                if model not in double.models:
                    self._json(404, {"error": f'model "{model}" not found, try pulling it first'})
                    return
                if double.failure == "http-500":
                    self._json(500, {"error": "llama runner process has terminated: signal: killed"})
                    return
                text = double.reply_for(body.get("messages", []))
                if body.get("stream", True) is False:
                    self._json(200, self._part(model, text, done=True))
                    return
                self._stream(model, text, double.tool_calls_for(body.get("messages", [])))

            def _stream(self, model: str, text: str, tool_calls: list[dict]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                if double.first_token_delay:
                    time.sleep(double.first_token_delay)
                for i, token in enumerate(tokens(text)):
                    if double.failure and i == double.fail_after_tokens:
                        if double.failure == "error-line":
                            self._chunk({"error": "an error was encountered while running the model"})
                            self._end()
                        elif double.failure == "drop":
                            self.connection.shutdown(2)  # mid-stream: no terminating chunk
                            self.close_connection = True
                        elif double.failure == "stall":
                            double._stalls.wait(60)
                            self.close_connection = True
                        return
                    if i and double.token_delay:
                        time.sleep(double.token_delay)
                    self._chunk(self._part(model, token, done=False))
                if tool_calls:
                    part = self._part(model, "", done=False)
                    part["message"]["tool_calls"] = [{"function": call} for call in tool_calls]
                    self._chunk(part)
                self._chunk(self._part(model, "", done=True))
                self._end()

            @staticmethod
            def _part(model: str, content: str, done: bool) -> dict:
                part = {
                    "model": model,
                    "created_at": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
                    "message": {"role": "assistant", "content": content},
                    "done": done,
                }
                if done:
                    part.update(done_reason="stop", total_duration=1_000_000, load_duration=100_000,
                                prompt_eval_count=20, prompt_eval_duration=200_000, eval_count=10,
                                eval_duration=500_000)
                return part

            def _chunk(self, obj: dict) -> None:
                data = (json.dumps(obj) + "\n").encode()
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _end(self) -> None:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

            def _json(self, status: int, obj: dict) -> None:
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


if __name__ == "__main__":  # a standalone double for manual runs: python -m tests.support.ollama_double PORT
    double = OllamaDouble(reply="I am a stand-in for Ollama. How can I help?")
    double._server.server_close()
    double._server = _Server(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 11434), double._handler())
    print(f"Ollama double on {double.host}", flush=True)
    double._server.serve_forever()
