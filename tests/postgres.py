"""A throwaway PostgreSQL server for the test suite, started from the binaries on PATH
(initdb, pg_ctl) in a temporary folder. PostgreSQL refuses to run as root, so as root the
server runs as the `postgres` system user (runuser)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass


class PostgresUnavailable(RuntimeError):
    pass


def binaries_available() -> bool:
    return bool(shutil.which("initdb") and shutil.which("pg_ctl"))


@dataclass
class TemporaryPostgres:
    folder: str
    port: int
    run_as: list[str]

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        subprocess.run(
            [*self.run_as, "pg_ctl", "-D", self.data, "stop", "-m", "immediate", "-s"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.folder, ignore_errors=True)

    @property
    def data(self) -> str:
        return os.path.join(self.folder, "data")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start() -> TemporaryPostgres:
    """initdb + pg_ctl start in a new temporary folder; durability off (a test server)."""
    if not binaries_available():
        raise PostgresUnavailable("initdb/pg_ctl not found on PATH")
    folder = tempfile.mkdtemp(prefix="canteen-pg-")
    run_as: list[str] = []
    if os.geteuid() == 0:
        if not shutil.which("runuser"):
            raise PostgresUnavailable("running as root but runuser is missing")
        import pwd

        account = pwd.getpwnam("postgres")
        os.chown(folder, account.pw_uid, account.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    server = TemporaryPostgres(folder=folder, port=_free_port(), run_as=run_as)
    env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    init = subprocess.run(
        [*run_as, "initdb", "-D", server.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if init.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        raise PostgresUnavailable(f"initdb failed: {init.stderr.strip()[-500:]}")
    options = (
        f"-p {server.port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
    )
    started = subprocess.run(
        [
            *run_as,
            "pg_ctl",
            "-D",
            server.data,
            "-o",
            options,
            "-l",
            os.path.join(folder, "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if started.returncode != 0:
        log = ""
        try:
            with open(os.path.join(folder, "server.log")) as f:
                log = f.read()[-800:]
        except OSError:
            pass
        server.stop()
        raise PostgresUnavailable(f"pg_ctl start failed: {started.stderr.strip()} {log}")
    for _ in range(50):
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=1):
                break
        except OSError:
            time.sleep(0.1)
    return server
