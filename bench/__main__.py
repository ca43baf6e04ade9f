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
- bench/meal_recording.py — POST /api/v1/meals served by gunicorn at 100,000 residents: meals/s
  and p50/p99 in a closed loop of 16 connections, p99 at 200 meals/s offered (open loop), the
  same for a bare one-row insert endpoint of the same app (the ceiling) and the ratio; targets
  ≥ 300 meals/s, p99 ≤ 100 ms, ratio ≥ 0.5. About 6 minutes: 30 s to load, three gunicorn
  configurations probed, the best one measured (an overloaded open loop runs up to 1.5 times
  its schedule).

Options: `python -m bench [NAME ...]` runs only the named benchmarks (`python -m bench
meal_recording`); BENCH_RESIDENTS and BENCH_QUERIES (per kind) shrink the resident search for a
quick look; BENCH_QUICK=1 runs the meal recording at smoke-test size, and BENCH_RESIDENTS,
BENCH_SECONDS, BENCH_CONNECTIONS, BENCH_RATE, BENCH_SERVERS (e.g. "sync:4,gthread:4x2") size it.
Exit status 1 when a benchmark misses its target.
"""

from __future__ import annotations

import importlib
import signal
import sys
import time

from bench import make_app, postgres_databases, progress

BENCHMARKS = ("resident_search", "meal_recording")


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
