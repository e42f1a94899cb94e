"""A throwaway PostgreSQL server from Debian's packages, on 127.0.0.1 and a socket in a temp dir."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support.processes import LOOPBACK, free_port


def postgres_bin() -> Path | None:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return versions[-1].parent if versions else None


class Postgres:
    def __init__(self) -> None:
        self.bin = postgres_bin()
        if self.bin is None:
            raise RuntimeError("PostgreSQL is not installed: run ./scripts/setup.sh (package postgresql)")
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="victoria-pg-"))
        self.root.chmod(0o755)
        self.data = self.root / "data"
        self.url = f"postgresql://victoria@{LOOPBACK}:{self.port}/postgres"

    def _run(self, *command: str) -> None:
        # initdb refuses to run as root: run the server as the postgres system user then
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(prefix + list(command), check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "victoria")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-t", "30", "-l", str(self.root / "log"),
                  "-o", f"-p {self.port} -k {self.root} -c listen_addresses={LOOPBACK}", "start")

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
