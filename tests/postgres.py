"""A throwaway PostgreSQL cluster (Debian's ``postgresql``) for tests and benchmarks.

PostgreSQL refuses to run as root, so under root the cluster's folder belongs to ``nobody``
and ``initdb``, ``pg_ctl`` and the server run as that user. The cluster listens on 127.0.0.1
on a free port and on a unix socket in its own folder; readiness is ``pg_isready``, never a
sleep. Its superuser ``mailvault`` signs in with a password (scram-sha-256), so the tests
exercise the way a real deployment hands mailvault its credentials (a file or the
environment), not a trust shortcut.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.sources.dovecot import free_ports

BIN = Path("/usr/lib/postgresql/15/bin")
SUPERUSER = "mailvault"
UNPRIVILEGED = "nobody"


def available() -> str:
    """'' when PostgreSQL's server programs are installed here, else why not."""
    missing = [name for name in ("initdb", "pg_ctl", "pg_isready")
               if not (BIN / name).exists() and shutil.which(name) is None]
    return f"PostgreSQL is not installed ({', '.join(missing)} missing)" if missing else ""


def _program(name: str) -> str:
    return str(BIN / name) if (BIN / name).exists() else name


@dataclass
class Cluster:
    """A running cluster: where it lives, its port and its superuser's password."""

    dir: Path
    port: int
    password: str

    @property
    def socket_dir(self) -> Path:
        return self.dir / "run"

    def url(self, database: str = "postgres", with_password: bool = False) -> str:
        """A SQLAlchemy URL for one database over TCP (the password only when asked)."""
        secret = f":{self.password}" if with_password else ""
        return f"postgresql://{SUPERUSER}{secret}@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres") -> Any:
        """A psycopg connection in autocommit (CREATE/DROP DATABASE need it)."""
        import psycopg
        return psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER,
                               password=self.password, dbname=database, autocommit=True)

    def create_database(self) -> str:
        """A new, empty database; returns its name."""
        name = f"mv_{secrets.token_hex(6)}"
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database, ending whatever sessions a test left in it."""
        with self.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def schema_url(self, database: str) -> str:
        """A new schema in ``database``, as the URL of a catalog that lives in it (libpq's
        ``options`` sets the search path: many vaults share one database so)."""
        schema = f"v_{secrets.token_hex(6)}"
        with self.connect(database) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        return f"{self.url(database)}?options=-csearch_path%3D{schema}"

    @contextmanager
    def database(self) -> Iterator[str]:
        """A new database for the block, dropped afterwards."""
        name = self.create_database()
        try:
            yield name
        finally:
            self.drop_database(name)

    def log(self) -> str:
        path = self.dir / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _as_owner(args: list[str]) -> list[str]:
    """The command run as the unprivileged user when we are root (PostgreSQL refuses root)."""
    if os.getuid() != 0:
        return args
    return ["setpriv", f"--reuid={UNPRIVILEGED}", f"--regid={_nobody().pw_gid}",
            "--clear-groups", "--", *args]


def _nobody() -> pwd.struct_passwd:
    return pwd.getpwnam(UNPRIVILEGED)


def start() -> Cluster:
    """initdb a new cluster in a short temporary folder and start it; ready when
    ``pg_isready`` says so."""
    base = Path(tempfile.mkdtemp(prefix="pg", dir="/tmp"))
    password = secrets.token_urlsafe(18)
    (base / "run").mkdir()
    pwfile = base / "pwfile"
    pwfile.write_text(password + "\n", encoding="utf-8")
    if os.getuid() == 0:
        owner = _nobody()
        for path in (base, base / "run", pwfile):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    data = base / "data"
    subprocess.run(_as_owner([_program("initdb"), "-D", str(data), "-U", SUPERUSER,
                              "--pwfile", str(pwfile), "--auth=scram-sha-256",
                              "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"]),
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    pwfile.unlink()
    cluster = Cluster(base, free_ports(1)[0], password)
    options = (f"-p {cluster.port} -k {cluster.socket_dir} -c listen_addresses=127.0.0.1 "
               "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
               "-c max_connections=200")
    started = subprocess.run(_as_owner([_program("pg_ctl"), "-D", str(data), "-l",
                                        str(base / "server.log"), "-o", options, "-w",
                                        "-t", "60", "start"]),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if started.returncode != 0:
        log = cluster.log()
        remove(cluster)
        raise RuntimeError(f"PostgreSQL did not start: {started.stdout}\n{log[-2000:]}")
    ready = subprocess.run([_program("pg_isready"), "-h", str(cluster.socket_dir), "-p",
                            str(cluster.port), "-t", "30"], stdout=subprocess.PIPE, text=True)
    if ready.returncode != 0:
        log = cluster.log()
        remove(cluster)
        raise RuntimeError(f"PostgreSQL is not ready: {ready.stdout}\n{log[-2000:]}")
    return cluster


def remove(cluster: Cluster) -> None:
    """Stop the server (fast shutdown) and delete its folder."""
    data = cluster.dir / "data"
    if (data / "postmaster.pid").exists():
        subprocess.run(_as_owner([_program("pg_ctl"), "-D", str(data), "-m", "fast", "-w",
                                  "stop"]), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)
    shutil.rmtree(cluster.dir, ignore_errors=True)


# The search backends every query-language test runs against (docs/postgresql.md): the
# PostgreSQL one needs a cluster (skipped where PostgreSQL is not installed, as the fixture is).
SEARCH_BACKENDS = ("tantivy", "postgresql")


def search_init_options(request: Any, backend: str, folder: Path) -> list[str]:
    """The ``mailvault init`` options of a vault with this search backend: none for Tantivy;
    for PostgreSQL, a catalog in a new schema of the session's search database (its password
    in a file in ``folder``) and ``--search-backend postgresql``."""
    if backend == "tantivy":
        return []
    url, password_file = search_catalog(request, folder)
    return ["--catalog", url, "--catalog-password-file", str(password_file),
            "--search-backend", "postgresql"]


def search_catalog(request: Any, folder: Path) -> tuple[str, Path]:
    """(URL, password file) of a new, empty catalog schema for a vault searched in
    PostgreSQL, from the session's cluster and search database fixtures."""
    cluster: Cluster = request.getfixturevalue("postgres_cluster")
    database: str = request.getfixturevalue("search_database")
    password_file = folder / "catalog-password"
    password_file.write_text(cluster.password + "\n", encoding="utf-8")
    password_file.chmod(0o600)
    return cluster.schema_url(database), password_file
