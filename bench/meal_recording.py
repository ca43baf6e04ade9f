"""Meal recording under load: `POST /api/v1/meals` served by gunicorn on PostgreSQL, against the
ceiling of a bare endpoint of the same app (DESIGN.md "Benchmarks: what each figure means").

The city: the demo city's 7 districts, 16 canteens and meal points, their accounts and its subsidy
policy per district (through the services; `policy_rules` below fills in a district without one):
rules for aged_60_plus, aged_80_plus, subsistence, extreme_poverty and more, per-meal and per-day
units, caps, a minimum price, so the decision is really made; one API token per canteen staff
account, and ≥ 100,000 residents COPYed as the registry writes
them (bench.resident_search.load_residents: encrypted identity, blind indexes, meal cards for 95 %,
an eligibility category for 30 %, born 1930–1965 so everyone is 60+ and about a third 80+), each
with the 'active' status entry registration makes.

The server: gunicorn serving `bench.meal_app:create_app()` (the real app with CANTEEN_ENV=production
settings, plus the bare endpoint) in a few worker configurations; a short closed-loop probe of each
picks the fastest, which then gets the full measurement.

The load: a lean asyncio client in this process (raw HTTP/1.1 over keep-alive sockets, requests
built in a few microseconds) sharing the machine with gunicorn and PostgreSQL. Each connection is
one canteen's counter (its staff token, its canteen id). Every meal is a distinct (resident, slot)
pair of today (Asia/Shanghai) — so no 409s — with a new Idempotency-Key; about half give
`card_no` (a card scanned at the counter), the rest `resident_id`.
- closed loop: N connections, each sending its next request when the previous one is answered;
  throughput and p50/p99 over the measuring window (after a warm-up);
- open loop: sends scheduled at fixed intervals (the offered rate) regardless of answers, on a
  pool of connections; latency counts from the *scheduled* send time, so a server (or client)
  falling behind shows as queueing instead of being hidden (coordinated omission);
- when the meals endpoint cannot sustain the offered rate, an open loop at half its closed-loop
  rate as well (beyond capacity an open loop measures only the queue);
- the same closed and open loops for the bare endpoint (`bench/meal_app.py`: same app, same
  auth, one INSERT and COMMIT), and the ratio meals/s ÷ bare inserts/s.
The CPU each run used is read from /proc: gunicorn's processes, the benchmark database's
PostgreSQL backends, this client, and everything else on the machine (which depresses the figures).
Afterwards the database is checked against the answers: meals added = 201 answers of the meals
endpoint, idempotency rows = 201 answers of both, no non-2xx answer, audit chains intact.

Sizes: $BENCH_RESIDENTS (default 100,000), $BENCH_SECONDS (measuring window per run, default 20),
$BENCH_CONNECTIONS (closed loop, default 16), $BENCH_RATE (open loop, default 200/s),
$BENCH_SERVERS (e.g. "sync:4,gthread:4x4": the configurations probed; default below).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import sqlalchemy as sa

from bench import cores, machine_note, percentile, progress

ROOT = Path(__file__).resolve().parent.parent
MEALS_PATH = "/api/v1/meals"
TARGET_MEALS_PER_S = 300.0
TARGET_P99_MS = 100.0
TARGET_RATIO = 0.5
DEFAULT_RESIDENTS = 100_000
DEFAULT_SECONDS = 20.0
DEFAULT_CONNECTIONS = 16
DEFAULT_RATE = 200.0
PROBE_SECONDS = 8.0
WARMUP_SECONDS = 3.0
OPEN_LOOP_CONNECTIONS = 64  # the open loop's pool: enough that sends are never held back by it
SLOT_PRICES_FEN = {"breakfast": 500, "lunch": 1200, "dinner": 1000}  # the demo city's canteen prices
CARD_SHARE = 0.5  # requests naming the resident by card_no (a card scanned) rather than resident_id
SLOTS = ("breakfast", "lunch", "dinner")
MODES = (("dine_in", 85), ("pickup", 10), ("delivery", 5))


@dataclass(frozen=True)
class ServerConfig:
    """A gunicorn worker configuration: `sync:4` or `gthread:4x2` (workers x threads)."""

    worker_class: str
    workers: int
    threads: int = 1

    @classmethod
    def parse(cls, text: str) -> ServerConfig:
        kind, _, size = text.strip().partition(":")
        workers, _, threads = size.partition("x")
        return cls(kind, int(workers), int(threads or 1))

    @property
    def label(self) -> str:
        if self.worker_class == "sync":
            return f"{self.workers} sync workers"
        return f"{self.workers} {self.worker_class} workers x {self.threads} threads"


# 2 cores: one worker per core and a few more to cover database waits; sync workers answer one
# request at a time (Connection: close), gthread workers keep connections alive
DEFAULT_SERVERS = (ServerConfig("sync", 4), ServerConfig("gthread", 4, 2), ServerConfig("gthread", 3, 4))
QUICK_SERVERS = (ServerConfig("gthread", 2, 2),)


@dataclass(frozen=True)
class Settings:
    residents: int = DEFAULT_RESIDENTS
    seconds: float = DEFAULT_SECONDS
    probe_seconds: float = PROBE_SECONDS
    warmup: float = WARMUP_SECONDS
    connections: int = DEFAULT_CONNECTIONS
    rate: float = DEFAULT_RATE
    servers: tuple[ServerConfig, ...] = DEFAULT_SERVERS

    @classmethod
    def from_environment(cls, *, quick: bool = False) -> Settings:
        base = cls.quick() if quick else cls()
        servers = os.environ.get("BENCH_SERVERS")
        return cls(
            residents=int(os.environ.get("BENCH_RESIDENTS", base.residents)),
            seconds=float(os.environ.get("BENCH_SECONDS", base.seconds)),
            probe_seconds=base.probe_seconds,
            warmup=base.warmup,
            connections=int(os.environ.get("BENCH_CONNECTIONS", base.connections)),
            rate=float(os.environ.get("BENCH_RATE", base.rate)),
            servers=tuple(ServerConfig.parse(s) for s in servers.split(",")) if servers else base.servers,
        )

    @classmethod
    def quick(cls) -> Settings:
        """The smoke test's sizes: a small city, one server configuration, runs of a few seconds."""
        return cls(
            residents=2000, seconds=2.0, probe_seconds=1.0, warmup=0.5, connections=8, rate=50.0, servers=QUICK_SERVERS
        )


