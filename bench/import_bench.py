"""Import throughput and peak memory of `mailvault import` on a generated corpus.

    python bench/import_bench.py --count 100000            # makes the corpus if needed

Runs the real command in a fresh vault, samples the resident memory of the whole process
tree (the importer, its worker processes and the forkserver; PSS, so shared pages count
once) every 0.1 s from /proc, and prints messages/s,
MB/s, peak memory, and stored/raw and index/raw from `mailvault stats --json`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_corpus import write_mbox

MAILVAULT = [sys.executable, "-m", "mailvault"]


def tree_pss(pid: int) -> int:
    """Proportional set size (shared pages divided among their users) of a process and all
    its descendants: what the import really occupies, without counting shared pages twice."""
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            with open(f"/proc/{current}/smaps_rollup") as handle:
                for line in handle:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
            with open(f"/proc/{current}/task/{current}/children") as handle:
                pending.extend(int(c) for c in handle.read().split())
        except (OSError, ValueError):
            continue
    return total


def run(corpus: Path, workdir: Path) -> dict[str, float]:
    vault = workdir / "vault"
    subprocess.run([*MAILVAULT, "init", "--vault", str(vault)], check=True,
                   stdout=subprocess.DEVNULL)
    started = time.perf_counter()
    process = subprocess.Popen([*MAILVAULT, "import", "--vault", str(vault), "--json",
                                str(corpus)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    peak = 0
    while process.poll() is None:
        peak = max(peak, tree_pss(process.pid))
        time.sleep(0.1)
    elapsed = time.perf_counter() - started
    assert process.stdout is not None
    summary = json.loads(process.stdout.read())
    stats = json.loads(subprocess.run([*MAILVAULT, "stats", "--json", "--vault", str(vault)],
                                      check=True, capture_output=True).stdout)
    active = stats["tiers"]["active"]
    return {
        "messages": summary["archived"],
        "seconds": round(elapsed, 2),
        "msg_per_s": round(summary["archived"] / elapsed, 1),
        "mb_per_s": round(corpus.stat().st_size / 1048576 / elapsed, 2),
        "peak_pss_mb": round(peak / 1048576, 1),
        "stored_of_raw": active["stored_of_raw"],
        "index_of_raw": active["index_of_raw"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--corpus", type=Path, help="an mbox to import (default: generated)")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    corpus = args.corpus or Path(tempfile.gettempdir()) / f"mailvault-gen-{args.count}.mbox"
    if not corpus.exists():
        write_mbox(corpus, args.count)
    for _ in range(args.runs):
        workdir = Path(tempfile.mkdtemp(prefix="mailvault-bench-"))
        try:
            print(json.dumps(run(corpus, workdir)))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
