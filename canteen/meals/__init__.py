"""Meals recorded at the counter: the money path from a resident at the counter to a subsidy claim."""