# --- the city --------------------------------------------------------------------------------------
@dataclass
class City:
    counters: list[tuple[int, str]]  # (canteen id, bearer token of its staff account), canteens open that day
    residents: list[tuple[int, str | None]]  # (resident id, active card number)
    served_on: date
    load_seconds: float = 0.0
    subsidy_rules: int = 0  # in all the districts' policies


def policy_rules(district_index: int) -> list[dict]:
    """A district's rules: every 60+ resident gets something, 80+ and subsistence more, extreme
    poverty most (above a minimum price); per-day and per-month caps, so a resident's second meal
    of a day or slot is priced against the first."""
    bonus = 50 * (district_index % 3)  # districts differ a little
    return [
        {"category": "aged_60_plus", "slot": "any", "amount_fen": 300 + bonus, "max_per_day": 2},
        {"category": "aged_80_plus", "slot": "any", "amount_fen": 500 + bonus, "max_per_day": 2},
        {"category": "subsistence", "slot": "lunch", "amount_fen": 800, "unit": "per_day"},
        {"category": "subsistence", "slot": "dinner", "amount_fen": 600, "max_per_month": 31},
        {"category": "extreme_poverty", "slot": "any", "amount_fen": 1000, "min_price_fen": 1000, "max_per_month": 90},
    ]


def prepare(app, *, residents: int) -> City:
    """Organisation, accounts, policies and tokens through the services; residents by COPY;
    status history by one INSERT … SELECT; then VACUUM ANALYZE. Commits."""
    from bench import resident_search
    from canteen.auth import service as auth_service
    from canteen.core import clock, scoping
    from canteen.extensions import db
    from canteen.subsidies import service as subsidy_service

    served_on = clock.today()
    with app.app_context():
        progress("demo city: districts, canteens, accounts (through the services)")
        city = resident_search.prepare_city()
        with scoping.unrestricted():
            for index, district in enumerate(sorted(city.districts.values(), key=lambda d: d.id)):
                if subsidy_service.policy_in_force(district.id, served_on) is not None:
                    continue  # the demo city's own policy
                subsidy_service.create_policy(
                    district_id=district.id,
                    name=f"{district.name}助餐补贴（基准）",
                    valid_from=date(2025, 1, 1),
                    operator_allowance_fen=100,
                    rules=policy_rules(index),
                )
            counters = []
            for user in sorted(city.users.values(), key=lambda u: u.id):
                if user.role != scoping.CANTEEN_STAFF:
                    continue
                canteen = next(c for c in city.canteens.values() if c.id == user.canteen_id)
                if canteen.active and not canteen.is_closed_on(served_on):
                    counters.append((canteen.id, auth_service.issue_token(user=user, name="bench").token))
        db.session.commit()
        pool_district = next(iter(city.districts.values())).id
        connection = db.session.connection()
        loaded = resident_search.load_residents(connection, city, count=residents, pool_district_id=pool_district)
        # what registration writes next to the resident: the first status entry
        connection.execute(
            sa.text(
                "INSERT INTO resident_status_changes "
                "(resident_id, status, effective_on, reason, source, recorded_by_id, recorded_at) "
                "SELECT id, 'active', registered_on, 'registered', 'registration', registered_by_id, created_at "
                "FROM residents ORDER BY id"
            )
        )
        db.session.commit()
        started = time.perf_counter()
        with db.engine.connect() as autocommit:
            autocommit.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
        progress(f"status history and VACUUM ANALYZE in {time.perf_counter() - started:.1f} s")
        subsidy_rules = db.session.scalar(sa.text("SELECT count(*) FROM subsidy_rules"))
        rows = db.session.execute(
            sa.text(
                "SELECT r.id, c.card_no FROM residents r "
                "LEFT JOIN meal_cards c ON c.resident_id = r.id AND c.status = 'active' ORDER BY r.id"
            )
        ).all()
        db.session.remove()
    return City(
        counters=counters,
        residents=[(row[0], row[1]) for row in rows],
        served_on=served_on,
        load_seconds=loaded.seconds,
        subsidy_rules=subsidy_rules,
    )


