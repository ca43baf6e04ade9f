"""Declarative base, column types, SQLite connection set-up and the one-transaction-per-use-case boundary."""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, registry, scoped_session

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(sa.types.TypeDecorator):
    """A timestamp stored in UTC and always returned timezone-aware (SQLite forgets the zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# ints are 64-bit on PostgreSQL; SQLite's INTEGER is 64-bit already and only INTEGER autoincrements
BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    registry = registry(
        metadata=sa.MetaData(naming_convention=NAMING_CONVENTION),
        type_annotation_map={
            int: BigInt,
            datetime: UTCDateTime(),
            dict[str, Any]: JSONType,
            list[Any]: JSONType,
        },
    )

    id: Mapped[int] = mapped_column(primary_key=True)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id}>"


def utcnow() -> datetime:
    return datetime.now(UTC)


ModelT = TypeVar("ModelT", bound=Base)


@event.listens_for(Engine, "connect")
def _configure_sqlite(dbapi_connection, connection_record) -> None:
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    # pysqlite's own transaction handling is turned off so that "begin" below decides
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@event.listens_for(Engine, "begin")
def _sqlite_begin_immediate(connection) -> None:
    # A deferred transaction that reads and then writes fails at once with "database is
    # locked" when another writer got there first; IMMEDIATE waits for busy_timeout instead.
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")


@contextlib.contextmanager
def transaction() -> Iterator[None]:
    """The use-case boundary: commit once if the block succeeds, roll back on any exception.

    Requests, CLI commands and scheduled jobs wrap their work in this; services only flush.
    """
    from canteen.extensions import db

    try:
        yield
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise


def advisory_lock(connection: sa.Connection | Session | scoped_session, name: str, *, shared: bool = False) -> bool:
    """Hold a PostgreSQL transaction-scoped advisory lock named `name` until the transaction
    ends; True if one was taken. `connection` is a Connection or a Session.

    Serialises check-then-write rules that no unique index can express (one chain head, no
    overlapping policies, a month not frozen while a meal is recorded). Shared holders never
    wait for each other, only for an exclusive holder. SQLite needs none: every write
    transaction there starts with BEGIN IMMEDIATE, so there is one writer at a time.
    """
    dialect = connection.dialect if isinstance(connection, sa.Connection) else connection.get_bind().dialect
    if dialect.name != "postgresql":
        return False
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
    lock = sa.func.pg_advisory_xact_lock_shared if shared else sa.func.pg_advisory_xact_lock
    connection.execute(sa.select(lock(key)))
    return True
