"""Shared pieces every domain uses: database, errors, API conventions, money, scoping, crypto, audit log."""
