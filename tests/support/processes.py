"""Real processes for loopback tests: Kamailio, ``victoria-sip serve``, the pjsua2 caller, SIPp.

Every wait has a timeout; every process started here is stopped by its fixture.
All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from victoria_sip.adapters.sip.registrar_probe import ping

ROOT = Path(__file__).parents[2]
KAMAILIO_CFG = ROOT / "config" / "kamailio" / "kamailio.cfg"
DISPATCHER_CFG = ROOT / "config" / "kamailio" / "dispatcher.cfg"
LOOPBACK = "127.0.0.1"


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A port free for both UDP and TCP right now (pjsua may open either)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.bind((LOOPBACK, 0))
            port = sock.getsockname()[1]
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
            try:
                other.bind((LOOPBACK, port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port on loopback")


def wait_until(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


@dataclass(frozen=True)
class KamailioTls:
    """Kamailio's TLS listener: the certificate it presents and the CAs it trusts; with ``require_client_cert``
    a client without a certificate signed by one of them is refused (mutual TLS)."""

    certificate: Path
    private_key: Path
    ca_file: Path
    require_client_cert: bool = False

    def config(self) -> str:
        verify = "yes" if self.require_client_cert else "no"
        return (f"[server:default]\nmethod = TLSv1.2+\nverify_certificate = {verify}\n"
                f"require_certificate = {verify}\nprivate_key = {self.private_key}\ncertificate = {self.certificate}\n"
                f"ca_list = {self.ca_file}\n\n[client:default]\nmethod = TLSv1.2+\nverify_certificate = no\n"
                "require_certificate = no\n")


class Kamailio:
    """Kamailio from Debian on a loopback port, running config/kamailio/kamailio.cfg (registrar and proxy)
    or another of our configs, with ``defines`` passed as ``-A NAME=value``; with ``tls``, a TLS listener too
    (``tls_registrar``); with ``tcp``, a TCP listener too (``tcp_registrar``)."""

    def __init__(self, workdir: Path, port: int | None = None, config: Path = KAMAILIO_CFG,
                 defines: dict[str, str] | None = None, tls: KamailioTls | None = None, tcp: bool = False) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.config = config
        self.defines = dict(defines or {})
        self.process: subprocess.Popen | None = None
        self.log_path = workdir / "kamailio.log"
        self.tls_port = free_port(socket.SOCK_STREAM) if tls else None
        self.tcp_port = free_port(socket.SOCK_STREAM) if tcp else None
        if tcp:
            self.defines["TCP_LISTEN"] = f"tcp:{LOOPBACK}:{self.tcp_port}"
        if tls is not None:
            workdir.mkdir(parents=True, exist_ok=True)
            (workdir / "tls.cfg").write_text(tls.config())
            self.defines.update({"WITH_TLS": "1", "TLS_LISTEN": f"tls:{LOOPBACK}:{self.tls_port}",
                                 "TLS_CONFIG": f'"{workdir / "tls.cfg"}"'})

    def start(self, timeout: float = 10.0) -> None:
        executable = shutil.which("kamailio") or "/usr/sbin/kamailio"
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "run").mkdir(exist_ok=True)
        command = [
            executable, "-f", str(self.config), "-DD", "-E",
            "-A", f"LISTEN=udp:{LOOPBACK}:{self.port}",
            "-A", f'CTL_SOCKET="unix:{self.workdir}/ctl"',
            *[arg for name, value in self.defines.items() for arg in ("-A", f"{name}={value}")],
            "-P", str(self.workdir / "kamailio.pid"), "-Y", str(self.workdir / "run"), "-w", str(self.workdir),
        ]
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        _started.append(self.process)
        wait_until(lambda: self.process.poll() is not None or ping(LOOPBACK, self.port, 0.3), timeout, what="Kamailio")
        if self.process.poll() is not None:
            raise RuntimeError(f"Kamailio exited: {self.log_path.read_text()[-2000:]}")

    def stop(self, timeout: float = 10.0) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        self.process = None

    @property
    def registrar(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def tls_registrar(self) -> str:
        return f"{LOOPBACK}:{self.tls_port}"

    @property
    def tcp_registrar(self) -> str:
        return f"{LOOPBACK}:{self.tcp_port}"


_started: list[subprocess.Popen] = []


def kill_leftovers() -> None:
    """Stop every process a test started and did not stop (a failing test must not leave servers behind)."""
    for process in _started:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    _started.clear()


class Victoria:
    """``victoria-sip serve`` as a subprocess, with its log in a file."""

    def __init__(self, workdir: Path, config_text: str | None = None, env: dict[str, str] | None = None,
                 db_url: str | None = None) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.sip_port = free_port()
        self.metrics_port = free_port(socket.SOCK_STREAM)
        self.web_port = free_port(socket.SOCK_STREAM)
        self.db_url = db_url or f"sqlite:///{workdir / 'victoria.db'}"
        self.log_path = workdir / "victoria.log"
        self.config_path: Path | None = None
        if config_text is not None:
            self.config_path = workdir / "victoria.toml"
            self.config_path.write_text(config_text)
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen | None = None

    def start(self, *extra: str) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-X", "faulthandler", "-m", "victoria_sip.cli", "serve",
                   "--sip-listen", f"{LOOPBACK}:{self.sip_port}", "--db", self.db_url,
                   "--metrics-listen", f"{LOOPBACK}:{self.metrics_port}",
                   "--web-listen", f"{LOOPBACK}:{self.web_port}", *extra]
        if self.config_path:
            command += ["--config", str(self.config_path)]
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        env=self.env, cwd=ROOT)
        _started.append(self.process)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(self, pattern: str, timeout: float = 30.0, count: int = 1) -> str:
        regex = re.compile(pattern)

        def seen():
            if self.process.poll() is not None:
                raise RuntimeError(f"victoria-sip exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            return len(regex.findall(self.log())) >= count

        try:
            wait_until(seen, timeout, what=f"log line /{pattern}/ x{count}")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n--- victoria log ---\n{self.log()[-3000:]}") from None
        return self.log()

    def wait_ready(self, timeout: float = 60.0) -> None:
        self.wait_for_log(r"Victoria is ready", timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
                raise RuntimeError(f"victoria-sip ignored signal {sig} for {timeout} s:\n{self.log()[-3000:]}")
        return self.process.returncode

    def cli(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "victoria_sip.cli", *args], capture_output=True, text=True,
                              timeout=timeout, cwd=ROOT, env=self.env)

    def http_get(self, path: str, timeout: float = 10.0) -> tuple[int, str]:
        """GET from the ops listener (/metrics, /healthz, /readyz): status and body."""
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(f"http://{LOOPBACK}:{self.metrics_port}{path}", timeout=timeout) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def calls(self) -> list[dict]:
        result = self.cli("calls", "list", "--json", "--limit", "100000", "--db", self.db_url)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def call_detail(self, call_id: str) -> dict:
        result = self.cli("calls", "show", call_id, "--json", "--db", self.db_url)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


def start_dispatcher(instances: list[Victoria], workdir: Path, maxload: int = 3, pbx: str = LOOPBACK) -> Kamailio:
    """Kamailio running config/kamailio/dispatcher.cfg in front of ``instances`` (one list line each), taking
    calls from ``pbx`` only (the callers of the tests and the bench run on 127.0.0.1)."""
    listing = workdir / "victoria.list"
    listing.parent.mkdir(parents=True, exist_ok=True)
    listing.write_text("".join(f"1 sip:{LOOPBACK}:{instance.sip_port} 0 0 duid=v{n};maxload={maxload}\n"
                               for n, instance in enumerate(instances)))
    pbx_list = workdir / "pbx.list"
    pbx_list.write_text(f"1 {pbx} 32\n")
    balancer = Kamailio(workdir / "kamailio", config=DISPATCHER_CFG,
                        defines={"DISPATCHER_LIST": f'"{listing}"', "PBX_LIST": f'"{pbx_list}"'})
    balancer.start()
    return balancer


DESK_PASSWORD = {"VICTORIA_ACCOUNT_DESK_PASSWORD": "reception-secret"}  # Kamailio's subscriber 7000


def desk_account(registrar: str, agent: str = "front") -> str:
    """TOML: Victoria registers as extension 7000 (account "desk") on the test Kamailio, answered by ``agent``."""
    return f'\n[[sip.accounts]]\nname = "desk"\nregistrar = "{registrar}"\nuser = "7000"\nagent = "{agent}"\n'


def registered_victoria(workdir: Path, kamailio: Kamailio, config: str, timeout: float = 60.0) -> Victoria:
    """``victoria-sip serve`` with ``config`` plus the desk account, started and registered with ``kamailio``."""
    server = Victoria(workdir, config + desk_account(kamailio.registrar), env=DESK_PASSWORD)
    server.start()
    server.wait_for_log(r"account 'desk' registered", timeout=timeout)
    return server


def run_caller(dial: str, *, play: Path | None = None, record: Path | None = None, hangup_after: float = 5.0,
               proxy: str | None = None, user: str = "caller", password: str | None = None,
               codec: str = "PCMU/8000/1", timeout: float = 30.0, dtmf: str | None = None,
               dtmf_after: float = 3.0, dtmf_gap: float = 6.0, stay_transferred: float = 1.0,
               bind: str | None = None, tls_ca: Path | None = None, tls_cert: tuple[Path, Path] | None = None,
               srtp: str = "off") -> dict:
    """Place one call with the pjsua2 test caller; returns its JSON report. With ``tls_ca``, over TLS (the
    URIs need ;transport=tls); ``srtp``: off, optional or mandatory."""
    # -X faulthandler: should pjsua2 abort, the Python stack says which call it was in
    command = [sys.executable, "-X", "faulthandler", "-m", "tests.support.sip_caller", "--dial", dial,
               "--hangup-after", str(hangup_after),
               "--user", user, "--codec", codec, "--timeout", str(timeout), "--dtmf-after", str(dtmf_after),
               "--dtmf-gap", str(dtmf_gap), "--stay-transferred", str(stay_transferred), "--srtp", srtp]
    if dtmf:
        command += ["--dtmf", dtmf]
    if tls_cert:
        command += ["--tls-cert", *map(str, tls_cert)]
    for flag, value in (("--play", play), ("--record", record), ("--proxy", proxy), ("--password", password),
                        ("--bind", bind), ("--tls-ca", tls_ca)):
        if value:
            command += [flag, str(value)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout + 30, cwd=ROOT)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"caller failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return json.loads(lines[-1])


SIPP_SCENARIOS = ROOT / "tests" / "support" / "sipp"


def start_sipp_uas(port: int, workdir: Path, calls: int = 1, timeout: float = 60.0) -> subprocess.Popen:
    """SIPp's built-in UAS on loopback (a phone that answers ``calls`` calls, then exits 0)."""
    sipp = shutil.which("sipp")
    if sipp is None:
        raise RuntimeError("sipp is not installed: run ./scripts/setup.sh (package sip-tester)")
    process = subprocess.Popen([sipp, "-sn", "uas", "-i", LOOPBACK, "-p", str(port), "-m", str(calls), "-nostdin",
                                "-timeout", f"{int(timeout)}s", "-timeout_error"], cwd=workdir,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    _started.append(process)
    return process


def run_sipp(scenario: str, target: str, service: str, *, fill: dict[str, str], calls: int = 1,
             timeout: float = 40.0, workdir: Path, rate: float | None = None) -> subprocess.CompletedProcess:
    """Run SIPp (Debian's sip-tester) as a UAC from loopback; its exit code is its verdict (0: all calls ok).

    ``fill`` replaces ``@NAME@`` placeholders in the scenario (SIPp does not expand keys inside actions).
    """
    sipp = shutil.which("sipp")
    if sipp is None:
        raise RuntimeError("sipp is not installed: run ./scripts/setup.sh (package sip-tester)")
    text = (SIPP_SCENARIOS / scenario).read_text()
    for name, value in fill.items():
        text = text.replace(f"@{name.upper()}@", value)
    filled = workdir / scenario
    filled.write_text(text)
    command = [sipp, "-sf", str(filled), "-s", service, target,
               "-i", LOOPBACK, "-p", str(free_port()), "-mi", LOOPBACK, "-mp", str(free_port()),
               "-m", str(calls), "-nostdin", "-timeout", f"{int(timeout)}s", "-timeout_error", "-trace_err",
               "-error_file", str(workdir / "sipp_errors.log")]
    if rate is not None:  # calls started per second; all may be up at once
        command += ["-r", str(rate), "-l", str(calls)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout + 15, cwd=workdir)


class Desk:
    """A desk phone (``tests/support/sip_desk.py``) listening on loopback: answers, plays a tone, honours Replaces."""

    def __init__(self, calls: int, timeout: float = 60.0, ring_seconds: float = 0.0) -> None:
        self.port = free_port()
        self.uri = f"sip:operator@{LOOPBACK}:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-X", "faulthandler", "-m", "tests.support.sip_desk", "--bind", f"{LOOPBACK}:{self.port}",
             "--calls", str(calls), "--timeout", str(timeout), "--ring-seconds", str(ring_seconds)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _started.append(self.process)
        for line in self.process.stdout:  # pjlib prints its banner to stdout first
            if line.strip() == "ready":
                return
        raise RuntimeError(f"the desk phone did not start: {self.process.stderr.read()[-2000:]}")

    def report(self, timeout: float = 60.0) -> list[dict]:
        """Every call it took, once they have ended."""
        out, err = self.process.communicate(timeout=timeout)
        lines = [line for line in out.splitlines() if line.startswith("{")]
        if self.process.returncode != 0 or not lines:
            raise RuntimeError(f"desk phone failed ({self.process.returncode}):\n{out[-2000:]}\n{err[-2000:]}")
        return json.loads(lines[-1])["calls"]


def add_console_user(db_url: str, name: str, password: str, role: str = "viewer") -> None:
    """``victoria-sip users add``, the password on stdin as an operator's script would give it."""
    added = subprocess.run([sys.executable, "-m", "victoria_sip.cli", "users", "add", name, "--role", role,
                            "--db", db_url], input=password + "\n", capture_output=True, text=True, timeout=60)
    assert added.returncode == 0, added.stderr