# --- requests --------------------------------------------------------------------------------------
class Requests:
    """Raw HTTP requests: each meal a (resident, slot) pair never used before, with a new key."""

    def __init__(self, city: City, port: int, *, seed: int = 2026) -> None:
        self.city = city
        self.host = f"127.0.0.1:{port}".encode()
        self.rng = random.Random(seed)
        pairs = list(range(len(city.residents) * len(SLOTS)))
        self.rng.shuffle(pairs)
        self.pairs = iter(pairs)
        self.modes = [mode for mode, weight in MODES for _ in range(weight)]

    def _body(self, counter: int, pair: int) -> bytes:
        canteen_id, _token = self.city.counters[counter % len(self.city.counters)]
        resident_id, card_no = self.city.residents[pair // len(SLOTS)]
        fields: dict = {"canteen_id": canteen_id}
        if card_no is not None and self.rng.random() < CARD_SHARE:
            fields.update(card_no=card_no, verification="card")
        else:
            fields.update(resident_id=resident_id, verification=self.rng.choice(("face", "qr", "id_card")))
        slot = SLOTS[pair % len(SLOTS)]
        fields.update(
            served_on=self.city.served_on.isoformat(),
            slot=slot,
            mode=self.rng.choice(self.modes),
            price_fen=SLOT_PRICES_FEN[slot],
            payment_method=self.rng.choice(("cash", "wechat", "alipay")),
        )
        return json.dumps(fields, separators=(",", ":")).encode()

    def _request(self, path: str, counter: int, body: bytes) -> bytes:
        token = self.city.counters[counter % len(self.city.counters)][1]
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host.decode()}\r\nAuthorization: Bearer {token}\r\n"
            f"Idempotency-Key: {uuid.uuid4()}\r\nContent-Type: application/json\r\nAccept: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    def meal(self, counter: int) -> bytes:
        """The next meal at `counter`'s canteen: a pair never sent before."""
        pair = next(self.pairs, None)
        if pair is None:
            raise RuntimeError("every (resident, slot) pair of the day is used: load more residents (BENCH_RESIDENTS)")
        return self._request(MEALS_PATH, counter, self._body(counter, pair))

    def bare(self, counter: int) -> bytes:
        """A bare insert with a meal's body (same size and parsing), consuming no pair."""
        from bench.meal_app import BARE_PATH

        pair = self.rng.randrange(len(self.city.residents) * len(SLOTS))
        return self._request(BARE_PATH, counter, self._body(counter, pair))


