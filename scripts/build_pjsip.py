#!/usr/bin/env python3
"""Build PJSIP (pjproject) and its pjsua2 Python binding into a wheel, cache it and install it (issue 14).

Run it with the interpreter the binding is for (setup.sh and the Dockerfile do):
    .venv/bin/python scripts/build_pjsip.py           build unless cached, install into this environment
    .venv/bin/python scripts/build_pjsip.py --check   exit 0 if this environment already has this very build
    .venv/bin/python scripts/build_pjsip.py --cached  exit 0 if the wheel is cached (nothing to compile)
    .venv/bin/python scripts/build_pjsip.py --wheel   build unless cached, print the wheel's path

Source, in this order: $VICTORIA_PJPROJECT_SOURCE (a tarball, a directory or a URL); else
../shared/vendor/pjproject-<version>.tar.gz beside the clone; else the release tarball of the official repository.
Whatever it is, its unpacked tree must have the digest pinned in config/pjsip/pjproject.pin (see tree_digest).

The build: config/pjsip/config_site.h, ./configure CONFIGURE_FLAGS with CFLAGS="-O2 -fPIC" (static libraries),
`make lib`; SWIG generates the binding (pjsip-apps/src/swig/python, the upstream Makefile's flags) and g++ compiles
and links it against those libraries, so _pjsua2*.so needs only system libraries. The wheel (pjsua2.py,
_pjsua2*.so, pjsua2_build.json with the compiled-in facts) is checked (an Endpoint must log "epoll I/O Queue
created") and cached in $VICTORIA_PJSIP_CACHE or ${XDG_CACHE_HOME:-~/.cache}/victoria-sip/pjsip/<key>/, key = pin,
config_site.h, this script, Python ABI: change any and the next run builds again.
Build needs: gcc, g++, make, swig, the Python headers, libssl-dev, uuid-dev (setup.sh installs them).
"""

