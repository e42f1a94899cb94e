"""The Dockerfile, without a Docker engine (none runs here): hadolint lints it, and its RUN steps run in a plain
shell on this machine, so what the image installs is known to install. Every command of every RUN step needs
a rule below: a new step without one fails the test instead of going unchecked."""

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", "\n".join(line for line in DOCKERFILE.read_text().splitlines()
                                          if not line.lstrip().startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in text.splitlines() if line.strip()]


def test_hadolint_finds_nothing():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_is_what_the_issue_asks_for():
    steps = instructions()
    bases = [args for kind, args in steps if kind == "FROM"]
    assert len(bases) == 2 and all(base.startswith("debian:bookworm-slim") for base in bases), "multi-stage, slim"
    user = [args for kind, args in steps if kind == "USER"][-1]
    assert user.split(":")[0] not in ("0", "root"), "runs as a non-root user"
    assert any(kind == "HEALTHCHECK" and "/readyz" in args for kind, args in steps)
    exposed = " ".join(args for kind, args in steps if kind == "EXPOSE").split()
    assert {"5060/udp", "40000-40999/udp", "9100/tcp"} <= set(exposed)
    volumes = " ".join(args for kind, args in steps if kind == "VOLUME")
    assert "/models" in volumes and "/var/lib/victoria-sip" in volumes
    assert "/config/victoria.toml" in [args for kind, args in steps if kind == "CMD"][-1]


def test_compose_runs_victoria_ollama_prometheus_and_optional_postgres():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"victoria", "ollama", "prometheus", "postgres"}
    assert services["postgres"]["profiles"] == ["postgres"], "PostgreSQL only when asked for"
    assert all(service["network_mode"] == "host" for service in services.values()), "SIP/RTP need the host network"
    assert int(services["victoria"]["stop_grace_period"].rstrip("s")) > 60, "longer than the drain deadline"
    for volume in services["victoria"]["volumes"] + services["prometheus"]["volumes"]:
        source = volume.split(":")[0]
        if source.startswith("./config/"):
            assert (ROOT / source).is_file(), f"{source} is shipped"


@pytest.mark.skipif(os.geteuid() != 0, reason="apt-get install needs root (CI runs as root)")
def test_every_run_step_runs_in_a_plain_shell(tmp_path):
    """The RUN steps with /opt/victoria moved into tmp_path; apt list clean-up and the system user skipped."""
    context = tmp_path / "src"
    context.mkdir()
    for name in ("pyproject.toml", "README.md", "scripts/build_pjsip.py"):
        (context / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, context / name)
    for name in ("victoria_sip", "config/pjsip"):
        shutil.copytree(ROOT / name, context / name, ignore=shutil.ignore_patterns("__pycache__"))
    # PJSIP: the wheel setup.sh built and cached is reused (same cache key); on a miss, built from the vendored copy
    vendored = ROOT.parent / "shared" / "vendor" / "pjproject-2.17.tar.gz"
    pjsip_env = {"VICTORIA_PJPROJECT_SOURCE": str(vendored)} if vendored.is_file() else {}
    prefix = tmp_path / "opt" / "victoria"
    ran = []
    for kind, arguments in instructions():
        if kind != "RUN":
            continue
        for command in (part.strip() for part in arguments.split("&&")):
            words = shlex.split(command)
            if words[:2] == ["apt-get", "update"]:
                continue  # CI's setup already did; the install below proves the packages resolve
            if words[:2] == ["apt-get", "install"]:
                run(words, cwd=tmp_path)
            elif words[:2] == ["rm", "-rf"] and words[2:] == ["/var/lib/apt/lists/*"]:
                continue  # clean-up of the image's layer, not of this machine
            elif words[:3] == ["python3", "-m", "venv"]:
                run(["python3", "-m", "venv", str(prefix)], cwd=context)
            elif words[:2] == ["/opt/victoria/bin/python", "scripts/build_pjsip.py"]:
                run([str(prefix / "bin" / "python"), *words[1:]], cwd=context, timeout=1800, env=pjsip_env)
            elif words[0] == "/opt/victoria/bin/pip":
                run([str(prefix / "bin" / "pip"), *words[1:]], cwd=context, timeout=900)
            elif words[0] == "useradd":
                assert "--uid" in words and shutil.which("useradd"), command  # not on this machine: checked only
                continue
            elif words[:2] == ["mkdir", "-p"]:
                run(["mkdir", "-p", *(str(tmp_path / w.lstrip("/")) for w in words[2:])], cwd=tmp_path)
            else:
                pytest.fail(f"no rule for the Dockerfile step {command!r}: add one to this test")
            ran.append(words[0])
    assert {"apt-get", "python3", "/opt/victoria/bin/python", "/opt/victoria/bin/pip"} <= set(ran)
    read_slots = "import json, pathlib, pjsua2; print(json.loads(pathlib.Path(pjsua2.__file__).with_name(" \
                 "'pjsua2_build.json').read_text())['max_calls'])"
    facts = run([str(prefix / "bin" / "python"), "-c", read_slots], cwd=tmp_path)
    assert int(facts) >= 512, "the image's pjsua2 is PJSIP built by scripts/build_pjsip.py"
    version = run([str(prefix / "bin" / "victoria-sip"), "--version"], cwd=tmp_path)
    assert "victoria" in version.lower()
    check = run([str(prefix / "bin" / "victoria-sip"), "check-config", str(ROOT / "config" / "victoria.example.toml")],
                cwd=tmp_path, env={"VICTORIA_MEDIA_DIR": str(ROOT / "media"),
                                     "VICTORIA_ACCOUNT_RECEPTION_PASSWORD": "change-me"})
    assert "agent reception" in check


def run(command: list[str], cwd: Path, timeout: float = 300, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive", **(env or {})})
    assert result.returncode == 0, f"{command}: {result.stdout[-2000:]}{result.stderr[-2000:]}"
    return result.stdout