# --- CPU accounting (Linux /proc) -------------------------------------------------------------------
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _processes() -> dict[int, tuple[int, float, str]]:
    """pid -> (parent pid, CPU seconds used so far, command line) of every process visible."""
    found: dict[int, tuple[int, float, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                command = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile
        found[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK, command)
    return found


def _machine_busy() -> float:
    """CPU seconds the whole machine has spent busy (all cores, idle and I/O wait excluded)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (values + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / _TICK


@dataclass
class CpuUse:
    """CPU seconds used during a run: by the app (gunicorn and its workers), by the database (the
    benchmark database's server processes), by this client, and by everything else on the machine."""

    app: float = 0.0
    database: float = 0.0
    client: float = 0.0
    machine: float = 0.0
    wall: float = 0.0

    @property
    def others(self) -> float:
        return max(0.0, self.machine - self.app - self.database - self.client)


class CpuMeter:
    """Snapshots of /proc around a run; `None` where /proc is not available."""

    def __init__(self, server_pid: int, database: str) -> None:
        self.server_pid, self.database = server_pid, database

    def snapshot(self) -> tuple[float, float, float, float, float] | None:
        if not os.path.exists("/proc/stat"):
            return None
        processes = _processes()
        children: dict[int, list[int]] = {}
        for pid, (parent, _cpu, _command) in processes.items():
            children.setdefault(parent, []).append(pid)
        app, stack = 0.0, [self.server_pid]
        while stack:
            pid = stack.pop()
            if pid in processes:
                app += processes[pid][1]
                stack.extend(children.get(pid, ()))
        database = sum(
            cpu
            for _parent, cpu, command in processes.values()
            if command.startswith("postgres") and self.database in command
        )
        times = os.times()
        return app, database, times.user + times.system, _machine_busy(), time.perf_counter()

    @staticmethod
    def used(before, after) -> CpuUse | None:
        if before is None or after is None:
            return None
        app, database, client, machine, wall = (b - a for a, b in zip(before, after, strict=True))
        return CpuUse(app=app, database=database, client=client, machine=machine, wall=wall)


# --- the client ------------------------------------------------------------------------------------
class Connection:
    """One client connection speaking just enough HTTP/1.1: Content-Length bodies, keep-alive
    when the server keeps it (gthread), a new connection when it closes (sync workers)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.used = 0  # requests answered on the current socket

    async def _connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.used = 0

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def send(self, data: bytes) -> tuple[int, bytes, bool]:
        """(status, body, replayed). A kept-alive socket the server closed while idle is reopened
        and the same bytes sent again — the same Idempotency-Key, so never a second meal."""
        for attempt in (1, 2):
            if self.writer is None:
                await self._connect()
            reused = self.used > 0
            try:
                return await self._exchange(data)
            except (asyncio.IncompleteReadError, ConnectionError):
                self.close()
                if attempt == 2 or not reused:
                    raise
        raise AssertionError("unreachable")

    async def _exchange(self, data: bytes) -> tuple[int, bytes, bool]:
        assert self.reader is not None and self.writer is not None
        self.writer.write(data)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length, close, replayed = 0, False, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection":
                close = value.strip().lower() == b"close"
            elif name == b"idempotent-replayed":
                replayed = True
        body = await self.reader.readexactly(length) if length else b""
        self.used += 1
        if close:
            self.close()
        return status, body, replayed


@dataclass
class Run:
    """One load run: every answer's status, and the latencies (ms) of the measuring window."""

    name: str
    mode: str  # "closed" | "open"
    connections: int
    offered_rate: float | None = None
    seconds: float = 0.0  # the measuring window
    statuses: Counter[int] = field(default_factory=Counter)  # every answer, warm-up included
    latencies: list[float] = field(default_factory=list)
    completed: int = 0  # answered inside the measuring window
    transport_errors: int = 0
    replayed: int = 0
    unsent: int = 0  # open loop: scheduled sends given up on (the server fell too far behind)
    max_send_lag_ms: float = 0.0  # open loop: how late the client itself sent (all connections busy)
    error_samples: list[str] = field(default_factory=list)
    cpu: CpuUse | None = None  # during the whole run, warm-up included

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    def cpu_ms_per_request(self) -> dict[str, float] | None:
        """CPU milliseconds per answered request: app, database, client, others."""
        if self.cpu is None or not self.answered:
            return None
        per, cpu = 1000 / self.answered, self.cpu
        return {
            "app": cpu.app * per,
            "database": cpu.database * per,
            "client": cpu.client * per,
            "others": cpu.others * per,
        }

    @property
    def throughput(self) -> float:
        return self.completed / self.seconds if self.seconds else 0.0

    def p(self, q: float) -> float:
        return percentile(self.latencies, q)

    @property
    def created(self) -> int:
        return self.statuses[201]

    @property
    def not_2xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)


def _note(run: Run, status: int, body: bytes) -> None:
    if not 200 <= status < 300 and len(run.error_samples) < 5:
        run.error_samples.append(f"{status} {body[:300].decode(errors='replace').strip()}")


async def closed_loop(
    name: str, port: int, make: Callable[[int], bytes], *, connections: int, seconds: float, warmup: float
) -> Run:
    """`connections` counters, each sending its next request as soon as the previous is answered."""
    run = Run(name, "closed", connections, seconds=seconds)
    start = time.perf_counter()
    measure_from, end = start + warmup, start + warmup + seconds

    async def counter(index: int) -> None:
        connection = Connection(port)
        try:
            while True:
                sent = time.perf_counter()
                if sent >= end:
                    return
                data = make(index)
                try:
                    status, body, replayed = await connection.send(data)
                except (OSError, asyncio.IncompleteReadError) as error:
                    run.transport_errors += 1
                    _note(run, 0, repr(error).encode())
                    await asyncio.sleep(0.05)
                    continue
                done = time.perf_counter()
                run.statuses[status] += 1
                run.replayed += replayed
                _note(run, status, body)
                if measure_from <= sent and done <= end:
                    run.latencies.append((done - sent) * 1000)
                if measure_from <= done <= end:
                    run.completed += 1
        finally:
            connection.close()

    await asyncio.gather(*(counter(i) for i in range(connections)))
    return run


async def open_loop(
    name: str, port: int, make: Callable[[int], bytes], *, rate: float, seconds: float, warmup: float, pool: int
) -> Run:
    """Sends scheduled every 1/`rate` s whatever the answers; latency from the scheduled time.

    A pool of `pool` connections takes the sends in turn: a free one sleeps until the next
    scheduled time; if none is free, the send goes out late and the wait counts in its latency.
    A server that cannot keep up falls further behind with every send: past 1.5 times the
    schedule's length the rest is not sent (`unsent`) and the run counts as overloaded."""
    run = Run(name, "open", pool, offered_rate=rate, seconds=seconds)
    total = int(rate * (warmup + seconds))
    start = time.perf_counter() + 0.05
    measure_from = start + warmup
    give_up = start + 1.5 * (warmup + seconds) + 2
    taken = 0
    last_done = measure_from

    async def sender(index: int) -> None:
        nonlocal taken, last_done
        connection = Connection(port)
        try:
            while taken < total and time.perf_counter() < give_up:
                number = taken
                taken += 1
                scheduled = start + number / rate
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                data = make(number)
                lag = (time.perf_counter() - scheduled) * 1000
                try:
                    status, body, replayed = await connection.send(data)
                except (OSError, asyncio.IncompleteReadError) as error:
                    run.transport_errors += 1
                    _note(run, 0, repr(error).encode())
                    continue
                done = time.perf_counter()
                run.statuses[status] += 1
                run.replayed += replayed
                _note(run, status, body)
                if scheduled >= measure_from:
                    run.latencies.append((done - scheduled) * 1000)
                    run.completed += 1
                    run.max_send_lag_ms = max(run.max_send_lag_ms, lag)
                    last_done = max(last_done, done)
        finally:
            connection.close()

    await asyncio.gather(*(sender(i) for i in range(pool)))
    run.unsent = total - taken
    # achieved: the window's answers over the time they took to arrive (the schedule's length
    # when the server keeps up, longer when answers lag behind)
    run.seconds = max(seconds, last_done - measure_from)
    return run


def drive(coroutine, meter: CpuMeter | None = None) -> Run:
    """Run one load with the collector paused (a full collection would stall the client),
    measuring the CPU used meanwhile."""
    gc.collect()
    gc.disable()
    try:
        before = meter.snapshot() if meter else None
        run = asyncio.run(coroutine)
        run.cpu = CpuMeter.used(before, meter.snapshot() if meter else None)
        return run
    finally:
        gc.enable()


# --- the server ------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_environment(app, *, env_name: str = "production") -> dict[str, str]:
    """The app's database and keys for the gunicorn processes, with `env_name` settings."""
    config = app.config
    return {
        **os.environ,
        "CANTEEN_ENV": env_name,
        "DATABASE_URL": config["SQLALCHEMY_DATABASE_URI"],
        "SECRET_KEY": config["SECRET_KEY"],
        "CANTEEN_DATA_KEY": config["CANTEEN_DATA_KEY"],
        "CANTEEN_INDEX_KEY": config["CANTEEN_INDEX_KEY"],
        "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH")))),
    }


