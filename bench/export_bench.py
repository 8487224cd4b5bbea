"""Export speed: messages/s, MB/s and peak memory of ``mailvault export``, eml and mbox, each
with its manifests, Concordance load file and signed summary.

    python bench/make_corpus.py --count 100000 --out /work/bench-data/export/gen-100k.mbox
    mailvault init --vault /work/bench-data/export/vault100k
    mailvault import /work/bench-data/export/gen-100k.mbox --vault /work/bench-data/export/vault100k
    python bench/export_bench.py --vault /work/bench-data/export/vault100k \\
        --out /work/bench-data/export/runs [--query ''] [--formats eml mbox] [--repeat 1]

Each run is the real command in its own process, into a new folder; the figures are its
wall-clock time, the archived bytes exported (the ``size`` of every message) over that time,
the process's CPU time (user + system: on a machine others load, messages per CPU-second
says what one unshared core does), and its peak resident memory (``ru_maxrss``). The folder
is removed after each run unless --keep.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

MAILVAULT = [sys.executable, "-m", "mailvault"]


def one_run(vault: Path, out: Path, query: str, fmt: str) -> dict[str, Any]:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    before, cpu_before = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
    started = time.perf_counter()
    done = subprocess.run([*MAILVAULT, "export", query, "--to", str(out), "--format", fmt,
                           "--vault", str(vault), "--json"], check=True, capture_output=True)
    elapsed = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_kb, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime - cpu_before
    result = json.loads(done.stdout)
    summary = json.loads((out / "summary.json").read_text("utf-8"))
    manifest_bytes = sum(row["size"] for row in _messages(out))
    counts = result["counts"]
    return {"format": fmt, "messages": counts["exported"], "documents": counts["documents"],
            "errors": counts["errors"], "files": summary["counts"]["files"],
            "seconds": round(elapsed, 1), "cpu_seconds": round(cpu, 1),
            # What one unshared core would do: the machine is shared by other engineers.
            "messages_per_cpu_s": round(counts["exported"] / cpu, 1),
            "messages_per_s": round(counts["exported"] / elapsed, 1),
            "mb_per_s": round(manifest_bytes / elapsed / 1e6, 2),
            "archived_mb": round(manifest_bytes / 1e6, 1),
            # ru_maxrss of children is the largest of any child so far: a later, smaller run
            # reports the earlier peak, so each format is best run in its own invocation.
            "peak_rss_mb": round(max(peak_kb, before) / 1024, 1)}


def _messages(out: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads((out / "manifest.json").read_text("utf-8"))
    return [r for r in rows if r["type"] == "message"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vault", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="where runs write")
    parser.add_argument("--query", default="")
    parser.add_argument("--formats", nargs="+", default=["eml", "mbox"])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for fmt in args.formats:
        runs = []
        for number in range(args.repeat):
            out = args.out / f"{fmt}-{number}-{int(time.time())}"
            runs.append(one_run(args.vault, out, args.query, fmt))
            print(json.dumps(runs[-1]), flush=True)
            if not args.keep:
                shutil.rmtree(out)
        print(json.dumps({"format": fmt, "runs": len(runs), "median_messages_per_s":
                          statistics.median(r["messages_per_s"] for r in runs),
                          "median_mb_per_s": statistics.median(r["mb_per_s"] for r in runs),
                          "peak_rss_mb": max(r["peak_rss_mb"] for r in runs)}), flush=True)


if __name__ == "__main__":
    main()
