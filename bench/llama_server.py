"""A real small LLM behind the Ollama protocol, for the latency bench (the Ollama daemon is not installable here).

``POST /api/chat`` streams ``application/x-ndjson`` as Ollama does: one
``{"model", "created_at", "message": {"role": "assistant", "content": delta}, "done": false}`` per token, then
``done: true`` with ``done_reason``, ``prompt_eval_count``, ``eval_count`` and the durations in ns. ``GET /api/tags``
lists the one model (Victoria's readiness check looks for its name there), ``/api/version`` answers too. The
reply comes from llama.cpp (``llama-cpp-python``, built by ``bench/setup_llm.sh``) with the chat template in the
GGUF. ``options.num_predict``, ``temperature``, ``top_p``, ``top_k``, ``seed`` and ``stop`` are honoured; ``tools``
are accepted and ignored (a 135M model answers in text). Loopback only.

    python -m bench.llama_server --model PATH.gguf --port 11434 --threads 2 [--timings timings.jsonl]

Threads: ``ThreadingHTTPServer`` gives each request a thread, which only relays; every generation runs on one
model thread, in turn. One model with one context answers one request at a time, so a request that arrives
while another is generating waits in ``_jobs`` for it (as Ollama with ``OLLAMA_NUM_PARALLEL=1``). One thread
also matters for speed: llama.cpp's OpenMP keeps a team of workers per calling thread, and generating from a
new request thread each time, beside the previous team, ran at a third of the speed here (30 tokens/s, not 95).
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

LOOPBACK = "127.0.0.1"
DEFAULT_MAX_TOKENS = 96  # Ollama's default is unbounded; a bench turn must end, and a receptionist is brief
NS = 1_000_000_000
TOKEN_TIMEOUT_S = 60.0  # a request thread gives up on a model thread that stopped answering


@dataclass(frozen=True, slots=True)
class Timing:
    """One reply, as llama.cpp produced it: the numbers Ollama puts in its ``done`` line, plus first token."""

    prompt_eval_count: int
    prompt_eval_duration_ns: int
    eval_count: int
    eval_duration_ns: int
    total_duration_ns: int
    first_token_s: float  # from the request to the first sampled token (waiting for the model included)

    @property
    def tokens_per_second(self) -> float:
        # eval_duration runs from the first sampled token to the last: eval_count - 1 steps of generation
        return (self.eval_count - 1) / (self.eval_duration_ns / NS) if self.eval_duration_ns else 0.0


class TokenClock:
    """A llama.cpp logits processor that samples nothing: it is called once per generated token, which makes it
    the cheapest exact counter. The first call comes when the prompt has been evaluated."""

    def __init__(self) -> None:
        self.prompt_tokens = 0
        self.tokens = 0
        self.first: float | None = None
        self.last: float | None = None

    def __call__(self, input_ids, scores):
        now = time.monotonic()
        if self.first is None:
            self.first, self.prompt_tokens = now, len(input_ids)
        self.last = now
        self.tokens += 1
        return scores


class ModelFailed(RuntimeError):
    """Generation failed on the model thread; the request answers with Ollama's ``{"error": ...}``."""


@dataclass(slots=True)
class Job:
    """One request for the model thread. It answers on ``out``: text deltas, then (Timing or None, done_reason)."""

    messages: list[dict]
    options: dict
    record: bool = True
    asked: float = field(default_factory=time.monotonic)
    out: queue.Queue = field(default_factory=queue.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)