@dataclass(frozen=True)
class Served:
    port: int
    meter: CpuMeter


@contextlib.contextmanager
def gunicorn(environment: dict[str, str], server: ServerConfig, *, timeout: float = 60.0) -> Iterator[Served]:
    """Start gunicorn with `server`'s workers on a free port; yield it once /healthz answers;
    stop it (SIGTERM, then SIGKILL) afterwards."""
    import http.client

    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(server.workers),
        "--worker-class",
        server.worker_class,
        "--threads",
        str(server.threads),
        "--keep-alive",
        "5",
        "--backlog",
        "2048",
        "--preload",
        "--log-level",
        "warning",
        "bench.meal_app:create_app()",
    ]
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"gunicorn did not start ({server.label}):\n{log.read()[-3000:]}")
                try:
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    connection.request("GET", "/healthz")
                    healthy = connection.getresponse().status == 200
                    connection.close()
                    if healthy:
                        break
                except OSError:
                    pass
                time.sleep(0.2)
            database = environment["DATABASE_URL"].rsplit("/", 1)[1]
            yield Served(port, CpuMeter(process.pid, database))
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
            log.seek(0)
            lines = log.read().splitlines()
            tracebacks = [i for i, line in enumerate(lines) if line.startswith("Traceback")]
            if tracebacks:
                first = lines[tracebacks[0] : tracebacks[0] + 60]
                end = next((i for i, line in enumerate(first[1:], 1) if not line.startswith(" ")), len(first) - 1)
                progress(f"gunicorn logged {len(tracebacks)} tracebacks; the first:\n" + "\n".join(first[: end + 1]))


# --- the measurement -------------------------------------------------------------------------------
@dataclass
class Report:
    settings: Settings
    city: City
    server: ServerConfig | None = None
    probes: list[tuple[ServerConfig, Run]] = field(default_factory=list)
    meals_closed: Run | None = None
    meals_open: Run | None = None
    meals_open_half: Run | None = None  # an open loop at half the closed loop's rate, when below `rate`
    bare_closed: Run | None = None
    bare_open: Run | None = None
    before: dict[str, int] = field(default_factory=dict)  # row counts before the load
    database: dict[str, object] = field(default_factory=dict)  # what the load added, and checks
    breakdown: list[tuple] = field(default_factory=list)

    @property
    def meal_runs(self) -> list[Run]:
        runs = (self.meals_closed, self.meals_open, self.meals_open_half)
        return [run for _, run in self.probes] + [r for r in runs if r]

    @property
    def bare_runs(self) -> list[Run]:
        return [r for r in (self.bare_closed, self.bare_open) if r]

    @property
    def ratio(self) -> float:
        assert self.meals_closed and self.bare_closed
        return self.meals_closed.throughput / self.bare_closed.throughput if self.bare_closed.throughput else 0.0

    @property
    def consistent(self) -> bool:
        """The database holds exactly what was answered 201, and nothing else was answered."""
        runs = self.meal_runs + self.bare_runs
        return (
            self.database.get("meals") == sum(r.created for r in self.meal_runs)
            and self.database.get("meal_keys") == sum(r.created for r in self.meal_runs)
            and self.database.get("bare_keys") == sum(r.created for r in self.bare_runs)
            and all(r.not_2xx == 0 and r.transport_errors == 0 for r in runs)
            and self.database.get("audit_breaks") == 0
        )

    def targets(self) -> dict[str, bool]:
        assert self.meals_closed and self.meals_open
        return {
            f"meals/s ≥ {TARGET_MEALS_PER_S:.0f} (closed loop)": self.meals_closed.throughput >= TARGET_MEALS_PER_S,
            f"p99 ≤ {TARGET_P99_MS:.0f} ms at {self.settings.rate:.0f} meals/s offered": self.meals_open.p(99)
            <= TARGET_P99_MS
            and not self.meals_open.unsent,
            f"ratio meals/s ÷ bare inserts/s ≥ {TARGET_RATIO}": self.ratio >= TARGET_RATIO,
        }


