"""Fixtures of the reliability tests: a new PostgreSQL database per test (two nodes share it)."""

from tests.postgresql.conftest import pg_catalog

__all__ = ["pg_catalog"]
