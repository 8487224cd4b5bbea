"""Backup, incremental backup, backup verify and restore times on a vault of real mail.

    python bench/backup_bench.py [--mbox ../shared/corpus/mbox/enron-allen-p] [--runs 3]
        [--catalog postgresql://USER@HOST:PORT/DB --catalog-password-file F] [--no-restore]

Builds a vault from the mbox (the product's own import), then times, through the use cases
the commands call: a first backup into a new folder, a second backup into the same folder
(nothing new: only the catalog, the open volume and the small files are copied; volumes of
--volume-mb, 1 by default, so that most are sealed as in a vault of 1 GB volumes), `backup
verify`, and a restore into a new vault (index rebuilt; left out with --no-restore). With
--catalog the vault's catalog is in that empty PostgreSQL database, and the backups read it in
one REPEATABLE READ transaction (docs/backup.md). Prints medians as JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from mailvault.accounts.principal import Principal
from mailvault.accounts.roles import Role
from mailvault.ingest.files import FileOptions, Reader
from mailvault.ingest.pipeline import Pipeline
from mailvault.usecases import backups
from mailvault.vault import Vault

ADMIN = Principal(name="bench", roles=frozenset({Role.ADMIN}))
DEFAULT_MBOX = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "mbox" / "enron-allen-p"


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mbox", type=Path, default=DEFAULT_MBOX)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--volume-mb", type=int, default=1,
                        help="[store] volume_max_mb: small, so that most volumes are sealed")
    parser.add_argument("--catalog", default="",
                        help="an empty PostgreSQL database for the vault's catalog")
    parser.add_argument("--catalog-password-file", default="")
    parser.add_argument("--no-restore", action="store_true",
                        help="time the backups and verify only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        Vault.create(work / "vault", catalog_url=args.catalog,
                     catalog_password_file=args.catalog_password_file).close()
        settings = work / "vault" / "mailvault.toml"
        settings.write_text(settings.read_text().replace(
            "[store]\n", f"[store]\nvolume_max_mb = {args.volume_mb}\n", 1))
        vault = Vault.open(work / "vault")
        with Pipeline(vault, actor="bench") as pipeline:
            archived = pipeline.archive_many(Reader([args.mbox], FileOptions())).archived
        times: dict[str, list[float]] = {"first": [], "again": [], "verify": [], "restore": []}
        if args.no_restore:
            del times["restore"]
        copied: dict[str, int] = {}
        for run in range(args.runs):
            target = work / f"backup-{run}"
            times["first"].append(timed(lambda t=target: backups.back_up(vault, ADMIN, t)))
            start = time.perf_counter()
            report = backups.back_up(vault, ADMIN, target)
            times["again"].append(time.perf_counter() - start)
            copied = {"files": len(report.copied), "bytes": report.bytes_copied,
                      "kept": len(report.kept)}
            times["verify"].append(timed(lambda t=target: backups.check_backup(ADMIN, t)))
            if args.no_restore:
                continue
            restored = work / f"restored-{run}"
            times["restore"].append(timed(lambda t=target, r=restored: backups.restore(
                ADMIN, t, r, keys_from=vault.path / "keys")))
            shutil.rmtree(restored)
        vault.close()
        size = sum(p.stat().st_size for p in (work / "backup-0").rglob("*") if p.is_file())
    print(json.dumps({"messages": archived, "backup_bytes": size,
                      "second_backup_copied": copied,
                      **{f"{name}_s": round(statistics.median(values), 3)
                         for name, values in times.items()}}, indent=1))


if __name__ == "__main__":
    main()
