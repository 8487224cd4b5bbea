"""What a node's index does after changes made on another node: apply the changed messages'
documents (the reindex log of format 6), against rewriting every document (what any change
on another node made every other node do before format 6, and what a node still does when
it comes back behind the log's floor).

    python bench/reindex_nodes.py --count 20000 --changed 1000 --repeat 3

A vault of COUNT generated messages is imported as node "a"; a copy of its index folder is
node "b"'s, and b heals once so that its cursor is recorded. CHANGED messages are then logged
for reindexing as a tier move or a new arrival logs them (``catalog.queue_reindex``). Each
repeat puts b's copy back in place and times b's heal twice: as it is (it applies the CHANGED
entries), and with the log's floor raised past b's marker (every document written again).
Prints one JSON line per heal and the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_corpus import write_mbox
from sqlalchemy import select

from mailvault.config import load_settings
from mailvault.search import indexing
from mailvault.store import catalog, database, schema
from mailvault.vault import Vault, open_catalog

MAILVAULT = [sys.executable, "-m", "mailvault"]
NODE = "MAILVAULT_SERVE_NODE"


def run(*args: str | Path) -> None:
    subprocess.run([*MAILVAULT, *map(str, args)], check=True, capture_output=True)


def put_back(copy: Path, index: Path) -> None:
    shutil.rmtree(index)
    shutil.copytree(copy, index)


def timed_heal(vault: Path) -> tuple[float, int]:
    """(seconds, documents written) of one heal of the vault's index as this node."""
    opened = Vault(vault, load_settings(vault))
    try:
        started = time.perf_counter()
        written = indexing.heal(opened)
        return time.perf_counter() - started, written
    finally:
        opened.close()


def set_floor(vault: Path, value: int) -> None:
    engine = open_catalog(vault, load_settings(vault))
    try:
        with engine.begin() as conn:
            database.upsert(conn, schema.index_state, ["name"],
                            {"name": catalog.REINDEX_FLOOR, "value": value})
    finally:
        engine.dispose()


def log_changes(vault: Path, changed: int) -> tuple[int, int]:
    """Log ``changed`` messages for reindexing; (the floor, the newest entry) after."""
    engine = open_catalog(vault, load_settings(vault))
    try:
        with engine.begin() as conn:
            ids = conn.execute(select(schema.messages.c.id).order_by(schema.messages.c.id)
                               .limit(changed)).scalars().all()
            catalog.queue_reindex(conn, ids)
            return catalog.reindex_floor(conn), catalog.last_reindex_seq(conn)
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--changed", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mailvault-reindex-nodes-") as work:
        root = Path(work)
        vault, mbox = root / "vault", root / "mail.mbox"
        write_mbox(mbox, args.count)
        os.environ[NODE] = "node-a"
        run("init", "--vault", vault)
        run("import", mbox, "--vault", vault)
        copy = root / "index-b"
        shutil.copytree(vault / "index", copy)
        os.environ[NODE] = "node-b"
        timed_heal(vault)  # b's cursor recorded: the log is kept for it
        floor, newest = log_changes(vault, args.changed)
        results: dict[str, list[float]] = {"apply": [], "rebuild": []}
        for _ in range(args.repeat):
            for way in ("apply", "rebuild"):
                put_back(copy, vault / "index")
                set_floor(vault, newest if way == "rebuild" else floor)
                seconds, written = timed_heal(vault)
                results[way].append(seconds)
                print(json.dumps({"heal": way, "seconds": round(seconds, 3),
                                  "documents": written}), flush=True)
        apply, rebuild = (statistics.median(results[w]) for w in ("apply", "rebuild"))
        print(json.dumps({"messages": args.count, "changed": args.changed,
                          "apply_median_s": round(apply, 3),
                          "rebuild_median_s": round(rebuild, 3),
                          "ratio": round(rebuild / apply, 1)}))


if __name__ == "__main__":
    main()
