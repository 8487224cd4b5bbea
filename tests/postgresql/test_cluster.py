"""The PostgreSQL fixture itself: a cluster that runs, takes a password, and gives each test a
database of its own."""

from __future__ import annotations

import psycopg
import pytest

from tests import postgres


def test_cluster_answers_with_its_password(postgres_cluster: postgres.Cluster) -> None:
    with postgres_cluster.database() as name, postgres_cluster.connect(name) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (name,)


def test_cluster_refuses_a_wrong_password(postgres_cluster: postgres.Cluster) -> None:
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(host="127.0.0.1", port=postgres_cluster.port, user=postgres.SUPERUSER,
                        password="wrong", dbname="postgres")