import base64
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PIN = REPO / "config" / "pjsip" / "pjproject.pin"
CONFIG_SITE = REPO / "config" / "pjsip" / "config_site.h"
CONFIGURE_FLAGS = [
    "--enable-epoll",            # the epoll I/O queue instead of select() (64 handles, aborts under INVITE floods)
    "--disable-video", "--disable-sound",  # a server: no camera, no sound card (Victoria uses the null device)
    # no optional codec or device library picked up from whatever happens to be installed: every build is the same
    "--disable-opus", "--disable-bcg729", "--disable-lyra", "--disable-silk", "--disable-opencore-amr",
    "--disable-sdl", "--disable-ffmpeg", "--disable-v4l2", "--disable-openh264", "--disable-vpx", "--disable-libyuv",
    "--disable-upnp", "--disable-android-mediacodec", "--disable-libwebrtc",  # (WebRTC AEC: no sound device)
]
CFLAGS = "-O2 -fPIC"
FACTS = {  # name in pjsua2_build.json: C expression, read back from the configured headers
    "max_calls": "PJSUA_MAX_CALLS", "max_conf_ports": "PJSUA_MAX_CONF_PORTS",
    "max_players": "PJSUA_MAX_PLAYERS", "max_recorders": "PJSUA_MAX_RECORDERS",
    "ioqueue_imp": "PJ_IOQUEUE_IMP", "ioqueue_max_handles": "PJ_IOQUEUE_MAX_HANDLES",
    "ioqueue_max_events_in_single_poll": "PJ_IOQUEUE_MAX_EVENTS_IN_SINGLE_POLL",
    "max_tsx_count": "PJSIP_MAX_TSX_COUNT", "max_dialog_count": "PJSIP_MAX_DIALOG_COUNT",
    "ssl_sock": "PJ_HAS_SSL_SOCK", "ssl_imp": "PJ_SSL_SOCK_IMP", "video": "PJMEDIA_HAS_VIDEO",
    "ioqueue_imp_epoll": "PJ_IOQUEUE_IMP_EPOLL", "ssl_imp_openssl": "PJ_SSL_SOCK_IMP_OPENSSL",
    "srtp": "PJMEDIA_HAS_SRTP", "server_tls_session_reuse": "SERVER_SUPPORT_SESSION_REUSE",
}
# Edits to the pinned source, applied after its digest is checked: (file, text, replacement, why). Each text must
# occur exactly once. An #ifndef guard around a setting, so that config_site.h can choose it, and guards against
# a race that aborts the process.
SOURCE_EDITS = [
    ("pjlib/src/pj/ssl_sock_ossl.c",
     "#define SERVER_SUPPORT_SESSION_REUSE 1\n",
     "#ifndef SERVER_SUPPORT_SESSION_REUSE\n#define SERVER_SUPPORT_SESSION_REUSE 1\n#endif\n",
     "the TLS listener's certificate is read once and kept; config_site.h turns that off (certificate renewal)"),
    # pjmedia's media thread reads the UDP transport's last source address while a re-INVITE (hold, unhold)
    # re-attaches the transport and zeroes it: pj_sockaddr_cp then asserts on family 0 and aborts the process
    # (seen twice in CI, in the test caller of the attended-transfer test; pjproject PR #5001 fixes it after
    # 2.17). Until then: a packet whose source address was zeroed under it does not switch the remote address.
    ("pjmedia/src/pjmedia/stream_imp_common.c",
     "                pj_sockaddr_cp(&c_strm->rem_rtp_addr, param->src_addr);\n",
     "                if (pj_sockaddr_has_addr(param->src_addr))\n"
     "                    pj_sockaddr_cp(&c_strm->rem_rtp_addr, param->src_addr);\n",
     "a received RTP packet's source address raced to zero by a re-INVITE aborts the process"),
    ("pjmedia/src/pjmedia/transport_udp.c",
     "            pj_sockaddr_cp(&udp->rem_rtp_addr, &udp->rtp_src_addr);\n",
     "            if (pj_sockaddr_has_addr(&udp->rtp_src_addr))\n"
     "                pj_sockaddr_cp(&udp->rem_rtp_addr, &udp->rtp_src_addr);\n",
     "the same race, where the UDP transport switches its remote address"),
]
SMOKE_TEST = """
import json, pjsua2 as pj
ep = pj.Endpoint(); ep.libCreate()
cfg = pj.EpConfig(); cfg.uaConfig.threadCnt = 0; cfg.uaConfig.mainThreadOnly = True
cfg.logConfig.consoleLevel = 4
ep.libInit(cfg)
facts = {"version": ep.libVersion().full, "max_calls": cfg.uaConfig.maxCalls,
         "max_conf_ports": cfg.medConfig.maxMediaPorts}
ep.libDestroy(pj.PJSUA_DESTROY_NO_NETWORK)
print("SMOKE " + json.dumps(facts), flush=True)
"""


class BuildError(Exception):
    pass


class SourceError(BuildError):
    """The source is missing or not the pinned one (nothing was compiled: no log to show)."""


def say(message: str) -> None:
    print(f"setup: {message}", flush=True)


def pin() -> dict[str, str]:
    lines = (line.split(None, 1) for line in PIN.read_text().splitlines() if line.strip() and line[0] != "#")
    return {key: value.strip() for key, value in lines}


def abi() -> str:
    return sysconfig.get_config_var("SOABI") or f"{sys.implementation.cache_tag}-{sysconfig.get_platform()}"


def cache_key() -> str:
    digest = hashlib.sha256()
    for part in (PIN.read_bytes(), CONFIG_SITE.read_bytes(), Path(__file__).read_bytes(), abi().encode()):
        digest.update(hashlib.sha256(part).digest())
    return f"{pin()['version']}-{abi()}-{digest.hexdigest()[:16]}"


