"""Fixtures of the store tests: a new PostgreSQL database per test (the claims on it)."""

from tests.postgresql.conftest import pg_catalog

__all__ = ["pg_catalog"]
