"""Build a large vault in chunks and record how import speed and sizes change as it grows.

    python bench/scale_build.py --vault /data/v1m --to 1000000 --chunk 100000
    python bench/scale_build.py --vault /data/v1m-pg --to 1000000 --chunk 100000 \\
        --catalog postgresql://mailvault@127.0.0.1:5432/v1m --catalog-password-file F \\
        [--search-backend postgresql]

Each chunk is a new mbox of distinct realistic messages (`make_corpus.py`'s generator,
numbered on from the messages already built, so nothing is a duplicate), imported with the
real `mailvault import` into the same vault, then deleted (a 10M build never holds more than
one chunk's mbox on disk). After each chunk it prints one JSON line: messages in the vault,
the chunk's messages/s and MB/s, the import's peak memory (PSS of its whole process tree),
the CPU per message of the import's processes and of the PostgreSQL server (every
`postgres` process on the machine: run nothing else on it), and per message: catalog bytes
(the SQLite file with its WAL, or the PostgreSQL database less its size when empty and less
the search tables), index bytes (Tantivy's folder, or the
PostgreSQL search tables) and stored bytes. Run again with a larger ``--to`` to continue a
build: the vault's message count says where it stands.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from import_bench import tree_pss
from make_corpus import write_mbox

from mailvault.vault import Vault

MAILVAULT = [sys.executable, "-m", "mailvault"]


def init(vault: Path, args: argparse.Namespace) -> None:
    command = [*MAILVAULT, "init", "--vault", str(vault)]
    if args.catalog:
        command += ["--catalog", args.catalog, "--search-backend", args.search_backend]
        if args.catalog_password_file:
            command += ["--catalog-password-file", args.catalog_password_file]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def catalog_bytes(vault: Path) -> int:
    """What the catalog occupies: SQLite's file and WAL, or PostgreSQL's whole database."""
    opened = Vault.open(vault)
    try:
        if opened.engine.dialect.name == "sqlite":
            return sum(f.stat().st_size for f in vault.glob("catalog.sqlite*"))
        with opened.engine.connect() as conn:
            return int(conn.exec_driver_sql(
                "SELECT pg_database_size(current_database())").scalar() or 0)
    finally:
        opened.close()


def _cpu_ticks(pid: int) -> tuple[str, int, int, int]:
    """A process's name, parent, own CPU ticks and the ticks of the children it reaped."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2:].split()
    return (text[text.index("(") + 1:text.rindex(")")], int(fields[1]),
            int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14]))


def postgres_cpu_seconds() -> float:
    """CPU seconds of the PostgreSQL server on this machine: its live processes, and what the
    postmaster collected from backends that ended."""
    total = 0
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            name, parent, own, reaped = _cpu_ticks(int(entry.name))
            if name != "postgres":
                continue
            total += own
            if _cpu_ticks(parent)[0] != "postgres":
                total += reaped
        except (OSError, ValueError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


def tree_ticks(pid: int, seen: dict[int, int]) -> None:
    """Record the CPU ticks of a process and its descendants in ``seen`` (the import's
    workers hang off a fork server the importer need not wait for, so its rusage would not
    hold them)."""
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            seen[current] = max(seen.get(current, 0), _cpu_ticks(current)[2])
            with open(f"/proc/{current}/task/{current}/children") as handle:
                pending.extend(int(c) for c in handle.read().split())
        except (OSError, ValueError):
            continue


def import_chunk(vault: Path, mbox: Path) -> tuple[dict[str, Any], float, int, float]:
    """The import's summary, its wall seconds, its peak PSS and its CPU seconds."""
    started = time.perf_counter()
    process = subprocess.Popen([*MAILVAULT, "import", "--vault", str(vault), "--json",
                                str(mbox)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = 0
    ticks: dict[int, int] = {}
    while process.poll() is None:
        peak = max(peak, tree_pss(process.pid))
        tree_ticks(process.pid, ticks)
        time.sleep(0.2)
    elapsed = time.perf_counter() - started
    out, err = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"import failed ({process.returncode}): {err.decode()[-2000:]}")
    summary: dict[str, Any] = json.loads(out)
    cpu = sum(ticks.values()) / os.sysconf("SC_CLK_TCK")
    return summary, elapsed, peak, cpu


def stats(vault: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(subprocess.run(
        [*MAILVAULT, "stats", "--json", "--vault", str(vault)], check=True,
        capture_output=True).stdout)
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vault", type=Path, required=True)
    parser.add_argument("--to", type=int, required=True, help="messages in the vault at the end")
    parser.add_argument("--chunk", type=int, default=100_000)
    parser.add_argument("--catalog", default="", help="a new vault's PostgreSQL catalog URL")
    parser.add_argument("--catalog-password-file", default="")
    parser.add_argument("--search-backend", default="tantivy")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()),
                        help="where each chunk's mbox is written (and deleted)")
    args = parser.parse_args()
    if not args.vault.exists():
        init(args.vault, args)
    empty_catalog = catalog_bytes(args.vault) if args.catalog else 0
    have = int(stats(args.vault)["messages"])
    while have < args.to:
        count = min(args.chunk, args.to - have)
        mbox = args.work / f"mailvault-scale-{have}.mbox"
        size = write_mbox(mbox, count, seed=have + 1, start=have)
        server_before = postgres_cpu_seconds()
        try:
            summary, elapsed, peak, import_cpu = import_chunk(args.vault, mbox)
        finally:
            mbox.unlink()
        server_cpu = postgres_cpu_seconds() - server_before
        found = stats(args.vault)
        have = int(found["messages"])
        catalog = catalog_bytes(args.vault) - empty_catalog
        if args.catalog and args.search_backend == "postgresql":
            catalog -= int(found["index_bytes"])
        print(json.dumps({
            "catalog": "postgresql" if args.catalog else "sqlite",
            "search": args.search_backend if args.catalog else "tantivy",
            "messages": have,
            "archived": summary["archived"],
            "seconds": round(elapsed, 1),
            "msg_per_s": round(summary["archived"] / elapsed, 1),
            "mb_per_s": round(size / 1048576 / elapsed, 2),
            "peak_pss_mb": round(peak / 1048576, 1),
            "import_cpu_ms_per_message": round(import_cpu * 1000 / summary["archived"], 3),
            "postgres_cpu_ms_per_message": round(server_cpu * 1000 / summary["archived"], 3),
            "catalog_per_message": round(catalog / have, 1),
            "index_per_message": round(int(found["index_bytes"]) / have, 1),
            "stored_per_message": round(int(found["stored_bytes"]) / have, 1),
            "raw_per_message": round(int(found["raw_bytes"]) / have, 1),
            "load": round(float(Path("/proc/loadavg").read_text().split()[0]), 1),
        }), flush=True)


if __name__ == "__main__":
    main()
