"""Time until the first result is visible in Chromium, for the 20 queries of the search
benchmark, against the real `serve` on a vault.

    python bench/web_chromium.py --vault /path/vault [--repeat 3]

Starts `serve` (SMTP and web on free loopback ports), signs in as an auditor in Debian's
Chromium (/usr/bin/chromium, driven by Playwright; no browser is ever downloaded), then for
each query types it into the search box, presses Search and waits until the first row of
the new page's results is visible (for a query without matches: its total), timed by the
script. Also reported from the browser's own clock, from the start of the navigation: the
first byte of the answer (Navigation Timing's responseStart: mostly the server's share) and
the first contentful paint of the new page (when the results are drawn, without the
script's polling). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from search_bench import QUERIES
from web_load import MAILVAULT, start

CHROMIUM = "/usr/bin/chromium"
USER = "bench-browser"
PASSWORD = "bench password 1234"
# The first result row of a page this script has not marked yet (the page before the click
# is marked, so its rows never count); a query without matches shows its total only.
FIRST_RESULT = "body:not([data-bench-old]) #results tbody tr"
NO_RESULT = "body:not([data-bench-old]) #total"
# Milliseconds from the start of the page's navigation (the click) to its first byte and to
# its first contentful paint, on the browser's clock.
_TIMING = """(() => {
  const paint = performance.getEntriesByName('first-contentful-paint')[0];
  return {first_byte: performance.getEntriesByType('navigation')[0].responseStart,
          paint: paint ? paint.startTime : NaN};
})()"""


def add_user(vault: Path) -> None:
    """An auditor to sign in as (already there from an earlier run: kept)."""
    subprocess.run([*MAILVAULT, "user", "add", USER, "--role", "auditor", "--vault",
                    str(vault), "--password-file", "/dev/stdin"], input=PASSWORD,
                   text=True, capture_output=True)


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_ms": round(statistics.median(ordered), 1),
            "p95_ms": round(ordered[max(int(len(ordered) * 0.95) - 1, 0)], 1),
            "max_ms": round(ordered[-1], 1)}


def measure(base: str, repeat: int) -> dict[str, object]:
    from playwright.sync_api import sync_playwright

    visible: list[float] = []
    first_byte: list[float] = []
    painted: list[float] = []
    per_query: dict[str, list[float]] = {q: [] for q in QUERIES}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_context(base_url=base).new_page()
        page.goto("/login")
        page.fill("input[name=username]", USER)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("#who")
        for round_ in range(repeat + 1):
            for query in QUERIES:
                page.evaluate("document.body.dataset.benchOld = '1'")
                page.fill("#q", query)
                started = time.perf_counter()
                page.click("#search")
                page.wait_for_selector(f"{FIRST_RESULT}, {NO_RESULT}", state="visible")
                elapsed = (time.perf_counter() - started) * 1000
                timing = page.evaluate(_TIMING)
                if round_ == 0:
                    continue  # the first round warms the server's caches and the browser's
                visible.append(elapsed)
                first_byte.append(float(timing["first_byte"]))
                painted.append(float(timing["paint"]))
                per_query[query].append(elapsed)
        browser.close()
    return {"first_result_visible": summary(visible),
            "browser_first_byte": summary(first_byte),
            "browser_first_contentful_paint": summary(painted),
            "per_query_median_ms": {q or "(empty: all)": round(statistics.median(v), 1)
                                    for q, v in per_query.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vault", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    add_user(args.vault)
    process, base = start(args.vault)
    try:
        result = measure(base, args.repeat)
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=120)
    print(json.dumps({"queries": len(QUERIES), "repeat": args.repeat, **result}, indent=2))


if __name__ == "__main__":
    main()
