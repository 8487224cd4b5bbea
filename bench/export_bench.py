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

The export works in worker processes (forkserver) that are not its children: their parent
is the fork server, which the export never waits for, so neither the export's own rusage
nor a sample of /proc sees all of their CPU (an earlier /proc sampler lost them). This
bench therefore makes itself a child subreaper (``PR_SET_CHILD_SUBREAPER``): the fork
server and anything else the export leaves behind is re-parented to the bench when the
export exits, and the bench waits for every one of them. The kernel adds a waited-for
process's CPU time, and that of every descendant it waited for, to its parent's children
usage, so ``getrusage(RUSAGE_CHILDREN)`` after the run holds the CPU of the export, the fork
server and every worker, exactly. Peak memory: the export process's own ``ru_maxrss`` (from
``wait4``), and the largest of any process of the run (the children's ``ru_maxrss``).

Where the wall-clock goes (``busy``): a thread samples every process below the export
(found by parent links in /proc, so the fork server's workers too) five times a second:
its CPU time (``/proc/PID/stat``), its time runnable but waiting for a core
(``/proc/PID/schedstat``: the run queue, i.e. other processes had the cores), both as
shares of the run's wall-clock time, and the share of samples that found it in state D
(uninterruptible sleep: waiting for the disk, mostly; the kernel's block-IO delay counter
is off here). Given for the export process and for the workers (the fork server's
children) together and one by one; a process busy 0.1 of the run and waiting 0.8 for a
core was starved by the machine, not by the export; what is left is sleep (waiting for
work or for the pipe).
"""

from __future__ import annotations

import argparse
import csv
import ctypes
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

MAILVAULT = [sys.executable, "-m", "mailvault"]
_PR_SET_CHILD_SUBREAPER = 36
_ORPHAN_WAIT_S = 60.0
_SAMPLE_S = 0.2
_TICK = os.sysconf("SC_CLK_TCK")


class Sampler(threading.Thread):
    """Samples the CPU, run-queue wait and IO wait of every process below ``root``."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.stop = threading.Event()
        # pid -> parent pid, the first and last (cpu, run queue) seen in seconds, and how
        # many samples found it, and found it in state D.
        self.parents: dict[int, int] = {}
        self.first: dict[int, tuple[float, float]] = {}
        self.last: dict[int, tuple[float, float]] = {}
        self.samples: dict[int, list[int]] = {}

    def run(self) -> None:
        while not self.stop.wait(_SAMPLE_S):
            self.sample()

    def sample(self) -> None:
        parents = {}
        for name in os.listdir("/proc"):
            if name.isdigit() and (ppid := _parent(int(name))) is not None:
                parents[int(name)] = ppid
        family, grown = {self.root}, True
        while grown:
            below = {pid for pid, ppid in parents.items() if ppid in family} - family
            family |= below
            grown = bool(below)
        for pid in family:
            found = _times(pid)
            if found is None:
                continue
            times, state = found
            self.parents.setdefault(pid, parents.get(pid, 0))
            self.first.setdefault(pid, times)
            self.last[pid] = times
            counts = self.samples.setdefault(pid, [0, 0])
            counts[0] += 1
            counts[1] += state == b"D"

    def shares(self, wall: float) -> dict[str, Any]:
        """Busy and run-queue shares of the wall-clock time, and D-state share of the
        samples, by role."""
        def share(pids: list[int]) -> dict[str, float]:
            sums = [sum(self.last[p][i] - self.first[p][i] for p in pids) for i in range(2)]
            seen = sum(self.samples[p][0] for p in pids) or 1
            return {"busy": round(sums[0] / wall, 3), "runqueue": round(sums[1] / wall, 3),
                    "disk_wait": round(sum(self.samples[p][1] for p in pids) / seen, 3)}
        servers = [p for p, ppid in self.parents.items() if ppid == self.root]
        workers = [p for p, ppid in self.parents.items() if ppid in servers]
        return {"export_process": share([self.root]), "workers": share(workers),
                "each_worker": [share([p]) for p in workers],
                "others": share([p for p in self.parents if p != self.root
                                 and p not in workers])}


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            text = handle.read()
    except OSError:
        return None
    return int(text[text.rindex(b")") + 2:].split()[1])


def _times(pid: int) -> tuple[tuple[float, float], bytes] | None:
    """CPU time and run-queue wait of ``pid`` so far, in seconds, and its state now."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rpartition(b")")[2].split()
        with open(f"/proc/{pid}/schedstat", "rb") as handle:
            queued = int(handle.read().split()[1]) / 1e9
    except (OSError, IndexError):
        return None
    # Fields after the name: state is [0], utime [11], stime [12].
    return ((int(fields[11]) + int(fields[12])) / _TICK, queued), fields[0]


def one_run(vault: Path, out: Path, query: str, fmt: str) -> dict[str, Any]:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    before, cpu_before = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
    stdout_path = out.with_name(out.name + ".stdout")
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    with open(stdout_path, "wb") as stdout:
        process = subprocess.Popen([*MAILVAULT, "export", query, "--to", str(out),
                                    "--format", fmt, "--vault", str(vault), "--json"],
                                   stdout=stdout)
        sampler = Sampler(process.pid)
        sampler.start()
        _pid, status, own = os.wait4(process.pid, 0)
        sampler.stop.set()
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    orphans = _reap_orphans()
    reaped_after = time.perf_counter() - started - elapsed
    result = json.loads(stdout_path.read_bytes())
    stdout_path.unlink()
    if process.returncode:
        raise SystemExit(f"export failed ({process.returncode})")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime - cpu_before
    own_cpu = own.ru_utime + own.ru_stime
    summary = json.loads((out / "summary.json").read_text("utf-8"))
    manifest_bytes = _message_bytes(out)
    counts = result["counts"]
    return {"format": fmt, "messages": counts["exported"], "documents": counts["documents"],
            "errors": counts["errors"], "files": summary["counts"]["files"],
            "seconds": round(elapsed, 1), "cpu_seconds": round(cpu, 1),
            # The export process's own share (the rest is the fork server and workers).
            "export_process_cpu_seconds": round(own_cpu, 1),
            # What one unshared core would do: the machine is shared by other engineers.
            "messages_per_cpu_s": round(counts["exported"] / cpu, 1),
            "messages_per_s": round(counts["exported"] / elapsed, 1),
            "mb_per_s": round(manifest_bytes / elapsed / 1e6, 2),
            "archived_mb": round(manifest_bytes / 1e6, 1),
            "peak_rss_mb": round(own.ru_maxrss / 1024, 1),
            # ru_maxrss of children is the largest of any child so far: a later, smaller run
            # reports the earlier peak, so each format is best run in its own invocation.
            "peak_rss_any_process_mb": round(max(usage.ru_maxrss, before) / 1024, 1),
            "load_before": load_before, "orphans_reaped": orphans,
            "orphans_reaped_after_s": round(reaped_after, 1),
            # Shares of the wall-clock time on a core and waiting for one; D-state samples.
            "busy": sampler.shares(elapsed), "load_after": os.getloadavg()[0]}


def _become_subreaper() -> None:
    """Have the export's orphans (the fork server, its workers) re-parented to this process,
    so that waiting for them adds their CPU to this process's children usage."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise SystemExit(f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(ctypes.get_errno())}")


def _reap_orphans() -> int:
    """Wait for every process the export left behind; how many there were."""
    reaped = 0
    deadline = time.monotonic() + _ORPHAN_WAIT_S
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return reaped
        if pid:
            reaped += 1
        elif time.monotonic() > deadline:
            raise SystemExit("the export left processes running after it exited")
        else:
            time.sleep(0.05)


def _message_bytes(out: Path) -> int:
    """The archived size of every exported message, read row by row from manifest.csv:
    holding the 100,000-row manifest.json in this process grew it to ~700 MB, and the next
    run's export process, forked from it, then reported that as its own peak."""
    with open(out / "manifest.csv", encoding="utf-8-sig", newline="") as handle:
        return sum(int(row["size"]) for row in csv.DictReader(handle)
                   if row["type"] == "message")


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
    _become_subreaper()
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