def cache_root() -> Path:
    if os.environ.get("VICTORIA_PJSIP_CACHE"):
        return Path(os.environ["VICTORIA_PJSIP_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "victoria-sip" / "pjsip"


def cached_wheel() -> Path | None:
    return next((cache_root() / cache_key()).glob("pjsua2-*.whl"), None)


def installed_key() -> str | None:
    """The key of the pjsua2 this interpreter imports, if it is ours (stamped by pjsua2_build.json beside it)."""
    spec = importlib.util.find_spec("pjsua2")
    if spec is None or not spec.origin:
        return None
    try:
        return json.loads(Path(spec.origin).with_name("pjsua2_build.json").read_text())["cache_key"]
    except (OSError, ValueError, KeyError):
        return None


def tree_digest(root: Path) -> str:
    """SHA-256 of the `sha256sum` listing of every regular file, sorted by path; the same as
    `cd ROOT && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum`.
    Nothing is excluded; a symlink or any other non-regular file is refused (pjproject has none)."""
    entries = []
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory, name)
            if path.is_symlink() or not (path.is_dir() or path.is_file()):
                raise SourceError(f"the PJSIP source holds {path.relative_to(root)}, neither a regular file nor "
                                  "a directory")
        for name in files:
            relative = "./" + Path(directory, name).relative_to(root).as_posix()
            if "\\" in relative or "\n" in relative:
                raise SourceError(f"the PJSIP source holds an odd file name: {relative!r}")
            entries.append((relative.encode(), hashlib.sha256(Path(directory, name).read_bytes()).hexdigest()))
    listing = b"".join(f"{sha}  ".encode() + relative + b"\n" for relative, sha in sorted(entries))
    return hashlib.sha256(listing).hexdigest()


def source_location(version: str, url: str) -> str:
    vendored = REPO.parent / "shared" / "vendor" / f"pjproject-{version}.tar.gz"
    return os.environ.get("VICTORIA_PJPROJECT_SOURCE") or (str(vendored) if vendored.is_file() else url)


def unpack(location: str, work: Path) -> Path:
    """The source tree's root, unpacked or copied into work."""
    if re.match(r"^(https?|file)://", location):
        archive = work / "source.tar.gz"
        say(f"  PJSIP: downloading {location}")
        try:
            with urllib.request.urlopen(location, timeout=60) as response, archive.open("wb") as out:
                shutil.copyfileobj(response, out)
        except OSError as error:
            raise SourceError(f"could not download {location}: {error}; set VICTORIA_PJPROJECT_SOURCE to a copy "
                             "(a tarball or directory, see ../shared/vendor/README.md)") from error
        location = str(archive)
    path = Path(location).expanduser()
    target = work / "src"
    if path.is_dir():
        shutil.copytree(path, target / path.name, symlinks=True)
        return target / path.name
    if not path.is_file():
        raise SourceError(f"PJSIP source {location} does not exist (VICTORIA_PJPROJECT_SOURCE)")
    try:
        with tarfile.open(path) as tar:
            members = tar.getmembers()
            for member in members:
                parts = Path(member.name).parts
                if member.name.startswith("/") or ".." in parts or not (member.isfile() or member.isdir()):
                    raise SourceError(f"{location}: refusing archive member {member.name!r}")
            tops = {Path(member.name).parts[0] for member in members}
            if len(tops) != 1:
                raise SourceError(f"{location}: expected one top-level directory, found {sorted(tops)[:5]}")
            extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(target, **extra)
    except (tarfile.TarError, OSError) as error:
        raise SourceError(f"{location} is not a readable tarball: {error}") from error
    return target / tops.pop()


def apply_source_edits(root: Path) -> None:
    for name, text, replacement, why in SOURCE_EDITS:
        path = root / name
        source = path.read_text()
        if source.count(text) != 1:
            raise BuildError(f"cannot edit {name} ({why}): expected its text once, found it {source.count(text)} times")
        path.write_text(source.replace(text, replacement))


def needed_tools() -> list[str]:
    missing = [tool for tool in ("make", "gcc", "g++", "swig", "objdump") if not shutil.which(tool)]
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").is_file():
        missing.append(f"Python.h for {sys.executable} (python3-dev)")
    return missing


class Build:
    def __init__(self, key: str, log: Path):
        self.key, self.log, self.started = key, log, time.monotonic()
        self.info = pin()

    def run(self, command: list[str], cwd: Path, keep: str = "", **env: str) -> str:
        """Run command, its output appended to the log (only the lines matching keep, if given)."""
        with self.log.open("a") as log:
            log.write(f"\n$ (cd {cwd} && {' '.join(command)})\n")
            log.flush()
            result = subprocess.run(command, cwd=cwd, env={**os.environ, **env}, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, check=False)
            log.write("".join(line for line in result.stdout.splitlines(keepends=True)
                              if re.search(keep, line)) if keep and result.returncode == 0 else result.stdout)
        if result.returncode != 0:
            raise BuildError(f"`{' '.join(command[:3])}` failed (exit {result.returncode})")
        return result.stdout

    def stage(self, message: str) -> None:
        say(f"  PJSIP [{time.monotonic() - self.started:4.0f} s] {message}")

    def make_vars(self, swig: Path, name: str) -> list[str]:
        return self.run(["make", "--no-print-directory", "-f", "helper.mak", name], swig).split()

    def facts(self, root: Path, cflags: list[str]) -> dict[str, int]:
        """The compiled-in values of FACTS, by running the configured headers through the preprocessor."""
        probe = root / "victoria_facts.cpp"
        probe.write_text("#include <pjsua-lib/pjsua.h>\n" + "".join(
            f"VICTORIA_FACT {name} = {macro} ;\n" for name, macro in FACTS.items()))
        output = self.run(["g++", "-E", *cflags, str(probe)], root, keep="^VICTORIA_FACT ")
        values = {}
        for name, expression in re.findall(r"^VICTORIA_FACT (\w+) = (.*) ;$", output, re.MULTILINE):
            expression = re.sub(r"(?<=\d)[uUlL]+\b", "", expression)
            if not re.fullmatch(r"[\d\s()+\-*/]+", expression):
                raise BuildError(f"cannot read {FACTS[name]} from the headers: {expression!r}")
            values[name] = int(eval(expression.replace("/", "//")))  # digits and arithmetic only (checked)
        return values

    def build(self, out: Path, work: Path) -> None:
        version, jobs = self.info["version"], len(os.sched_getaffinity(0))
        location = source_location(version, self.info["url"])
        self.stage(f"unpacking and checking {location}")
        root = unpack(location, work)
        actual = tree_digest(root)
        if actual != self.info["tree_sha256"]:
            raise SourceError(
                f"PJSIP source refused: {location} unpacks to a tree with digest {actual}, expected "
                f"{self.info['tree_sha256']} (pjproject {version}, pinned in {PIN.relative_to(REPO)}). Use the "
                f"unmodified release {version} (tarball or unpacked tree), or unset VICTORIA_PJPROJECT_SOURCE.")
        shutil.copy(CONFIG_SITE, root / "pjlib" / "include" / "pj" / "config_site.h")
        apply_source_edits(root)
        self.stage(f"configure {' '.join(CONFIGURE_FLAGS[:3])} ...")
        self.run(["./configure", *CONFIGURE_FLAGS], root, CFLAGS=CFLAGS, CXXFLAGS=CFLAGS)
        swig = root / "pjsip-apps" / "src" / "swig" / "python"
        cflags = self.make_vars(swig, "cflags")
        facts = self.facts(root, cflags)
        if facts["ioqueue_imp"] != facts["ioqueue_imp_epoll"]:
            raise BuildError("configure did not select the epoll I/O queue")
        if not facts["ssl_sock"] or facts["ssl_imp"] != facts["ssl_imp_openssl"]:
            raise BuildError("configure found no OpenSSL: install libssl-dev (apt-get install libssl-dev)")
        if not facts["srtp"]:
            raise BuildError("the build has no SRTP (PJMEDIA_HAS_SRTP is 0)")
        self.stage(f"compiling the C libraries (make -j{jobs} lib) and, beside them, the SWIG binding (one core, "
                   "the longest step)")
        with self.log.open("a") as log:
            log.write(f"\n$ (cd {root} && make -j{jobs} lib)\n")
            log.flush()
            make = subprocess.Popen(["make", f"-j{jobs}", "lib"], cwd=root, stdout=log, stderr=subprocess.STDOUT)
        try:
            self.run(["make", "pjsua2_wrap.cpp"], swig)  # swig with the upstream Makefile's flags
            include = sysconfig.get_paths()["include"]
            self.run(["g++", "-pthread", "-fwrapv", *cflags, f"-I{include}", "-c", "pjsua2_wrap.cpp",
                      "-o", "pjsua2_wrap.o"], swig)
        except BaseException:
            make.kill()
            make.wait()
            raise
        if make.poll() is None:
            self.stage("binding compiled; waiting for the C libraries")
        if make.wait() != 0:
            raise BuildError(f"`make lib` failed (exit {make.returncode})")
        module = "_pjsua2" + sysconfig.get_config_var("EXT_SUFFIX")
        ldflags, libs = self.make_vars(swig, "ldflags"), self.make_vars(swig, "libs")
        self.run(["g++", "-shared", "-pthread", "pjsua2_wrap.o", *ldflags, *(f"-l{lib}" for lib in libs),
                  "-o", module], swig)
        if shutil.which("strip"):
            self.run(["strip", "--strip-debug", module], swig)
        needed = re.findall(r"NEEDED\s+(\S+)", self.run(["objdump", "-p", module], swig))
        if any(lib.startswith("libpj") for lib in needed):
            raise BuildError(f"{module} links PJSIP dynamically: {needed}")
        self.stage("checking the build (an Endpoint must create an epoll I/O queue)")
        stage_dir = work / "stage"
        stage_dir.mkdir()
        for name in ("pjsua2.py", module):
            shutil.copy(swig / name, stage_dir / name)
        smoke = self.run([sys.executable, "-c", SMOKE_TEST], work, PYTHONPATH=str(stage_dir))
        if "epoll I/O Queue created" not in smoke:
            raise BuildError("the built pjsua2 did not create an epoll I/O queue")
        runtime = json.loads(smoke.split("SMOKE ", 1)[1].splitlines()[0])
        if runtime["max_calls"] != facts["max_calls"]:
            raise BuildError(f"the built pjsua2 has {runtime['max_calls']} call slots, not {facts['max_calls']}")
        build_facts = {
            "built_by": "victoria-sip scripts/build_pjsip.py", "pjsip_version": runtime["version"],
            "max_calls": facts["max_calls"], "max_conf_ports": facts["max_conf_ports"],
            "max_players": facts["max_players"], "max_recorders": facts["max_recorders"],
            "ioqueue": "epoll", "ioqueue_max_handles": facts["ioqueue_max_handles"],
            "ioqueue_max_events_in_single_poll": facts["ioqueue_max_events_in_single_poll"],
            "max_tsx_count": facts["max_tsx_count"], "max_dialog_count": facts["max_dialog_count"],
            "ssl": "openssl", "srtp": bool(facts["srtp"]),
            "tls_listener_rereads_certificate": not facts["server_tls_session_reuse"],
            "video": bool(facts["video"]), "sound_device": False,
            "configure_flags": CONFIGURE_FLAGS, "cflags": CFLAGS, "links": needed,
            "source": location, "source_tree_sha256": actual, "source_commit": self.info.get("commit"),
            "config_site_sha256": hashlib.sha256(CONFIG_SITE.read_bytes()).hexdigest(),
            "python_abi": abi(), "cache_key": self.key,
            "build_seconds": round(time.monotonic() - self.started), "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (stage_dir / "pjsua2_build.json").write_text(json.dumps(build_facts, indent=1) + "\n")
        out.mkdir()
        write_wheel(out, stage_dir, version, self.key, root / "COPYING")
        shutil.copy(stage_dir / "pjsua2_build.json", out / "pjsua2_build.json")


def write_wheel(out: Path, stage_dir: Path, version: str, key: str, licence: Path) -> Path:
    """A plain wheel of stage_dir's files (top-level modules, as upstream's setup.py lays them out)."""
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    platform_tag = re.sub(r"[-.]", "_", sysconfig.get_platform())
    full_version = f"{version}+victoria.{key.rsplit('-', 1)[1][:12]}"
    dist_info = f"pjsua2-{full_version}.dist-info"
    files = {path.name: path.read_bytes() for path in sorted(stage_dir.iterdir())}
    files[f"{dist_info}/COPYING"] = licence.read_bytes()
    files[f"{dist_info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: pjsua2\nVersion: {full_version}\n"
        f"Summary: PJSIP {version} pjsua2 binding built by Victoria SIP (config/pjsip/config_site.h)\n"
        "Home-page: https://www.pjsip.org\nLicense: GPL-2.0-or-later\n").encode()
    files[f"{dist_info}/WHEEL"] = (f"Wheel-Version: 1.0\nGenerator: victoria-sip build_pjsip.py\n"
                                   f"Root-Is-Purelib: false\nTag: {tag}-{tag}-{platform_tag}\n").encode()
    record = "".join(
        f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}\n"
        for name, data in files.items()) + f"{dist_info}/RECORD,,\n"
    files[f"{dist_info}/RECORD"] = record.encode()
    wheel = out / f"pjsua2-{full_version}-{tag}-{tag}-{platform_tag}.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.external_attr = (0o755 if name.endswith(".so") else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return wheel


def lock(path: Path, timeout: float = 1800):
    handle = path.open("w")
    deadline, told = time.monotonic() + timeout, False
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            if not told:
                say(f"waiting for another build of the same PJSIP to finish (lock {path})")
                told = True
            if time.monotonic() > deadline:
                raise BuildError(f"gave up after {timeout:.0f} s waiting for the build holding {path}") from None
            time.sleep(1)


def ensure_wheel() -> Path:
    key, root = cache_key(), cache_root()
    if wheel := cached_wheel():
        return wheel
    root.mkdir(parents=True, exist_ok=True)
    with lock(root / f"{key}.lock"):
        if wheel := cached_wheel():
            return wheel
        if missing := needed_tools():
            raise BuildError(f"building PJSIP needs {', '.join(missing)}: on Debian, apt-get install "
                             "build-essential swig python3-dev libssl-dev uuid-dev (./scripts/setup.sh does)")
        log = root / f"{key}.log"
        log.write_text(f"PJSIP build {key} ({time.strftime('%Y-%m-%d %H:%M:%S')})\n")
        say(f"building PJSIP {pin()['version']} (first run only, about 2 minutes: 80 s measured on 2 cores); "
            f"log: {log}")
        build = Build(key, log)
        with tempfile.TemporaryDirectory(prefix="victoria-pjsip-") as work:
            try:
                build.build(Path(work) / "out", Path(work))
            except SourceError:
                raise
            except BuildError as error:
                tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-25:])
                raise BuildError(f"{error}\n--- last lines of {log} ---\n{tail}--- full log: {log}") from None
            staged = root / f".{key}.{os.getpid()}"
            shutil.rmtree(root / key, ignore_errors=True)  # a left-over without a wheel
            shutil.copytree(Path(work) / "out", staged)  # onto the cache's file system, then one rename
            shutil.copy(log, staged / "build.log")
            os.rename(staged, root / key)
            log.unlink()
        build.stage(f"built and cached in {root / key}")
        return cached_wheel()


def install(wheel: Path) -> None:
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    try:
        importlib.metadata.distribution("pjsua2-python")
        say("removing the pjsua2-python wheel (4 call slots, select() I/O queue)")
        subprocess.run([*pip, "uninstall", "-y", "pjsua2-python"], check=True)
    except importlib.metadata.PackageNotFoundError:
        pass
    say(f"installing {wheel.name}")
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "--force-reinstall", str(wheel)], check=True)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--check"]:
        return 0 if installed_key() == cache_key() else 1
    if argv[:1] == ["--cached"]:
        return 0 if cached_wheel() else 1
    if argv and argv[0] not in ("--wheel", "--install"):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        wheel = ensure_wheel()
        if argv[:1] == ["--wheel"]:
            print(wheel)
        elif installed_key() != cache_key():
            install(wheel)
    except BuildError as error:
        print(f"setup: {error}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as error:
        print(f"setup: installing the PJSIP wheel failed: {' '.join(error.cmd)} (exit {error.returncode})",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