def measure(app, settings: Settings) -> Report:
    """Prepare the city, probe the server configurations, measure the best one, check the database."""
    city = prepare(app, residents=settings.residents)
    report = Report(settings, city)
    report.before = count_rows(app)
    environment = server_environment(app)
    progress(f"{len(city.counters)} counters (canteens open on {city.served_on}), {len(city.residents):,} residents")
    requests: Requests | None = None
    if len(settings.servers) > 1:
        for server in settings.servers:
            with gunicorn(environment, server) as served:
                requests = _requests(requests, city, served.port)
                progress(f"probe: {server.label}, {settings.connections} connections, {settings.probe_seconds:.0f} s")
                run = drive(
                    closed_loop(
                        f"probe {server.label}",
                        served.port,
                        requests.meal,
                        connections=settings.connections,
                        seconds=settings.probe_seconds,
                        warmup=settings.warmup,
                    ),
                    served.meter,
                )
                report.probes.append((server, run))
                progress(f"  {run.throughput:.0f} meals/s, p99 {run.p(99):.1f} ms")
        report.server = max(report.probes, key=lambda probe: probe[1].throughput)[0]
    else:
        report.server = settings.servers[0]
    with gunicorn(environment, report.server) as served:
        requests = _requests(requests, city, served.port)
        loads = (
            ("meals_closed", "meals", requests.meal, "closed"),
            ("meals_open", "meals", requests.meal, "open"),
            ("bare_closed", "bare insert", requests.bare, "closed"),
            ("bare_open", "bare insert", requests.bare, "open"),
        )
        for attribute, label, make, mode in loads:
            progress(f"{label}, {mode} loop on {report.server.label}")
            if mode == "closed":
                load = closed_loop(
                    label,
                    served.port,
                    make,
                    connections=settings.connections,
                    seconds=settings.seconds,
                    warmup=settings.warmup,
                )
            else:
                load = open_loop(
                    label,
                    served.port,
                    make,
                    rate=settings.rate,
                    seconds=settings.seconds,
                    warmup=settings.warmup,
                    pool=OPEN_LOOP_CONNECTIONS,
                )
            run = drive(load, served.meter)
            setattr(report, attribute, run)
            progress(f"  {run.throughput:.0f}/s, p50 {run.p(50):.1f} ms, p99 {run.p(99):.1f} ms")
            if attribute == "meals_open" and report.meals_closed:
                # beyond its capacity an open loop measures the queue: the latency of the meals
                # endpoint itself shows at half of what it sustains
                half = round(report.meals_closed.throughput / 2, 1)
                if 0 < half < settings.rate:
                    progress(f"meals, open loop at {half:.0f}/s (half the closed loop's rate)")
                    report.meals_open_half = drive(
                        open_loop(
                            "meals at half rate",
                            served.port,
                            requests.meal,
                            rate=half,
                            seconds=settings.seconds,
                            warmup=settings.warmup,
                            pool=OPEN_LOOP_CONNECTIONS,
                        ),
                        served.meter,
                    )
                    run = report.meals_open_half
                    progress(f"  {run.throughput:.0f}/s, p50 {run.p(50):.1f} ms, p99 {run.p(99):.1f} ms")
    check_database(app, report)
    return report


def _requests(requests: Requests | None, city: City, port: int) -> Requests:
    # one stream of (resident, slot) pairs across every server started, pointed at the new port
    if requests is None:
        return Requests(city, port)
    requests.host = f"127.0.0.1:{port}".encode()
    return requests


COUNTS = {
    "meals": "SELECT count(*) FROM meals",
    "meal_keys": "SELECT count(*) FROM idempotency_keys WHERE meal_id IS NOT NULL",
    "bare_keys": "SELECT count(*) FROM idempotency_keys WHERE meal_id IS NULL",
    "meal_audit_entries": "SELECT count(*) FROM audit_entries WHERE entity = 'meals'",
}


