"""Server time of the search API and the search page (with facets) for the 20 queries of
the search benchmark, p50/p95, for an auditor (all mail) and a user (own mail only).

    python bench/web_bench.py                      # imports ../shared/corpus Enron mboxes
    python bench/web_bench.py --vault /path/vault  # an existing vault (users are added)
    python bench/web_bench.py --vault V --who auditor --profile web.prof
    python bench/web_bench.py --vault V --who auditor --use-case

With --profile, the search page's use case (search with facets, catalog rows, audit entry)
runs for each query under cProfile in this thread instead (FastAPI runs the routes in a
thread pool, where a profiler started here does not see them), timed in CPU seconds, and
the top of the profile is printed. With --use-case, the same use case runs without a
profiler and the CPU milliseconds of each query (median of --repeat calls, and the first
call) are printed.

Requests go through the real application in-process (httpx's ASGI transport): routing,
bearer-token or session check, the use case (scope, search, facets, catalog rows, audit
entry), template or JSON rendering. No network, so the figures are the server's share.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from search_bench import QUERIES

from mailvault.accounts import tokens, users
from mailvault.usecases import finding
from mailvault.vault import Vault
from mailvault.web.app import create_app

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "mbox" / "enron-allen-p"
MAILVAULT = [sys.executable, "-m", "mailvault"]
PASSWORD = "bench password 1234"


def prepared(path: Path | None, workdir: Path) -> Path:
    if path is not None:
        return path
    vault = workdir / "vault"
    subprocess.run([*MAILVAULT, "init", "--vault", str(vault)], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run([*MAILVAULT, "import", "--vault", str(vault), str(CORPUS)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return vault


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_ms": round(statistics.median(ordered), 2),
            "p95_ms": round(ordered[max(int(len(ordered) * 0.95) - 1, 0)], 2),
            "max_ms": round(ordered[-1], 2)}


async def measure(client: httpx.AsyncClient, url: str, params: dict[str, str],
                  headers: dict[str, str], repeat: int,
                  cpu: list[float] | None = None) -> list[float]:
    """Wall milliseconds of ``repeat`` requests after a warm-up; with ``cpu``, the CPU
    milliseconds of this process for each request go there too (requests run one at a
    time, so it is theirs: on a shared machine the steadier figure)."""
    samples = []
    for number in range(repeat + 1):
        started, cpu_started = time.perf_counter(), time.process_time()
        answer = await client.get(url, params=params, headers=headers)
        elapsed = (time.perf_counter() - started) * 1000
        answer.raise_for_status()
        if number and cpu is not None:
            cpu.append((time.process_time() - cpu_started) * 1000)
        samples.append(elapsed)
    return samples[1:]  # the first of each is a warm-up


def by_query(samples: list[float], repeat: int) -> dict[str, float]:
    """Median per query, for samples taken query after query, ``repeat`` each."""
    return {query or "(empty: all)": round(statistics.median(
                samples[n * repeat:(n + 1) * repeat]), 1)
            for n, query in enumerate(QUERIES)}


def add_people(vault: Vault) -> None:
    for name, roles, addresses in (("bench-auditor", ["auditor"], []),
                                   ("bench-user", ["user"], ["phillip.allen@enron.com"])):
        if name not in {u.name for u in users.list_users(vault)}:
            users.add_user(vault, name, roles, addresses, PASSWORD, "bench")


def profile(vault: Vault, repeat: int, people: tuple[str, ...], out: Path) -> None:
    """The search page's use case for every query, ``repeat`` times, under cProfile."""
    add_people(vault)
    # CPU time, not wall time: on a shared machine the wall clock mostly measures waiting.
    profiler = cProfile.Profile(time.process_time)
    for person in people:
        who = users.principal_of_user(vault, person)
        for query in QUERIES:
            finding.search(vault, who, query, limit=50, with_facets=True)  # warm-up
            profiler.enable()
            for _ in range(repeat):
                finding.search(vault, who, query, limit=50, with_facets=True)
            profiler.disable()
    profiler.dump_stats(out)
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)


