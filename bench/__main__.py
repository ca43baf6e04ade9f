"""`make bench` (`python -m bench`): run every benchmark on PostgreSQL and print its figures.

Each benchmark gets a new database on a throwaway PostgreSQL server started like the test
suite's (tests/postgres.py: initdb + pg_ctl from PATH, fsync off), or on the server named by
$BENCH_DATABASE_URL (a URL of any database there; the benchmark creates its own database and
drops it afterwards). The app is made with CANTEEN_ENV=testing and fresh keys, and migrated.

Benchmarks (DESIGN.md "Benchmarks: what each figure means"):
- bench/resident_search.py — counter search p50/p95/p99 per kind at 500,000 residents, target
  p95 ≤ 20 ms; EXPLAIN of one search per kind. On 2 cores: about 1.5 minutes to load, then
  1,200 timed searches — about 6 minutes while ID-tail and pinyin searches read their whole
  district (each ~0.4 s), well under a minute once they use their indexes.

Options: `python -m bench [NAME ...]` runs only the named benchmarks; BENCH_RESIDENTS and
BENCH_QUERIES (per kind) shrink the resident search for a quick look. Exit status 1 when a
benchmark misses its target.
"""

from __future__ import annotations

import importlib
import signal
import sys
import time

from bench import make_app, postgres_databases, progress

BENCHMARKS = ("resident_search",)


def main(argv: list[str]) -> int:
    names = argv or list(BENCHMARKS)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    # a terminated run still stops its PostgreSQL server and drops its databases (the `finally`s)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    results: dict[str, bool] = {}
    started = time.perf_counter()
    with postgres_databases() as make_database:
        for name in names:
            module = importlib.import_module(f"bench.{name}")
            progress(f"{name}: creating and migrating a database")
            app = make_app(make_database(name))
            results[name] = module.run(app)
            with app.app_context():
                from canteen.extensions import db

                db.engine.dispose()
    print(f"\n== benchmarks done in {time.perf_counter() - started:.0f} s: ", end="")
    print(", ".join(f"{name} {'met its target' if met else 'MISSED its target'}" for name, met in results.items()))
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
