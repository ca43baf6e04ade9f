"""One page of a scoped query: the items and the total count for the X-Pagination header."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

import sqlalchemy as sa

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    total: int


def paginate(statement: sa.Select, *, page: int, page_size: int) -> Page:
    """Run `statement` (already scoped, filtered and ordered) for one page plus its total."""
    from canteen.extensions import db

    items = list(db.session.scalars(statement.limit(page_size).offset((page - 1) * page_size)))
    if page == 1 and len(items) < page_size:
        return Page(items=items, total=len(items))  # the whole result is on this page: no count needed
    total = db.session.scalar(sa.select(sa.func.count()).select_from(statement.order_by(None).subquery()))
    return Page(items=items, total=total or 0)
