"""Downloads models into ``models/``: official URL, SHA-256 check, progress, safe unpacking.

    pull(CATALOG["vosk-model-small-en-us-0.15"], Path("models"), progress)  ->  models/vosk-model-small-en-us-0.15

The archive is streamed to ``models/.partial/`` while its SHA-256 is computed,
checked against the published value, unpacked into a temporary directory
(refusing members that would land outside it), checked to be a model of its
kind, and only then renamed into place: a failed or interrupted pull never
leaves a half model where Victoria would load it.
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from victoria_sip.adapters.stt_vosk import check_model_dir
from victoria_sip.errors import ModelError

CHUNK_BYTES = 1 << 20
TIMEOUT_SECONDS = 30.0

Progress = Callable[[int, int | None], None]  # (bytes so far, total bytes or None)


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    kind: str  # "vosk"
    url: str
    sha256: str
    approx_mb: int


CATALOG = {
    spec.name: spec
    for spec in (
        # Vosk's small US English model (Apache-2.0), as published by Alpha Cephei.
        ModelSpec(
            name="vosk-model-small-en-us-0.15",
            kind="vosk",
            url="https://alphacephei.com/vosk/models/vosk-model-small-en-us-0.15.zip",
            sha256="30f26242c4eb449f948e42cb302dd7a686cb29a3423a8367f99ff41780942498",
            approx_mb=40,
        ),
    )
}

_VALIDATORS = {"vosk": check_model_dir}


def installed(spec: ModelSpec, models_dir: Path) -> bool:
    try:
        _VALIDATORS[spec.kind](models_dir / spec.name)
    except ModelError:
        return False
    return True


def pull(spec: ModelSpec, models_dir: Path, progress: Progress | None = None) -> Path:
    """Download, verify and unpack ``spec`` into ``models_dir/NAME``; a no-op if it is already there."""
    target = models_dir / spec.name
    if installed(spec, models_dir):
        return target
    partial_dir = models_dir / ".partial"
    partial_dir.mkdir(parents=True, exist_ok=True)
    archive = partial_dir / Path(spec.url.split("?")[0]).name
    try:
        digest = _download(spec.url, archive, progress)
        if digest != spec.sha256.lower():
            raise ModelError(f"{spec.name}: checksum mismatch (expected {spec.sha256}, got {digest}); "
                             "the download is corrupt or not the published file")
        with tempfile.TemporaryDirectory(dir=partial_dir) as scratch:
            root = _unpack(archive, Path(scratch))
            _VALIDATORS[spec.kind](root)
            if target.exists():
                shutil.rmtree(target)
            root.rename(target)
    finally:
        archive.unlink(missing_ok=True)
    return target


def _download(url: str, destination: Path, progress: Progress | None) -> str:
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response, open(destination, "wb") as out:
            total = int(response.headers["Content-Length"]) if response.headers.get("Content-Length") else None
            done = 0
            while chunk := response.read(CHUNK_BYTES):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
    except urllib.error.HTTPError as exc:
        raise ModelError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ModelError(f"download of {url} failed: {reason} (no network? copy the archive by hand)") from exc
    if total is not None and done != total:
        raise ModelError(f"download of {url} stopped at {done} of {total} bytes")
    return digest.hexdigest()


def _unpack(archive: Path, into: Path) -> Path:
    """Unpack safely; returns the model's root (the archive's single top directory, or ``into``)."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zipped:
            for member in zipped.namelist():
                _refuse_escape(into, member)
            zipped.extractall(into)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tarred:
            for member in tarred.getmembers():
                _refuse_escape(into, member.name)
                if member.issym() or member.islnk():
                    _refuse_escape(into, str(Path(member.name).parent / member.linkname))
            tarred.extractall(into)
    else:
        raise ModelError(f"{archive.name} is neither a zip nor a tar archive")
    entries = list(into.iterdir())
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else into


def _refuse_escape(root: Path, member: str) -> None:
    resolved = (root / member).resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise ModelError(f"the archive member {member!r} would be written outside the model directory")
