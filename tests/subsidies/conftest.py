"""Helpers for the subsidy tests: policies made through the service, and a fake of the meals
domain's usage object (which meals a rule has already subsidised)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest

from canteen.core import scoping
from canteen.extensions import db
from canteen.subsidies import service as subsidy_service


def rule(category: str, slot: str, amount_fen: int, **extra: Any) -> dict[str, Any]:
    """One rule as the service and the API take it."""
    return {"category": category, "slot": slot, "amount_fen": amount_fen, **extra}


def make_policy(
    district,
    rules: Iterable[dict[str, Any]],
    *,
    valid_from: date = date(2026, 1, 1),
    valid_to: date | None = None,
    name: str = "助餐补贴",
    operator_allowance_fen: int = 0,
):
    """A policy created through the service (every rule applies), committed like a factory row."""
    with scoping.unrestricted():
        policy = subsidy_service.create_policy(
            district_id=district.id,
            name=name,
            valid_from=valid_from,
            valid_to=valid_to,
            operator_allowance_fen=operator_allowance_fen,
            rules=list(rules),
        )
    db.session.commit()
    return policy


@dataclass
class FakeUsage:
    """What the meals domain will answer: the resident's earlier valid meals subsidised (> 0 fen)
    by a rule, per day and per calendar month."""

    meals: list[tuple[int, date]] = field(default_factory=list)

    def add(self, rule_id: int, day: date, count: int = 1) -> None:
        self.meals.extend([(rule_id, day)] * count)

    def record(self, decision, day: date) -> None:
        """Keep a decided meal, as recording it would: it counts only if it was subsidised."""
        if decision.rule is not None and decision.subsidy_fen > 0:
            self.add(decision.rule.id, day)

    def subsidised_meals(self, rule_id: int, *, day: date) -> int:
        return sum(1 for r, d in self.meals if r == rule_id and d == day)

    def subsidised_meals_in_month(self, rule_id: int, *, month_of: date) -> int:
        return sum(1 for r, d in self.meals if r == rule_id and (d.year, d.month) == (month_of.year, month_of.month))


@pytest.fixture
def usage() -> FakeUsage:
    return FakeUsage()


@pytest.fixture
def no_usage_checks(monkeypatch):
    """An empty registry of usage checks for the test; returns the list to register into."""
    checks: list = []
    monkeypatch.setattr(subsidy_service, "_usage_checks", checks)
    return checks
