"""The invariants a vault must hold after any crash, once it is restarted or the killed
command is run again: the one checker every crash, disk-full and soak test calls.

- every acknowledged message is present exactly once (and every disposed one is gone);
- ``verify`` and ``audit verify`` are clean;
- the index holds exactly the catalog's messages (opening the vault heals it first, as any
  restart does);
- nothing temporary is left: no ``*.tmp``/``*.part`` files, no lock still held, no spool
  segment once the spool is drained, no tier job left running, no disposition run left half
  done (deleting, or still "proposed" with tombstones of its own).
"""

from __future__ import annotations

import fcntl
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import exists, select

from mailvault.search import query as q
from mailvault.serve import spool_folder
from mailvault.store import catalog, schema
from mailvault.vault import Vault
from tests.support import invoke

TEMPORARY_SUFFIXES = (".tmp", ".part")


@dataclass(frozen=True)
class VaultFacts:
    """What the checker saw: messages by SHA-256, and the counts a test may assert on."""

    sha256: frozenset[str]
    messages: int
    tombstones: frozenset[str]


def check_vault(path: Path, *, present: Iterable[str] = (), absent: Iterable[str] = (),
                spool_drained: bool = True) -> VaultFacts:
    """Assert every invariant on the vault at ``path`` (no process may be writing to it);
    ``present``: SHA-256s that must be there exactly once; ``absent``: ones that must not."""
    with Vault.open(path) as vault:
        with vault.engine.connect() as conn:
            rows = conn.execute(select(schema.messages.c.id, schema.messages.c.sha256)).all()
            running_jobs = conn.execute(select(schema.tier_jobs.c.id).where(
                schema.tier_jobs.c.state != "done")).scalars().all()
            job_items = conn.execute(select(schema.tier_job_items.c.message_id)).all()
            tombstones = frozenset(conn.execute(select(schema.tombstones.c.sha256)).scalars())
            marker = vault.index.marker()
            queued = catalog.reindex_after(conn, marker.generation if marker else 0)
            runs = schema.disposition_runs
            half_done = conn.execute(select(runs.c.id).where(
                (runs.c.state == "executing") | ((runs.c.state == "proposed") & exists().where(
                    schema.tombstones.c.run_id == runs.c.id)))).scalars().all()
        indexed = sorted(vault.index.ids(q.MatchAll()))
        spool = spool_folder(vault)
        # Why a heal may have left the index behind, for the failure's message.
        why = (f"logged for reindexing: {len(queued)}; index problem: "
               f"{vault.index_problem or 'none'}; writer held elsewhere: "
               f"{vault.index.writer_busy()}")
    by_hash = Counter(sha for _, sha in rows)
    twice = [sha for sha, n in by_hash.items() if n > 1]
    assert not twice, f"{len(twice)} messages are archived more than once: {twice[:3]}"
    missing = set(present) - set(by_hash)
    assert not missing, f"{len(missing)} acknowledged messages are missing: {sorted(missing)[:3]}"
    kept = set(absent) & set(by_hash)
    assert not kept, f"{len(kept)} disposed messages are still there: {sorted(kept)[:3]}"
    catalogued = sorted(i for i, _ in rows)
    assert indexed == catalogued, (
        f"the index holds {len(indexed)} documents, the catalog {len(rows)} messages "
        f"(only indexed: {sorted(set(indexed) - set(catalogued))[:5]}; {why})")
    assert not queued, f"{len(queued)} messages still wait for reindexing after a heal"
    assert not running_jobs and not job_items, (
        f"tier jobs {running_jobs} were left running with {len(job_items)} items")
    assert not half_done, f"disposition runs {half_done} were left half done"

    verified = invoke("verify", "--vault", path, "--json")
    assert verified.exit_code == 0 and verified.json()["problems"] == [], verified.text
    assert verified.json()["messages_checked"] == len(rows)
    audited = invoke("audit", "verify", "--vault", path, "--json")
    assert audited.exit_code == 0 and audited.json()["ok"], audited.text

    left = leftovers(path, spool if spool_drained else None)
    assert not left, f"temporary state was left behind: {left}"
    return VaultFacts(frozenset(by_hash), len(rows), tombstones)


def leftovers(vault: Path, spool: Path | None) -> list[str]:
    """Temporary files, held locks and (when ``spool`` is given) spool segments."""
    found = [str(p) for p in vault.rglob("*")
             if p.is_file() and p.name.endswith(TEMPORARY_SUFFIXES)]
    for lock in [*vault.glob("locks/*"), *vault.glob("volumes/*/*.vol")]:
        if held(lock):
            found.append(f"{lock} is locked")
    if spool is not None and spool.exists():
        found += [str(p) for p in spool.iterdir()]
    return found


def held(path: Path) -> bool:
    """Whether some process holds an flock on ``path`` (asked without taking it for long)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
