"""Money is integer fen everywhere; yuan only at the edges. Never float, never round()."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation


def format_yuan(fen: int) -> str:
    """12345 -> "123.45"; -5 -> "-0.05"."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"


def parse_yuan(text: str) -> int:
    """ "12.5" -> 1250. More than two decimals is an error, not a rounding."""
    try:
        amount = Decimal(text.strip())
    except (InvalidOperation, AttributeError):
        raise ValueError(f"not an amount of yuan: {text!r}") from None
    fen = amount * 100
    if fen != fen.to_integral_value():
        raise ValueError(f"more than two decimals: {text!r}")
    return int(fen)


def split_largest_remainder(total_fen: int, weights: list[int]) -> list[int]:
    """Split `total_fen` in proportion to `weights` so the parts sum exactly to the total.

    Each part gets the floor of its share; the fen left over go one each to the largest
    remainders (ties: the earlier part).
    """
    if not weights:
        raise ValueError("nothing to split into")
    if any(w < 0 for w in weights) or sum(weights) == 0:
        raise ValueError("weights must be non-negative and not all zero")
    sign = -1 if total_fen < 0 else 1
    amount = abs(total_fen)
    weight_sum = sum(weights)
    floors = [amount * w // weight_sum for w in weights]
    remainders = [amount * w % weight_sum for w in weights]
    leftover = amount - sum(floors)
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for i in order[:leftover]:
        floors[i] += 1
    return [sign * part for part in floors]