def use_case_cpu(vault: Vault, repeat: int, people: tuple[str, ...]) -> dict[str, object]:
    """CPU milliseconds of the search page's use case per query (median of ``repeat``
    calls after a warm-up), per person: the server's work without HTTP or template."""
    add_people(vault)
    results: dict[str, object] = {"messages": vault.index.doc_count()}
    for person in people:
        who = users.principal_of_user(vault, person)
        medians = []
        per_query: dict[str, float] = {}
        # The first call of each query: for the empty one, its facet counts are counted
        # then and kept (the principal's reach), so the repeats measure the kept counts.
        first: dict[str, float] = {}
        for query in QUERIES:
            started = time.process_time()
            finding.search(vault, who, query, limit=50, with_facets=True)  # warm-up
            first[query or "(empty: all)"] = round((time.process_time() - started) * 1000, 1)
            samples = []
            for _ in range(repeat):
                started = time.process_time()
                finding.search(vault, who, query, limit=50, with_facets=True)
                samples.append((time.process_time() - started) * 1000)
            medians.append(statistics.median(samples))
            per_query[query or "(empty: all)"] = round(medians[-1], 1)
        results[person] = {"sum_ms": round(sum(medians), 1),
                           "median_query_ms": round(statistics.median(medians), 1),
                           "slowest_query_ms": round(max(medians), 1),
                           "median_by_query_ms": per_query, "first_call_ms": first}
    return results


async def run(vault: Vault, repeat: int, people: tuple[str, ...]) -> dict[str, object]:
    add_people(vault)
    app = create_app(vault)
    transport = httpx.ASGITransport(app=app)
    results: dict[str, object] = {"messages": vault.index.doc_count()}
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for person in people:
            token = tokens.create_token(vault, person, 1, "bench").token
            auth = {"authorization": f"Bearer {token}"}
            page = await client.get("/login")
            csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
            await client.post("/login", data={"username": person, "password": PASSWORD,
                                              "csrf": csrf})
            api: list[float] = []
            facets: list[float] = []
            pages: list[float] = []
            api_cpu: list[float] = []
            page_cpu: list[float] = []
            for query in QUERIES:
                api += await measure(client, "/api/v1/search", {"q": query, "limit": "50"},
                                     auth, repeat, api_cpu)
                facets += await measure(client, "/api/v1/facets", {"q": query}, auth, repeat)
                pages += await measure(client, "/", {"q": query}, {}, repeat, page_cpu)
            results[person] = {"api_search": percentiles(api),
                               "api_search_cpu": percentiles(api_cpu),
                               "api_facets": percentiles(facets),
                               "search_page_with_facets": percentiles(pages),
                               "search_page_cpu": percentiles(page_cpu),
                               "page_median_by_query_ms": by_query(pages, repeat)}
            client.cookies.clear()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vault", type=Path)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--who", choices=("auditor", "user", "both"), default="both")
    parser.add_argument("--profile", type=Path,
                        help="run under cProfile, write its stats here, print the top 45")
    parser.add_argument("--use-case", action="store_true",
                        help="CPU time of the page's use case per query, no HTTP")
    args = parser.parse_args()
    people = {"auditor": ("bench-auditor",), "user": ("bench-user",),
              "both": ("bench-auditor", "bench-user")}[args.who]
    with tempfile.TemporaryDirectory() as workdir:
        path = prepared(args.vault, Path(workdir))
        vault = Vault.open(path)
        try:
            if args.profile:
                profile(vault, args.repeat, people, args.profile)
            elif args.use_case:
                print(json.dumps(use_case_cpu(vault, args.repeat, people), indent=2))
            else:
                print(json.dumps(asyncio.run(run(vault, args.repeat, people)), indent=2))
        finally:
            vault.close()


if __name__ == "__main__":
    main()
