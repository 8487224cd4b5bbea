"""The vault's format version, and the migrations that move a vault from one to the next.

The format is the revision of the catalog's schema, kept where Alembic keeps it (the
``alembic_version`` table): revision ``0001`` is format 1, ``0002`` format 2, and so on.
Every change of the catalog's tables is a new migration in ``store/migrations/versions``
(the same migrations a PostgreSQL catalog will run), and ``FORMAT_VERSION`` names the newest.
A catalog with tables but no revision was made before formats were recorded: format 0.

Opening checks the format before anything else is read: an older vault is refused with one
sentence that says to run ``mailvault upgrade``; a newer one is refused, never half-read.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Column, Connection, Engine, MetaData, String, Table, inspect, select
from sqlalchemy.exc import OperationalError

from mailvault.errors import VaultError
from mailvault.store import migrations, schema

if TYPE_CHECKING:
    from alembic.config import Config

FORMAT_VERSION = 6
HEAD_REVISION = f"{FORMAT_VERSION:04d}"

# Alembic's own table, declared here so that reading the format needs no migration scripts.
_version_table = Table("alembic_version", MetaData(),
                       Column("version_num", String(32), primary_key=True))


def alembic_config(conn: Connection) -> Config:
    """An Alembic configuration that runs the migrations on ``conn`` (no ini file)."""
    # Alembic is imported only to migrate: loading it costs every command a sixth of its start.
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.attributes["connection"] = conn
    return config


def head_revision() -> str:
    """The newest revision the migration scripts hold (``HEAD_REVISION`` must equal it)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    with_scripts = Config()
    with_scripts.set_main_option("script_location", str(Path(migrations.__file__).parent))
    head = ScriptDirectory.from_config(with_scripts).get_current_head()
    assert head is not None
    return head


def format_of(engine: Engine) -> int | None:
    """The catalog's format: None for an empty catalog (a vault being made), 0 for one made
    before formats were recorded."""
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            if _version_table.name not in tables:
                return 0 if tables else None
            revision = conn.execute(select(_version_table.c.version_num)).scalar()
    except OperationalError as exc:
        # The driver's first line says it (libpq adds hints on further lines).
        reason = (str(exc.orig).strip().splitlines() or ["no reason given"])[0].rstrip(".")
        raise VaultError(f"the catalog cannot be read: {reason}.") from exc
    if revision is None:
        return 0
    try:
        return int(revision)
    except ValueError:
        # Not one of ours: a revision of a later release that numbers them otherwise.
        return FORMAT_VERSION + 1


def create(engine: Engine) -> None:
    """Make a new catalog at the newest format: every table, then the revision stamped (the
    baseline plus every later migration make the same tables, a test holds them to it)."""
    try:
        schema.metadata.create_all(engine)
        with engine.begin() as conn:
            _version_table.create(conn, checkfirst=True)
            conn.execute(_version_table.delete())
            conn.execute(_version_table.insert().values(version_num=HEAD_REVISION))
    except OperationalError as exc:
        raise VaultError(f"the catalog cannot be created: {exc.orig}.") from exc


def check(engine: Engine, where: Path) -> None:
    """Refuse, in one sentence, a vault whose format this release does not read as it is."""
    found = format_of(engine)
    if found is None or found == FORMAT_VERSION:
        return
    if found < FORMAT_VERSION:
        raise VaultError(f"the vault in {where} is of format {found}, written by an older "
                          f"release; run 'mailvault upgrade' to bring it to format "
                          f"{FORMAT_VERSION} (it offers a backup first).")
    raise VaultError(f"the vault in {where} is of format {found}, newer than this release "
                     f"reads (format {FORMAT_VERSION}); use a newer mailvault.")


def upgrade(engine: Engine, where: Path) -> tuple[int, int]:
    """Migrate the catalog to the newest format; returns (format before, format after).

    All migrations run in one transaction (SQLite alters tables transactionally), so a
    failure leaves the vault as it was."""
    found = format_of(engine)
    if found is None:
        raise VaultError(f"there is no catalog in {where} to upgrade.")
    if found > FORMAT_VERSION:
        check(engine, where)
    if found == FORMAT_VERSION:
        return found, found
    from alembic import command

    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "head")
    except OperationalError as exc:
        raise VaultError(f"the catalog could not be upgraded: {exc.orig}.") from exc
    return found, FORMAT_VERSION