def count_rows(app) -> dict[str, int]:
    """The rows the load adds to (the demo city may hold some already)."""
    from canteen.extensions import db

    with app.app_context():
        counts = {name: db.session.scalar(sa.text(sql)) for name, sql in COUNTS.items()}
        db.session.remove()
    return counts


def check_database(app, report: Report) -> None:
    """Count what the load added, check the audit chains, and break the new meals down by the
    subsidy decision."""
    from canteen.core.audit_log import verify_chains
    from canteen.extensions import db

    after = count_rows(app)
    report.database = {name: after[name] - report.before.get(name, 0) for name in COUNTS}
    with app.app_context():
        scalar = db.session.scalar
        report.database |= {
            "duplicates": scalar(
                sa.text(
                    "SELECT count(*) FROM (SELECT 1 FROM meals WHERE status = 'valid' "
                    "GROUP BY resident_id, served_on, slot HAVING count(*) > 1) d"
                )
            ),
            "synchronous_commit": scalar(sa.text("SHOW synchronous_commit")),
            "fsync": scalar(sa.text("SHOW fsync")),
        }
        _checked, breaks = verify_chains(db.session)
        report.database["audit_breaks"] = len(breaks)
        report.breakdown = [
            tuple(row)
            for row in db.session.execute(
                sa.text(
                    "SELECT coalesce(subsidy_category, 'none'), count(*), sum(subsidy_fen), sum(copay_fen) "
                    "FROM meals WHERE served_on = :day AND idempotency_key IS NOT NULL GROUP BY 1 ORDER BY 2 DESC"
                ),
                {"day": report.city.served_on},
            )
        ]
        db.session.remove()


# --- output ----------------------------------------------------------------------------------------
def _row(label: str, run: Run) -> str:
    rate = f"{run.offered_rate:.0f}/s" if run.offered_rate else "—"
    return (
        f"  {label:<40} {rate:>8} {run.throughput:>8.0f} {run.p(50):>8.1f} {run.p(99):>8.1f} "
        f"{max(run.latencies, default=float('nan')):>8.1f} {len(run.latencies):>7,}"
    )


def _cpu_row(label: str, run: Run) -> str:
    per = run.cpu_ms_per_request()
    if per is None or run.cpu is None:
        return f"  {label:<40} (no /proc: not measured)"
    busy = run.cpu.machine / run.cpu.wall / cores() * 100 if run.cpu.wall else 0.0
    return (
        f"  {label:<40} {per['app']:>7.2f} {per['database']:>9.2f} {per['client']:>7.2f} {per['others']:>7.2f} "
        f"{busy:>7.0f}% {cpu_bound(run):>12.0f}/s"
    )


def cpu_bound(run: Run) -> float:
    """Requests per second the machine's cores could serve at this CPU cost per request (app,
    database and client) if nothing else ran and every core were busy: an estimate of the
    throughput of this machine on its own (CPU per request itself grows when others compete)."""
    per = run.cpu_ms_per_request()
    if not per:
        return float("nan")
    cost = per["app"] + per["database"] + per["client"]
    return cores() * 1000 / cost if cost else float("nan")


def others_share(runs: list[Run]) -> float:
    """The share of the machine's busy CPU that other processes used during `runs`."""
    machine = sum(run.cpu.machine for run in runs if run.cpu)
    return sum(run.cpu.others for run in runs if run.cpu) / machine if machine else 0.0


