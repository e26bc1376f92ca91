"""A private PostgreSQL server for fault tests that restart the database: `initdb` + `pg_ctl` in a
temporary folder, on a loopback port of its own, so a restart is a real one (every backend gone,
the postmaster starting again) without disturbing the machine's shared server and the other tests
using it.

Why not restart the shared server (`pg_ctlcluster 15 main restart`): every test on the machine
(and every engineer's) would see its connections reset at a moment of our choosing. initdb takes
about 3 s and the server about 0.3 s to start, once per test session (or bench run).

PostgreSQL refuses to run as root: when we are root, the binaries run as the `postgres` user
(`runuser`), and the folder is given to that user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.helpers import free_port


def find_binary(name: str) -> str | None:
    """`initdb`/`pg_ctl` on PATH, else in the newest /usr/lib/postgresql/*/bin (Debian keeps them there)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


class PrivatePostgres:
    """`with PrivatePostgres() as pg:` a running server; `pg.url(db)`, `pg.create_database()`,
    `pg.restart(down_seconds)`, `pg.stop()`."""

    def __init__(self) -> None:
        initdb, pg_ctl = find_binary("initdb"), find_binary("pg_ctl")
        if initdb is None or pg_ctl is None:
            raise FileNotFoundError("initdb/pg_ctl not found (PATH, /usr/lib/postgresql/*/bin)")
        self.initdb, self.pg_ctl = initdb, pg_ctl
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="tg-pg-"))
        self.data = self.folder / "data"
        self._as: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.folder, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self._databases = 0

    def _run(self, *command: str) -> None:
        done = subprocess.run([*self._as, *command], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {done.stdout}{done.stderr}")

    def _options(self) -> str:
        # fsync off: the tests restart the server, they do not crash the machine.
        return (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
            " -c fsync=off -c max_connections=200"
        )

    def start(self) -> PrivatePostgres:
        if not self.data.exists():
            self._run(self.initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "-N")
        self._run(
            self.pg_ctl,
            "-D",
            str(self.data),
            "-o",
            self._options(),
            "-l",
            str(self.folder / "log"),
            "-w",
            "start",
        )
        return self

    def stop(self, mode: str = "fast") -> None:
        self._run(self.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self, down_seconds: float = 0.0) -> None:
        """Stop the server (`fast`: every session terminated, as a real restart), stay down for
        `down_seconds`, and start it again."""
        self.stop("fast")
        time.sleep(down_seconds)
        self.start()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new database on this server; its URL."""
        self._databases += 1
        name = f"fault_{os.getpid()}_{self._databases}"
        admin = create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            admin.dispose()
        return self.url(name)

    def close(self) -> None:
        """Stop the server (immediately) and remove its folder."""
        with contextlib.suppress(RuntimeError):  # not running
            self._run(self.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PrivatePostgres:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()
