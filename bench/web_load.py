"""Memory of `mailvault serve` at rest and under concurrent searchers, and the search API's
latency as they see it over HTTP.

    python bench/web_load.py --vault /path/vault [--searchers 20] [--rounds 25]

Starts the real `serve` (SMTP and web on free loopback ports) on the vault, makes an
auditor's API token, measures the proportional memory (PSS) of serve's whole process tree
(serve, the archiver, the forkserver and workers) at rest, then while N threads each send
the 20 queries of the search benchmark ``rounds`` times over HTTP, and prints JSON.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from import_bench import tree_pss
from search_bench import QUERIES

MAILVAULT = [sys.executable, "-m", "mailvault"]


def start(vault: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen([*MAILVAULT, "serve", "--vault", str(vault), "--smtp",
                                "127.0.0.1:0", "--web", "127.0.0.1:0"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("open "):
            return process, line.split()[1].rstrip("/")
    raise SystemExit("serve did not start")


def token(vault: Path) -> str:
    name = "bench-load"
    subprocess.run([*MAILVAULT, "user", "add", name, "--role", "auditor", "--vault",
                    str(vault), "--password-file", "/dev/stdin"], input="bench password 1234",
                   text=True, capture_output=True)
    made = subprocess.run([*MAILVAULT, "token", "create", "--user", name, "--expires", "1",
                           "--vault", str(vault)], capture_output=True, text=True, check=True)
    return made.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vault", type=Path, required=True)
    parser.add_argument("--searchers", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=25)
    args = parser.parse_args()
    secret = token(args.vault)
    process, base = start(args.vault)
    try:
        time.sleep(3)
        at_rest = tree_pss(process.pid)
        samples: list[float] = []
        lock = threading.Lock()
        peak = [at_rest]
        done = threading.Event()

        def searcher(number: int) -> None:
            with httpx.Client(base_url=base, timeout=60,
                              headers={"authorization": f"Bearer {secret}"}) as client:
                for round_ in range(args.rounds):
                    query = QUERIES[(number + round_) % len(QUERIES)]
                    started = time.perf_counter()
                    client.get("/api/v1/search", params={"q": query}).raise_for_status()
                    with lock:
                        samples.append((time.perf_counter() - started) * 1000)

        def sampler() -> None:
            while not done.wait(0.1):
                peak[0] = max(peak[0], tree_pss(process.pid))

        watcher = threading.Thread(target=sampler)
        watcher.start()
        threads = [threading.Thread(target=searcher, args=(n,))
                   for n in range(args.searchers)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        done.set()
        watcher.join()
        samples.sort()
        print(json.dumps({
            "searchers": args.searchers, "requests": len(samples),
            "requests_per_s": round(len(samples) / elapsed, 1),
            "p50_ms": round(statistics.median(samples), 1),
            "p95_ms": round(samples[int(len(samples) * 0.95) - 1], 1),
            "pss_at_rest_mb": round(at_rest / 1048576, 1),
            "pss_peak_mb": round(peak[0] / 1048576, 1)}, indent=2))
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=120)


if __name__ == "__main__":
    main()