def print_report(report: Report) -> bool:
    settings, city, server = report.settings, report.city, report.server
    meals_closed, meals_open = report.meals_closed, report.meals_open
    bare_closed, bare_open = report.bare_closed, report.bare_open
    assert server is not None and meals_closed and meals_open and bare_closed and bare_open
    database = report.database
    print(
        f"\ncity: {len(city.residents):,} residents (COPY in {city.load_seconds:.1f} s), {city.subsidy_rules} "
        f"subsidy rules in the districts' policies, {len(city.counters)} counters (one per canteen open on "
        f"{city.served_on}, each its staff account's API token)"
    )
    print(f"PostgreSQL: fsync={database['fsync']}, synchronous_commit={database['synchronous_commit']}")
    if report.probes:
        print(f"\ngunicorn configurations probed (meals, closed loop, {settings.connections} connections):")
        for probe_server, run in report.probes:
            best = "  <- best, measured below" if probe_server == server else ""
            per = run.cpu_ms_per_request()
            cpu = f", app CPU {per['app']:.1f} ms/meal" if per else ""
            print(
                f"  {probe_server.label:<36} {run.throughput:>6.0f} meals/s  p50 {run.p(50):>7.1f} ms  "
                f"p99 {run.p(99):>7.1f} ms{cpu}{best}"
            )
    print(
        f"\nfigures on {server.label} (gunicorn --preload, CANTEEN_ENV=production); closed loop "
        f"{settings.connections} connections; open loop {settings.rate:.0f}/s offered on a pool of "
        f"{OPEN_LOOP_CONNECTIONS} connections, latency from the scheduled send; {settings.seconds:g} s windows "
        f"after {settings.warmup:g} s warm-up:"
    )
    print(f"  {'':<40} {'offered':>8} {'done/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'n':>7}")
    print(_row(f"POST /api/v1/meals, closed x{settings.connections}", meals_closed))
    print(_row("POST /api/v1/meals, open loop", meals_open))
    if report.meals_open_half:
        print(_row("POST /api/v1/meals, open at half rate", report.meals_open_half))
    print(_row(f"bare insert (ceiling), closed x{settings.connections}", bare_closed))
    print(_row("bare insert (ceiling), open loop", bare_open))
    print(f"  ratio meals/s ÷ bare inserts/s (closed loop): {report.ratio:.2f}")
    lag = max(meals_open.max_send_lag_ms, bare_open.max_send_lag_ms)
    print(f"  open loop: the latest send left {lag:.1f} ms after its scheduled time (counted in the latencies)")
    for run in (meals_open, bare_open):
        if run.unsent:
            print(
                f"  {run.name}, open loop: OVERLOADED — the server fell behind the offered rate; {run.unsent:,} "
                "scheduled sends given up (its p99 is a lower bound)"
            )

    print(f"\nCPU per answered request, ms (whole run), and how busy the machine's {cores()} cores were:")
    print(f"  {'':<40} {'app':>7} {'database':>9} {'client':>7} {'others':>7} {'busy':>8} {'CPU-bound at':>14}")
    for label, run in (
        (f"meals, closed x{settings.connections}", meals_closed),
        ("meals, open loop", meals_open),
        *((("meals, open loop at half rate", report.meals_open_half),) if report.meals_open_half else ()),
        (f"bare insert, closed x{settings.connections}", bare_closed),
        ("bare insert, open loop", bare_open),
    ):
        print(_cpu_row(label, run))
    print("  (app: gunicorn and its workers; database: the benchmark database's PostgreSQL backends;")
    print("   client: this load generator; others: every other process on the machine meanwhile; busy: the")
    print("   machine's cores; CPU-bound at: cores ÷ (app + database + client) per request, the throughput")
    print("   of the machine on its own if that CPU were the only limit)")
    share = others_share([*report.meal_runs, *report.bare_runs])
    if share > 0.1:
        print(
            f"  WARNING: other processes used {share:.0%} of the busy CPU during the runs: the throughput and "
            "latency figures above are depressed by them; the CPU per request is the steadier figure"
        )

    print("\nanswers and the database:")
    for run in [*report.meal_runs, *report.bare_runs]:
        statuses = ", ".join(f"{status}: {n:,}" for status, n in sorted(run.statuses.items()))
        extra = f", transport errors {run.transport_errors}" if run.transport_errors else ""
        extra += f", replayed {run.replayed}" if run.replayed else ""
        print(f"  {run.name + ' (' + run.mode + ')':<52} {statuses}{extra}")
        for sample in run.error_samples[:3]:
            print(f"      e.g. {sample}")
    meal_201 = sum(r.created for r in report.meal_runs)
    bare_201 = sum(r.created for r in report.bare_runs)
    print(
        f"  meals added {database['meals']:,} = 201 answers {meal_201:,}? {database['meals'] == meal_201}; their "
        f"idempotency keys {database['meal_keys']:,}, audit entries {database['meal_audit_entries']:,}; duplicate "
        f"valid (resident, date, slot): {database['duplicates']}"
    )
    print(
        f"  bare rows added {database['bare_keys']:,} = 201 answers {bare_201:,}? {database['bare_keys'] == bare_201}; "
        f"audit chains broken: {database['audit_breaks']}"
    )
    failures = sum(r.not_2xx + r.transport_errors for r in [*report.meal_runs, *report.bare_runs])
    verdict = "CONSISTENT" if report.consistent else "MISMATCH"
    print(f"  non-2xx answers and transport errors: {failures}  ->  {verdict}")
    print("\nsubsidy decisions of the meals recorded (category of the rule applied): meals, subsidy fen, copay fen")
    for category, count, subsidy, copay in report.breakdown:
        print(f"  {category:<18} {count:>8,} {subsidy:>12,} {copay:>12,}")

    print(f"\ntargets ({machine_note()}):")
    targets = report.targets()
    for name, ok in targets.items():
        print(f"  {name:<52} {'MET' if ok else 'NOT MET'}")
    print(
        f"  (p99 in the closed loop, {meals_closed.p(99):.1f} ms, is at saturation: {settings.connections} "
        "requests always queued, so mostly waiting by construction)"
    )
    return all(targets.values()) and report.consistent


def run(app, *, quick: bool = False) -> bool:
    """Measure and print; True when every target is met and the database matches the answers."""
    quick = quick or os.environ.get("BENCH_QUICK", "") not in ("", "0")
    settings = Settings.from_environment(quick=quick)
    print(
        f"== meal recording: {settings.residents:,} residents, {settings.connections} connections, "
        f"{settings.rate:.0f}/s offered, servers {', '.join(s.label for s in settings.servers)} ({machine_note()})",
        flush=True,
    )
    report = measure(app, settings)
    return print_report(report)
