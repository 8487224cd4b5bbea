"""Memory of `mailvault serve` at rest and under concurrent searchers, and the latency of
the search API (or the search page with its facets) as they see it over HTTP.

    python bench/web_load.py --vault /path/vault [--searchers 20] [--rounds 25] [--page]

Starts the real `serve` (SMTP and web on free loopback ports) on the vault, makes an
auditor's API token (and, with --page, a signed-in session), measures the memory of serve's
whole process tree (serve, the archiver, the forkserver and workers) at rest, then while N
threads each send the 20 queries of the search benchmark ``rounds`` times over HTTP, and
prints JSON. Memory is given twice: the proportional set size of the tree (shared pages
divided among their users) and the resident set of the `serve` process alone, each at rest
and at its peak (sampled every 0.1 s).
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
USER = "bench-load"
PASSWORD = "bench password 1234"


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
    subprocess.run([*MAILVAULT, "user", "add", USER, "--role", "auditor", "--vault",
                    str(vault), "--password-file", "/dev/stdin"], input=PASSWORD,
                   text=True, capture_output=True)
    made = subprocess.run([*MAILVAULT, "token", "create", "--user", USER, "--expires", "1",
                           "--vault", str(vault)], capture_output=True, text=True, check=True)
    return made.stdout.strip()


def session_cookies(base: str) -> httpx.Cookies:
    """The cookies of one signed-in session (shared by every searcher of the page)."""
    with httpx.Client(base_url=base, timeout=60) as client:
        form = client.get("/login").text
        csrf = form.split('name="csrf" value="')[1].split('"')[0]
        client.post("/login", data={"username": USER, "password": PASSWORD, "csrf": csrf})
        if "mv_session" not in client.cookies:
            raise SystemExit("could not sign in")
        return client.cookies


def rss(pid: int) -> int:
    """Resident set size of one process."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # the process has ended
        return 0
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vault", type=Path, required=True)
    parser.add_argument("--searchers", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--page", action="store_true",
                        help="load the search page with its facets, not the search API")
    args = parser.parse_args()
    secret = token(args.vault)
    process, base = start(args.vault)
    try:
        time.sleep(3)
        at_rest = tree_pss(process.pid)
        rss_at_rest = rss(process.pid)
        url = "/" if args.page else "/api/v1/search"
        cookies = session_cookies(base) if args.page else None
        samples: list[float] = []
        lock = threading.Lock()
        peak = [at_rest, rss_at_rest]
        done = threading.Event()

        def searcher(number: int) -> None:
            with httpx.Client(base_url=base, timeout=120, cookies=cookies,
                              headers={"authorization": f"Bearer {secret}"}
                              if not args.page else {}) as client:
                for round_ in range(args.rounds):
                    query = QUERIES[(number + round_) % len(QUERIES)]
                    started = time.perf_counter()
                    client.get(url, params={"q": query}).raise_for_status()
                    with lock:
                        samples.append((time.perf_counter() - started) * 1000)

        def sampler() -> None:
            while not done.wait(0.1):
                peak[0] = max(peak[0], tree_pss(process.pid))
                peak[1] = max(peak[1], rss(process.pid))

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
            "what": "search page with facets" if args.page else "search API",
            "searchers": args.searchers, "requests": len(samples),
            "requests_per_s": round(len(samples) / elapsed, 1),
            "p50_ms": round(statistics.median(samples), 1),
            "p95_ms": round(samples[int(len(samples) * 0.95) - 1], 1),
            "pss_at_rest_mb": round(at_rest / 1048576, 1),
            "pss_peak_mb": round(peak[0] / 1048576, 1),
            "serve_rss_at_rest_mb": round(rss_at_rest / 1048576, 1),
            "serve_rss_peak_mb": round(peak[1] / 1048576, 1)}, indent=2))
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=120)


if __name__ == "__main__":
    main()
