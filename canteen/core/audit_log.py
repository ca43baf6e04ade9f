"""The audit log: every write made by a person, append-only and hash-chained.

A session flush hook records each inserted, updated or deleted row (who, operation, entity,
id, before, after, when) in the same transaction as the write. Entries form one chain per
scope — per canteen, per district office, one for the city — so counters at different
canteens never wait on one lock. Each entry's hash covers the previous entry's hash, so an
edited, removed or reordered entry breaks the chain; `flask audit verify` walks every chain.
Appends to one chain are serialised: SQLite by BEGIN IMMEDIATE (one writer at a time),
PostgreSQL by a transaction-scoped advisory lock per chain. On PostgreSQL a trigger refuses
UPDATE and DELETE on the table.
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import click
import sqlalchemy as sa
from flask import g, has_app_context
from flask.cli import AppGroup
from sqlalchemy import event
from sqlalchemy.orm import Mapped, Session, mapped_column

from canteen.core import scoping
from canteen.core.crypto import EncryptedString
from canteen.core.db import Base, advisory_lock, utcnow
from canteen.core.privacy import mask_personal

GENESIS_HASH = "0" * 64


class AuditEntry(Base):
    __tablename__ = "audit_entries"
    __table_args__ = (sa.UniqueConstraint("chain", "seq"),)

    chain: Mapped[str] = mapped_column(sa.String(40))
    seq: Mapped[int]
    occurred_at: Mapped[datetime]
    actor_user_id: Mapped[int | None]
    actor_name: Mapped[str] = mapped_column(sa.String(80))
    operation: Mapped[str] = mapped_column(sa.String(120))
    action: Mapped[str] = mapped_column(sa.String(10))  # insert | update | delete | reveal
    entity: Mapped[str] = mapped_column(sa.String(60))
    entity_id: Mapped[int | None]
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]
    district_id: Mapped[int | None] = mapped_column(index=True)
    canteen_id: Mapped[int | None] = mapped_column(index=True)
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    entry_hash: Mapped[str] = mapped_column(sa.String(64))

    @classmethod
    def __scope_criteria__(cls, scope: scoping.Scope):
        if scope.role == scoping.DISTRICT_OFFICER:
            return cls.district_id == scope.district_id
        if scope.role in (scoping.CANTEEN_STAFF, scoping.KITCHEN_STAFF):
            return cls.canteen_id == scope.canteen_id
        return sa.false()


@dataclass(frozen=True)
class Actor:
    """Who is writing and through which operation (an API endpoint, a page, a CLI command)."""

    user_id: int | None
    name: str
    operation: str


def set_actor(actor: Actor | None) -> None:
    """Record writes of the current request/command as made by `actor` (None: not logged)."""
    g._audit_actor = actor


def current_actor() -> Actor | None:
    return g.get("_audit_actor") if has_app_context() else None


def chain_for(district_id: int | None, canteen_id: int | None) -> str:
    if canteen_id is not None:
        return f"canteen:{canteen_id}"
    if district_id is not None:
        return f"district:{district_id}"
    return "city"


def entry_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """sha256(previous hash + canonical JSON of the entry's fields)."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


HASHED_FIELDS = (
    "chain",
    "seq",
    "occurred_at",
    "actor_user_id",
    "actor_name",
    "operation",
    "action",
    "entity",
    "entity_id",
    "before",
    "after",
    "district_id",
    "canteen_id",
)


def _hashed_view(row: dict[str, Any]) -> dict[str, Any]:
    view = {name: row[name] for name in HASHED_FIELDS}
    view["occurred_at"] = row["occurred_at"].isoformat(timespec="microseconds")
    return view


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _snapshot(obj: Base, *, old: bool) -> dict[str, Any]:
    """Column values of `obj` (before or after the flush), secrets excluded and personal data masked."""
    state = sa.inspect(obj)
    excluded = getattr(obj, "__audit_exclude__", frozenset())
    values: dict[str, Any] = {}
    for column_attr in state.mapper.column_attrs:
        key = column_attr.key
        if key in excluded:
            continue
        history = state.attrs[key].history
        if old:
            value = history.deleted[0] if history.deleted else (history.unchanged or [None])[0]
        else:
            value = history.added[0] if history.added else (history.unchanged or [None])[0]
        column = column_attr.columns[0]
        if isinstance(column.type, EncryptedString) and value is not None:
            value = mask_personal(value)
        values[key] = _jsonable(value)
    return values


def _changed_keys(obj: Base) -> set[str]:
    state = sa.inspect(obj)
    return {attr.key for attr in state.mapper.column_attrs if state.attrs[attr.key].history.has_changes()}


def _scope_of(obj: Base) -> tuple[int | None, int | None]:
    if hasattr(obj, "audit_scope"):
        return obj.audit_scope()
    return getattr(obj, "district_id", None), getattr(obj, "canteen_id", None)


@event.listens_for(Session, "after_flush")
def _record_writes(session: Session, flush_context) -> None:
    actor = current_actor()
    if actor is None:
        return
    now = utcnow()
    pending: list[dict[str, Any]] = []
    for action, objects in (("insert", session.new), ("update", session.dirty), ("delete", session.deleted)):
        for obj in objects:
            if isinstance(obj, AuditEntry) or not getattr(obj, "__audited__", True):
                continue
            before = after = None
            if action == "update":
                changed = _changed_keys(obj) - set(getattr(obj, "__audit_exclude__", ()))
                if not changed:
                    continue
                old, new = _snapshot(obj, old=True), _snapshot(obj, old=False)
                before = {k: old[k] for k in sorted(changed) if k in old}
                after = {k: new[k] for k in sorted(changed) if k in new}
            elif action == "insert":
                after = _snapshot(obj, old=False)
            else:
                before = _snapshot(obj, old=True)
            district_id, canteen_id = _scope_of(obj)
            pending.append(
                {
                    "chain": chain_for(district_id, canteen_id),
                    "occurred_at": now,
                    "actor_user_id": actor.user_id,
                    "actor_name": actor.name,
                    "operation": actor.operation,
                    "action": action,
                    "entity": obj.__tablename__,
                    "entity_id": getattr(obj, "id", None),
                    "before": before,
                    "after": after,
                    "district_id": district_id,
                    "canteen_id": canteen_id,
                }
            )
    if pending:
        _append(session.connection(), pending)


def record_event(
    *,
    action: str,
    entity: str,
    entity_id: int | None,
    district_id: int | None = None,
    canteen_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Log a read that must leave a trace (revealing a full ID number) in the caller's chain.

    Written in the current transaction, so it is kept only if the request succeeds.
    """
    from canteen.extensions import db

    actor = current_actor()
    if actor is None:
        actor = Actor(None, "system", "direct call")
    entry = {
        "chain": chain_for(district_id, canteen_id),
        "occurred_at": utcnow(),
        "actor_user_id": actor.user_id,
        "actor_name": actor.name,
        "operation": actor.operation,
        "action": action,
        "entity": entity,
        "entity_id": entity_id,
        "before": None,
        "after": _jsonable(details) if details else None,
        "district_id": district_id,
        "canteen_id": canteen_id,
    }
    _append(db.session.connection(), [entry])


def _append(connection: sa.Connection, entries: list[dict[str, Any]]) -> None:
    table = AuditEntry.__table__
    by_chain: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        by_chain.setdefault(entry["chain"], []).append(entry)
    for chain in sorted(by_chain):  # a fixed lock order, so two transactions never deadlock
        advisory_lock(connection, f"audit:{chain}")
        head = connection.execute(
            sa.select(table.c.seq, table.c.entry_hash)
            .where(table.c.chain == chain)
            .order_by(table.c.seq.desc())
            .limit(1)
        ).first()
        seq, prev = (head.seq, head.entry_hash) if head else (0, GENESIS_HASH)
        rows = []
        for entry in by_chain[chain]:
            seq += 1
            row = {**entry, "seq": seq, "prev_hash": prev}
            row["entry_hash"] = prev = entry_hash(prev, _hashed_view(row))
            rows.append(row)
        connection.execute(sa.insert(table), rows)


@dataclass(frozen=True)
class ChainBreak:
    chain: str
    entry_id: int
    seq: int
    reason: str


def verify_chains(session: Session) -> tuple[int, list[ChainBreak]]:
    """Walk every chain; return the number of entries checked and the first break of each chain.

    A break is an entry whose hash does not match its contents, whose previous hash is not the
    hash of the entry before it, or a gap in the sequence (an entry removed).
    """
    table = AuditEntry.__table__
    breaks: list[ChainBreak] = []
    checked = 0
    chains = session.execute(sa.select(table.c.chain).distinct().order_by(table.c.chain)).scalars().all()
    for chain in chains:
        prev, expected_seq = GENESIS_HASH, 1
        rows = session.execute(sa.select(table).where(table.c.chain == chain).order_by(table.c.seq)).mappings()
        for row in rows:
            checked += 1
            reason = None
            if row["seq"] != expected_seq:
                reason = f"sequence gap: expected {expected_seq}, found {row['seq']} (entries removed)"
            elif row["prev_hash"] != prev:
                reason = "previous hash does not match the entry before"
            elif entry_hash(prev, _hashed_view(dict(row))) != row["entry_hash"]:
                reason = "contents do not match the entry's hash (edited)"
            if reason:
                breaks.append(ChainBreak(chain, row["id"], row["seq"], reason))
                break
            prev, expected_seq = row["entry_hash"], expected_seq + 1
    return checked, breaks


audit_cli = AppGroup("audit", help="The tamper-evident audit log.")


@audit_cli.command("verify")
def verify_command() -> None:
    """Check every audit chain; exit 1 naming the first broken entry of each broken chain."""
    from canteen.extensions import db

    checked, breaks = verify_chains(db.session)
    for item in breaks:
        click.echo(f"BROKEN chain {item.chain} at entry id={item.entry_id} seq={item.seq}: {item.reason}", err=True)
    if breaks:
        raise SystemExit(1)
    click.echo(f"audit log intact: {checked} entries checked")
