"""`make test`: the whole suite on SQLite, then on PostgreSQL (a server the suite starts itself).

Without PostgreSQL binaries the second half is skipped with a message, except under CI=true,
where that is a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys

from tests.postgres import binaries_available


def main() -> int:
    extra = sys.argv[1:]
    results: dict[str, int] = {}
    print("=== canteen tests on SQLite ===", flush=True)
    results["SQLite"] = subprocess.call([sys.executable, "-m", "pytest", "--db=sqlite", *extra])
    if binaries_available() or os.environ.get("CANTEEN_TEST_POSTGRES_URL"):
        print("=== canteen tests on PostgreSQL ===", flush=True)
        results["PostgreSQL"] = subprocess.call([sys.executable, "-m", "pytest", "--db=postgresql", *extra])
    elif os.environ.get("CI", "").lower() == "true":
        print("PostgreSQL binaries (initdb, pg_ctl) not found and CI=true: the PostgreSQL half is required.")
        results["PostgreSQL"] = 1
    else:
        print("NOTE: PostgreSQL binaries (initdb, pg_ctl) not found on PATH: the PostgreSQL half was SKIPPED.")
    print("=== summary: " + ", ".join(f"{k}: {'passed' if v == 0 else 'FAILED'}" for k, v in results.items()))
    return 0 if all(v == 0 for v in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
