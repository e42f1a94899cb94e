"""What the installed PJSIP can do: its version, call slots and I/O queue (issue 14).

PJSUA_MAX_CALLS and the I/O queue are compile-time constants SWIG does not expose. scripts/build_pjsip.py ships them
in ``pjsua2_build.json`` beside ``pjsua2.py``; this module reads that file without importing pjsua2 (so ``doctor``
and the start-up checks stay cheap). Without it, the pjsua2 found is PyPI's ``pjsua2-python`` (or another foreign
build): 4 call slots and a select() queue of 64 handles, as measured.
"""

import importlib.metadata
import importlib.util
import json
from dataclasses import dataclass, replace
from pathlib import Path

SETUP_HINT = "run ./scripts/setup.sh (it builds PJSIP with config/pjsip/config_site.h)"


@dataclass(frozen=True, slots=True)
class PjsipBuild:
    version: str  # "2.17"; "unknown" when pjsua2 is missing
    call_slots: int  # PJSUA_MAX_CALLS: uaConfig.maxCalls above it is silently cut to it
    ioqueue: str  # "epoll" or "select"
    ioqueue_max_handles: int  # sockets per I/O queue (a call leg holds 2 in the media queue)
    conf_ports: int  # PJSUA_MAX_CONF_PORTS, the default of medConfig.maxMediaPorts
    ours: bool  # built by scripts/build_pjsip.py
    source_digest: str = ""  # tree digest of the pjproject source it was built from
    installed: bool = True  # False: no pjsua2 importable at all

    def describe(self) -> str:
        """One line for the start-up log and ``doctor``."""
        if not self.installed:
            return f"PJSIP: pjsua2 is not installed ({SETUP_HINT})"
        origin = "built by setup" if self.ours else "not built by setup"
        return (f"PJSIP {self.version} ({origin}): {self.call_slots} call slots, {self.ioqueue} I/O queue of "
                f"{self.ioqueue_max_handles} handles")

    def max_concurrent_calls(self) -> int:
        """The most calls Victoria may take: one slot stays free so that Victoria itself answers busy."""
        return max(self.call_slots - 1, 0)

    def refusal(self, max_concurrent_calls: int) -> str | None:
        """Why ``serve`` must not start with this many calls on this build, naming the fix; None when it fits."""
        if max_concurrent_calls <= self.max_concurrent_calls():
            return None
        most = self.max_concurrent_calls()
        fix = f"lower [sip] max_concurrent_calls to {most}"
        if not self.ours:
            fix = f"{SETUP_HINT}, or {fix}"
        return (f"max_concurrent_calls = {max_concurrent_calls} is more than this PJSIP can take ({self.describe()}; "
                f"one slot stays free to answer busy, so at most {most}): {fix}")


STOCK_WHEEL = PjsipBuild(version="unknown", call_slots=4, ioqueue="select", ioqueue_max_handles=64, conf_ports=254,
                         ours=False)


def pjsip_build() -> PjsipBuild:
    """The facts of the pjsua2 this interpreter would import."""
    spec = importlib.util.find_spec("pjsua2")
    if spec is None or not spec.origin:
        return replace(STOCK_WHEEL, installed=False)
    try:
        facts = json.loads(Path(spec.origin).with_name("pjsua2_build.json").read_text())
        return PjsipBuild(version=str(facts["pjsip_version"]), call_slots=int(facts["max_calls"]),
                          ioqueue=str(facts["ioqueue"]), ioqueue_max_handles=int(facts["ioqueue_max_handles"]),
                          conf_ports=int(facts["max_conf_ports"]), ours=True,
                          source_digest=str(facts.get("source_tree_sha256", "")))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        version = importlib.metadata.version("pjsua2-python").split(".post")[0]
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return replace(STOCK_WHEEL, version=version)

