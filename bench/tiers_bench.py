"""Stored bytes and index bytes per message in each tier, and tier move / activation rates.

    python bench/tiers_bench.py --enron                  # the Enron allen-p mailbox
    python bench/tiers_bench.py --count 100000           # a generated corpus (made if needed)

Drives the real commands in a fresh vault: import (Active), ``tier move '' --to open``,
``tier move '' --to deep``, ``reindex`` (so the index holds only what Deep keeps, without the
deleted full-text documents Tantivy drops at its next merges), ``tier compact`` (the released
Active and Open copies), ``tier activate ''``. After each step ``mailvault stats --json`` gives
stored bytes (every volume record counted once) and index bytes; the rates are messages moved
per second of wall-clock time of the command (reading, recompressing, fsync, commit, index).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_corpus import write_mbox

MAILVAULT = [sys.executable, "-m", "mailvault"]
ENRON = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "mbox" / "enron-allen-p"


def mailvault(*args: str) -> tuple[float, Any]:
    """Run a command; (seconds, its --json output or None)."""
    started = time.perf_counter()
    done = subprocess.run([*MAILVAULT, *args], check=True, capture_output=True)
    elapsed = time.perf_counter() - started
    text = done.stdout.decode().strip()
    return elapsed, json.loads(text) if text.startswith(("{", "[")) else None


def tier_row(stats: dict[str, Any], tier: str) -> dict[str, float]:
    t = stats["tiers"][tier]
    raw = t["raw_bytes"] or 1
    return {"messages": t["messages"], "stored_of_raw": round(t["stored_bytes"] / raw, 3),
            "stored_per_msg": round(t["stored_bytes"] / t["messages"]),
            "index_of_raw": round(stats["index_bytes"] / raw, 3),
            "index_per_msg": round(stats["index_bytes"] / t["messages"]),
            "raw_per_msg": round(t["raw_bytes"] / t["messages"])}


def run(corpus: Path, workdir: Path) -> dict[str, Any]:
    vault = str(workdir / "vault")
    out: dict[str, Any] = {}
    mailvault("init", "--vault", vault)
    seconds, summary = mailvault("import", "--vault", vault, "--json", str(corpus))
    out["import_msg_s"] = round(summary["archived"] / seconds)
    _, stats = mailvault("stats", "--vault", vault, "--json")
    out["active"] = tier_row(stats, "active")
    for target in ("open", "deep"):
        seconds, job = mailvault("tier", "move", "", "--to", target, "--vault", vault, "--json")
        out[f"move_to_{target}_msg_s"] = round(job["done"] / seconds)
        _, stats = mailvault("stats", "--vault", vault, "--json")
        out[target] = tier_row(stats, target)
    mailvault("reindex", "--vault", vault)
    _, stats = mailvault("stats", "--vault", vault, "--json")
    out["deep_after_reindex"] = tier_row(stats, "deep")
    _, compacted = mailvault("tier", "compact", "--min-free", "0", "--vault", vault, "--json")
    out["compaction_reclaimed_bytes"] = compacted["bytes_before"] - compacted["bytes_after"]
    seconds, job = mailvault("tier", "activate", "", "--vault", vault, "--json")
    out["activate_msg_s"] = round(job["done"] / seconds)
    _, stats = mailvault("stats", "--vault", vault, "--json")
    out["active_again"] = tier_row(stats, "active")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enron", action="store_true", help="Use the Enron allen-p mailbox.")
    parser.add_argument("--count", type=int, default=100_000, help="Generated messages.")
    parser.add_argument("--corpus", type=Path, help="Where the generated mbox is (or goes).")
    args = parser.parse_args()
    if args.enron:
        corpus = ENRON
    else:
        corpus = args.corpus or Path(tempfile.gettempdir()) / f"gen-{args.count}.mbox"
        if not corpus.exists():
            write_mbox(corpus, args.count)
    with tempfile.TemporaryDirectory(prefix="tiers-bench-") as workdir:
        print(json.dumps(run(corpus, Path(workdir)), indent=2))


if __name__ == "__main__":
    main()
