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

The export builds documents in worker processes (forkserver), whose CPU time ``getrusage``
of the children does not see (their parent, the fork server, is never waited for): the run
is started in a session of its own and every process of that session is sampled from
/proc every 0.1 s (CPU time, and the peak resident memory ``VmHWM`` of each); the command's
own process is counted exactly from ``getrusage``, the workers as last sampled (so up to
0.1 s of each worker's last moments may be missed).
"""

from __future__ import annotations

import argparse
import json
import os
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
    process = subprocess.Popen([*MAILVAULT, "export", query, "--to", str(out), "--format", fmt,
                                "--vault", str(vault), "--json"], stdout=subprocess.PIPE,
                               start_new_session=True)
    workers: dict[int, tuple[float, int]] = {}
    while process.poll() is None:
        workers.update(_session(process.pid))
        time.sleep(0.1)
    elapsed = time.perf_counter() - started
    stdout = process.stdout.read() if process.stdout else b""
    if process.returncode:
        raise SystemExit(f"export failed ({process.returncode})")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_kb = usage.ru_maxrss
    workers.pop(process.pid, None)
    cpu = (usage.ru_utime + usage.ru_stime - cpu_before
           + sum(c for c, _rss in workers.values()))
    worker_peak_mb = max((rss for _c, rss in workers.values()), default=0) / 1024
    result = json.loads(stdout)
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
            "peak_rss_mb": round(max(peak_kb, before) / 1024, 1),
            "workers": len(workers), "worker_peak_rss_mb": round(worker_peak_mb, 1)}


def _session(leader: int) -> dict[int, tuple[float, int]]:
    """CPU seconds and peak RSS (kB) of every process in ``leader``'s session."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[3]) != leader:
                continue
            hwm = next((int(line.split()[1]) for line in
                        Path(f"/proc/{entry}/status").read_text().splitlines()
                        if line.startswith("VmHWM:")), 0)
        except (OSError, ValueError):
            continue
        found[int(entry)] = ((int(fields[11]) + int(fields[12])) / tick, hwm)
    return found


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
