"""Benchmarks run by `make bench` (`python -m bench`): shared set-up — a PostgreSQL database per
benchmark, the app made for it and migrated — plus percentiles and progress lines."""

from __future__ import annotations

import base64
import contextlib
import math
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence

TARGET_NOTE = "this machine: {cores} cores shared by the load generator, the app code and the database"


def bench_keys() -> dict[str, str]:
    """Fresh keys for one benchmark run (the data is thrown away afterwards)."""
    return {
        "SECRET_KEY": "bench-" + uuid.uuid4().hex,
        "CANTEEN_DATA_KEY": "b1:" + base64.b64encode(os.urandom(32)).decode(),
        "CANTEEN_INDEX_KEY": base64.b64encode(os.urandom(32)).decode(),
    }


def progress(message: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {message}", flush=True)


@contextlib.contextmanager
def postgres_databases() -> Iterator[Callable[[str], str]]:
    """Yield `make(label) -> url`, which creates a new empty database for one benchmark.

    On the server named by $BENCH_DATABASE_URL (any database on it; the benchmark creates and
    drops its own) or else on a throwaway server started like the test suite's (tests.postgres).
    """
    import psycopg

    from tests import postgres

    server = None
    base = os.environ.get("BENCH_DATABASE_URL")
    if base:
        base = base.replace("postgres://", "postgresql://", 1).replace("postgresql+psycopg://", "postgresql://", 1)
    else:
        progress("starting a throwaway PostgreSQL server (tests.postgres)")
        server = postgres.start()
        base = server.admin_url.replace("postgresql+psycopg://", "postgresql://", 1)
    made: list[str] = []

    def make(label: str) -> str:
        name = f"canteen_bench_{label}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(base, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return "postgresql+psycopg://" + base.split("://", 1)[1].rsplit("/", 1)[0] + "/" + name

    try:
        yield make
    finally:
        if server is not None:
            server.stop()
        else:
            with psycopg.connect(base, autocommit=True) as connection:
                for name in made:
                    connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_app(database_url: str, *, migrate: bool = True):
    """The app on `database_url` with test settings and fresh keys, migrated to the latest schema."""
    os.environ["CANTEEN_ENV"] = "testing"
    import flask_migrate

    from canteen import create_app

    app = create_app({"DATABASE_URL": database_url, **bench_keys()})
    if migrate:
        with app.app_context():
            flask_migrate.upgrade()
    return app


def percentile(samples: Sequence[float], p: float) -> float:
    """The p-th percentile by the nearest-rank method (p in 0..100)."""
    ordered = sorted(samples)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def machine_note() -> str:
    return TARGET_NOTE.format(cores=cores()) + f"; Python {sys.version.split()[0]}"
