"""A throwaway PostgreSQL server in a temporary directory, from the machine's own server binaries.

Used by the test suite and the benchmarks: `initdb` a fresh cluster, start it on a loopback port the OS chose and
that stays held for it (tests/support/ports.py; socket file in the same directory), hand out a SQLAlchemy URL,
and remove everything on stop. When running as root, the server runs as the `postgres` user, since Postgres
refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.ports import ReservedPort


def find_bindir() -> Path:
    candidates = []
    if os.environ.get("HEADWATER_PG_BINDIR"):
        candidates.append(os.environ["HEADWATER_PG_BINDIR"])
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip()
        candidates.append(out)
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    if shutil.which("initdb"):
        candidates.append(str(Path(shutil.which("initdb")).parent))
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    raise RuntimeError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found; install them (apt-get install -y postgresql) "
        "or set HEADWATER_PG_BINDIR"
    )


class TemporaryPostgres:
    def __init__(self, database: str = "headwater", port: int | None = None, options: tuple[str, ...] = ()):
        self.bindir = find_bindir()
        self.options = options  # more server settings, e.g. ("-c shared_preload_libraries=pg_stat_statements",)
        self.database = database
        # Held for the cluster's life, through restarts: nobody else takes the port while the server is down.
        self._reserved = None if port else ReservedPort()
        self.port = port or self._reserved.port
        self.root = Path(tempfile.mkdtemp(prefix="headwater-pg-"))
        self.datadir = self.root / "data"
        self.user = "postgres"
        self._as_postgres = os.geteuid() == 0

    # -- helpers ---------------------------------------------------------------------------------------
    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        kwargs: dict = {"capture_output": True, "text": True, "check": False}
        if self._as_postgres:
            pw = pwd.getpwnam("postgres")

            def demote() -> None:
                os.setgid(pw.pw_gid)
                os.setuid(pw.pw_uid)

            kwargs["preexec_fn"] = demote
            kwargs["env"] = {**os.environ, "HOME": pw.pw_dir, "USER": "postgres"}
        result = subprocess.run(cmd, **kwargs)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{self.database}"

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> TemporaryPostgres:
        if self._as_postgres:
            pw = pwd.getpwnam("postgres")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self._run("initdb", "-D", str(self.datadir), "-U", self.user, "--auth=trust", "-E", "UTF8", "--no-sync")
        self._pg_ctl_start()
        deadline = time.time() + 30
        while time.time() < deadline:
            ok = self._run("pg_isready", "-h", "127.0.0.1", "-p", str(self.port), check=False)
            if ok.returncode == 0:
                break
            time.sleep(0.2)
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, self.database)
        return self

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "stop", check=False)

    def _pg_ctl_start(self) -> None:
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.root}",
                "-c max_connections=200",
                "-c shared_buffers=256MB",
                "-c log_min_messages=warning",
                "-c random_page_cost=1.1",  # the SSD setting Postgres documents; the default 4 fits spinning disks
                *self.options,
            ]
        )
        log = str(self.root / "server.log")
        self._run("pg_ctl", "-D", str(self.datadir), "-o", options, "-l", log, "-w", "start")

    def restart_server(self, down_seconds: float = 0.0) -> None:
        """Crash-stop the server and start it again (for fault tests)."""
        self.stop("immediate")
        time.sleep(down_seconds)
        self._pg_ctl_start()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
        if self._reserved:
            self._reserved.release()

    def __enter__(self) -> TemporaryPostgres:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()
