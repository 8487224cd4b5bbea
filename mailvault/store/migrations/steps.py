"""What every migration does the same way: create a table or an index only when the catalog
lacks it. A vault made before formats were recorded (format 0) already has whichever tables
its release made, so each migration must be safe to run over any of them."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from mailvault.errors import VaultError


def table(name: str, *items: Any, **options: Any) -> None:
    """Create a table unless the catalog has it."""
    if not sa.inspect(op.get_bind()).has_table(name):
        op.create_table(name, *items, **options)


def index(table_name: str, name: str, columns: list[str]) -> None:
    """Create an index unless the table has it."""
    present = {found["name"] for found in sa.inspect(op.get_bind()).get_indexes(table_name)}
    if name not in present:
        op.create_index(name, table_name, columns)


def refuse_downgrade() -> None:
    """Every migration's downgrade: a vault is never taken back to an older format."""
    raise VaultError("a vault is not downgraded; restore the backup taken before the upgrade.")
