"""Row scoping in one place: who sees which rows.

Every ORM query passes through `_limit_to_scope`, which adds each scoped model's own criteria
(`Model.__scope_criteria__(scope)`) for the caller's scope. Services additionally check the
role for writes (`require_role`) and fetch every id they are given through a scoped query
(`get_scoped`), so an id outside the caller's scope — in a URL or a body — is simply not found.
Core statements and `text()` bypass this hook: request handlers never use them.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask import g, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from canteen.core.db import Base, ModelT
from canteen.core.errors import Forbidden, NotFound

ADMIN = "admin"
DISTRICT_OFFICER = "district_officer"
CANTEEN_STAFF = "canteen_staff"
KITCHEN_STAFF = "kitchen_staff"
ROLES = (ADMIN, DISTRICT_OFFICER, CANTEEN_STAFF, KITCHEN_STAFF)


@dataclass(frozen=True)
class Scope:
    """What the caller may see. `system` (CLI, jobs) and `admin` see everything."""

    role: str
    user_id: int | None = None
    district_id: int | None = None  # an officer's district; a staff member's canteen's district
    canteen_id: int | None = None  # a staff member's canteen, or a kitchen worker's kitchen
    canteen_ids: frozenset[int] = field(default_factory=frozenset)  # canteens whose rows are theirs
    district_ids: frozenset[int] = field(default_factory=frozenset)  # districts they can read

    @property
    def unrestricted(self) -> bool:
        return self.role in ("system", ADMIN)

    @property
    def is_system(self) -> bool:
        return self.role == "system"


SYSTEM = Scope(role="system")
ANONYMOUS = Scope(role="anonymous")


def current_scope() -> Scope:
    """The scope of the running request; outside a request (CLI, jobs, scripts) the system scope."""
    if has_app_context():
        return g.get("_canteen_scope", SYSTEM)
    return SYSTEM


def set_scope(scope: Scope) -> None:
    g._canteen_scope = scope


@contextlib.contextmanager
def acting_as(scope: Scope) -> Iterator[Scope]:
    """Run a block with another scope (tests, and the few look-ups login needs before a scope exists)."""
    previous = g.get("_canteen_scope", SYSTEM)
    g._canteen_scope = scope
    try:
        yield scope
    finally:
        g._canteen_scope = previous


def unrestricted() -> contextlib.AbstractContextManager[Scope]:
    return acting_as(SYSTEM)


def require_role(*roles: str) -> Scope:
    """Refuse (403) unless the caller has one of `roles`; the system scope and admin always pass."""
    scope = current_scope()
    if scope.unrestricted or scope.role in roles:
        return scope
    raise Forbidden()


def get_scoped(model: type[ModelT], id_: Any, *, code: str | None = None) -> ModelT:
    """Load one row by id through the scoped query path; out of scope and missing both answer 404."""
    from canteen.extensions import db

    row = None
    if isinstance(id_, int) and not isinstance(id_, bool):
        row = db.session.scalars(sa.select(model).where(model.id == id_)).one_or_none()
    if row is None:
        name = _entity_name(model)
        raise NotFound(f"{name.replace('_', ' ').capitalize()} {id_} not found.", code=code or f"{name}_not_found")
    return row


def _entity_name(model: type[Base]) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", model.__name__).lower()


_scoped_models: list[type[Base]] | None = None


def _models_with_criteria() -> list[type[Base]]:
    global _scoped_models
    if _scoped_models is None:
        _scoped_models = [
            mapper.class_ for mapper in Base.registry.mappers if hasattr(mapper.class_, "__scope_criteria__")
        ]
    return _scoped_models


@functools.lru_cache(maxsize=4096)
def _criteria_options(scope: Scope) -> tuple:
    # one set of options per scope (scopes are immutable), not rebuilt for every statement
    options = []
    for model in _models_with_criteria():
        criteria = model.__scope_criteria__(scope)
        if criteria is not None:
            options.append(with_loader_criteria(model, criteria, include_aliases=True))
    return tuple(options)


@event.listens_for(Session, "do_orm_execute")
def _limit_to_scope(state: ORMExecuteState) -> None:
    if state.is_column_load or not (state.is_select or state.is_update or state.is_delete):
        return
    scope = current_scope()
    if scope.unrestricted:
        return
    options = _criteria_options(scope)
    if options:
        state.statement = state.statement.options(*options)
