"""Accounts, login, API tokens and the caller's scope."""
