"""Residents: the elderly registry — identity, status, eligibility categories, diet, meal cards."""