class LlamaServer:
    """One GGUF model served over the Ollama chat protocol on 127.0.0.1; ``timings`` holds each reply's numbers."""

    def __init__(self, model_path: Path, name: str | None = None, port: int = 0, threads: int = 2,
                 context: int = 2048, max_tokens: int = DEFAULT_MAX_TOKENS, timings_path: Path | None = None,
                 seed: int | None = None) -> None:
        self.model_path = Path(model_path)
        self.name = name or self.model_path.stem.lower()
        self.threads = threads
        self.context = context
        self.max_tokens = max_tokens
        self.seed = seed
        self.timings: list[Timing] = []
        self._timings_path = timings_path
        self._llm = None
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._model_thread = threading.Thread(target=self._serve_jobs, name="llama-model", daemon=True)
        self._server = ThreadingHTTPServer((LOOPBACK, port), self._handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return f"http://{LOOPBACK}:{self._server.server_address[1]}"

    def load(self, warm_up: bool = True) -> None:
        """Load the model (seconds); with ``warm_up``, answer once so the first call is not the cold one."""
        from llama_cpp import Llama  # a bench-only dependency: imported when a model is actually served

        self._llm = Llama(model_path=str(self.model_path), n_ctx=self.context, n_threads=self.threads,
                          n_threads_batch=self.threads, verbose=False)
        self._model_thread.start()
        if warm_up:
            for _ in self.reply([{"role": "user", "content": "Hello."}], {"num_predict": 4}, record=False):
                pass

    def start(self) -> LlamaServer:
        if self._llm is None:
            self.load()
        self._thread = threading.Thread(target=self._server.serve_forever, name="llama-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._jobs.put(None)

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def reply(self, messages: list[dict], options: dict, record: bool = True):
        """Text deltas of one reply, then (its Timing or None, done_reason); blocks while another is generated.
        Closing the generator early (the client went away: barge-in) stops the generation at the next token."""
        job = Job(messages, options, record)
        self._jobs.put(job)
        try:
            while True:
                part = job.out.get(timeout=TOKEN_TIMEOUT_S)
                if isinstance(part, ModelFailed):
                    raise part
                yield part
                if isinstance(part, tuple):
                    return
        finally:
            job.cancelled.set()

    def _serve_jobs(self) -> None:
        while (job := self._jobs.get()) is not None:
            if job.cancelled.is_set():
                continue
            try:
                job.out.put(self._run(job))
            except Exception as exc:  # a broken request must not end the model thread; Ollama says why in-stream
                job.out.put(ModelFailed(f"llama.cpp failed: {type(exc).__name__}: {exc}"))

    def _run(self, job: Job) -> tuple[Timing | None, str]:
        """Generate on the model thread, handing each delta to the request; returns (timing, done_reason)."""
        from llama_cpp import LogitsProcessorList

        began, clock, reason = time.monotonic(), TokenClock(), "stop"
        stream = self._llm.create_chat_completion(
            messages=[{"role": m.get("role", "user"), "content": m.get("content") or ""} for m in job.messages],
            stream=True, logits_processor=LogitsProcessorList([clock]), **self._sampling(job.options))
        try:
            for part in stream:
                if job.cancelled.is_set():
                    return None, "cancelled"
                choice = part["choices"][0]
                if text := choice["delta"].get("content"):
                    job.out.put(text)
                reason = choice.get("finish_reason") or reason
        finally:
            stream.close()
        if clock.first is None:
            return None, reason
        timing = Timing(clock.prompt_tokens, int((clock.first - began) * NS), clock.tokens,
                        int((clock.last - clock.first) * NS), int((time.monotonic() - job.asked) * NS),
                        clock.first - job.asked)
        if job.record:
            self._record(timing)
        return timing, reason

    def _sampling(self, options: dict) -> dict:
        max_tokens = options.get("num_predict", self.max_tokens)
        sampling = {"max_tokens": None if max_tokens is None or max_tokens < 0 else int(max_tokens)}
        if self.seed is not None:
            sampling["seed"] = self.seed
        for key in ("temperature", "top_p", "top_k", "seed", "stop"):  # Ollama's option names are llama.cpp's
            if key in options:
                sampling[key] = options[key]
        return sampling

    def _record(self, timing: Timing) -> None:
        self.timings.append(timing)
        if self._timings_path:
            with open(self._timings_path, "a") as out:
                out.write(json.dumps({**asdict(timing), "tokens_per_second": timing.tokens_per_second}) + "\n")

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                if self.path == "/api/version":
                    self._json(200, {"version": "0.12.0"})
                elif self.path == "/api/tags":
                    size = server.model_path.stat().st_size
                    self._json(200, {"models": [{"name": server.name, "model": server.name, "size": size,
                                                 "details": {"format": "gguf"}}]})
                else:
                    self._json(404, {"error": "404 page not found"})

            def do_POST(self) -> None:
                try:
                    body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                except ValueError:
                    self._json(400, {"error": "invalid JSON body"})
                    return
                if self.path != "/api/chat":
                    self._json(404, {"error": "404 page not found"})
                    return
                model = body.get("model", "")
                if model not in (server.name, f"{server.name}:latest"):
                    self._json(404, {"error": f'model "{model}" not found, try pulling it first'})
                    return
                parts = server.reply(body.get("messages", []), body.get("options") or {})
                if body.get("stream", True) is False:
                    try:
                        *texts, (timing, reason) = parts
                    except (ModelFailed, queue.Empty) as exc:
                        self._json(500, {"error": str(exc) or "the model stopped answering"})
                        return
                    self._json(200, self._done(model, "".join(texts), timing, reason))
                    return
                self._stream(model, parts)

            def _stream(self, model: str, parts) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for part in parts:
                        if isinstance(part, str):
                            self._chunk(self._part(model, part))
                        else:
                            self._chunk(self._done(model, "", *part))
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    parts.close()
                    self.close_connection = True
                except (ModelFailed, queue.Empty) as exc:
                    self._chunk({"error": str(exc) or "the model stopped answering"})
                    self.wfile.write(b"0\r\n\r\n")
                    self.close_connection = True

            @staticmethod
            def _part(model: str, content: str) -> dict:
                return {"model": model, "created_at": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
                        "message": {"role": "assistant", "content": content}, "done": False}

            def _done(self, model: str, content: str, timing: Timing | None, reason: str = "stop") -> dict:
                part = self._part(model, content)
                part.update(done=True, done_reason=reason, load_duration=0)
                if timing:
                    part.update(total_duration=timing.total_duration_ns, prompt_eval_count=timing.prompt_eval_count,
                                prompt_eval_duration=timing.prompt_eval_duration_ns, eval_count=timing.eval_count,
                                eval_duration=timing.eval_duration_ns)
                return part

            def _chunk(self, obj: dict) -> None:
                data = (json.dumps(obj) + "\n").encode()
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _json(self, status: int, obj: dict) -> None:
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


class LlamaServerProcess:
    """``python -m bench.llama_server`` as a child process, as Ollama would be: its own process, so its threads
    compete with Victoria's for the cores the way a real deployment's do, and the bench's own threads (the RTP
    sniffer) never wait for it. Its replies' timings are read back from a JSON-lines file."""

    def __init__(self, model: Path, threads: int, workdir: Path, port: int, max_tokens: int = DEFAULT_MAX_TOKENS,
                 seed: int = 1, load_timeout: float = 120.0, nice: int = 0) -> None:
        self.name = Path(model).stem.lower()
        self.host = f"http://{LOOPBACK}:{port}"
        self._timings = workdir / "llm-timings.jsonl"
        self._log = workdir / "llama-server.log"
        self._command = [sys.executable, "-m", "bench.llama_server", "--model", str(model), "--port", str(port),
                         "--threads", str(threads), "--max-tokens", str(max_tokens), "--timings", str(self._timings),
                         "--seed", str(seed)]  # a fixed seed: runs that differ in threads say the same words
        if nice:  # as `Nice=` in Ollama's systemd unit would: the voice and the media clock go first
            self._command = ["nice", "-n", str(nice), *self._command]
        self._load_timeout = load_timeout
        self._process = None

    def __enter__(self) -> LlamaServerProcess:
        import subprocess

        self._process = subprocess.Popen(self._command, stdout=open(self._log, "wb"), stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=Path(__file__).parent.parent)
        deadline = time.monotonic() + self._load_timeout
        while "serving on" not in self._log.read_text(errors="replace"):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"the LLM server did not start:\n{self._log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)
        return self

    def __exit__(self, *exc) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except Exception:
                self._process.kill()
                self._process.wait(10)

    def timings(self) -> list[dict]:
        if not self._timings.exists():
            return []
        return [json.loads(line) for line in self._timings.read_text().splitlines() if line.strip()]


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.llama_server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="a GGUF chat model (bench/setup_llm.sh prints one)")
    parser.add_argument("--name", help="the model's name in the protocol (default: the file's stem)")
    parser.add_argument("--port", type=int, default=11434)
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads (generation and prompt)")
    parser.add_argument("--context", type=int, default=2048, help="context length in tokens")
    parser.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS, help="when a request sets no num_predict")
    parser.add_argument("--timings", type=Path, help="append each reply's timing to this JSON-lines file")
    parser.add_argument("--seed", type=int, help="sampling seed when a request sets none (default: random)")
    args = parser.parse_args(argv)
    if not args.model.is_file():
        parser.error(f"no such model file: {args.model}")
    server = LlamaServer(args.model, args.name, args.port, args.threads, args.context, args.max_tokens, args.timings,
                         args.seed)
    started = time.monotonic()
    print(f"loading {args.model} ({args.threads} threads)...", flush=True)
    server.load()
    print(f"model {server.name!r} loaded in {time.monotonic() - started:.1f} s; serving on {server.host}", flush=True)
    try:
        server.start()._thread.join()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
