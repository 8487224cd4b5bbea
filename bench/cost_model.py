"""What an archive of N messages costs, from per-message figures measured on this code.

    python bench/cost_model.py --build embedded=v1m.log --build postgresql=v1m-pg.log \\
        [--build postgresql-search=pgsearch.log] --messages 100000000 --smtp-rate 1000

Each ``--build NAME=LOG`` is the output of `bench/scale_build.py` (one JSON line a chunk);
its last line (the largest vault it reached) gives the per-message figures: catalog, index
and Active stored bytes, CPU of the import and of PostgreSQL. The Open and Deep tiers' stored
bytes and the Deep index come from `bench/tiers_bench.py` (defaults below: its run on the
generated corpus, docs/benchmarks.md "Tiers"), the SMTP rate a node sustains from
`bench/smtp_capture.py` ("Live capture"). Prints a Markdown table per build: sizes for the
whole archive (all in Active, and spread over the tiers by ``--shares``), CPU-hours to
ingest it, and the `serve` nodes a given SMTP rate needs. It multiplies; it does not
extrapolate curves: a figure that grows with the vault must be measured at the size asked.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

GB = 1e9


@dataclass(frozen=True)
class PerMessage:
    """One build's figures per message (bytes, milliseconds of CPU)."""

    name: str
    messages: int
    raw: float
    catalog: float
    index: float
    stored_active: float
    import_cpu_ms: float
    postgres_cpu_ms: float
    postgresql: bool
    msg_per_s: float


def read_build(spec: str) -> PerMessage:
    name, _, path = spec.partition("=")
    lines = [json.loads(line) for line in Path(path).read_text().splitlines()
             if line.startswith("{")]
    if not lines:
        raise SystemExit(f"{path} holds no figures from bench/scale_build.py")
    # The largest vault reached: CPU per message grows with the catalog, so the last chunk's
    # figures (the mean of the last two, against one noisy chunk) are used, not the build's.
    last = lines[-1]
    tail = lines[-2:]
    return PerMessage(
        name=name, messages=int(last["messages"]), raw=last["raw_per_message"],
        catalog=last["catalog_per_message"], index=last["index_per_message"],
        stored_active=last["stored_per_message"],
        import_cpu_ms=sum(line["import_cpu_ms_per_message"] for line in tail) / len(tail),
        postgres_cpu_ms=sum(line["postgres_cpu_ms_per_message"] for line in tail) / len(tail),
        # Older logs lack "catalog": an idle server still costs a few microseconds.
        postgresql=last.get("catalog", "postgresql" if last["postgres_cpu_ms_per_message"]
                            >= 0.01 else "sqlite") == "postgresql",
        msg_per_s=sum(line["msg_per_s"] for line in tail) / len(tail))


def table(build: PerMessage, args: argparse.Namespace) -> str:
    n = args.messages
    active, open_, deep = args.shares
    raw_total = build.raw * n
    stored_tiers = n * (active * build.stored_active + open_ * args.open_of_raw * build.raw
                        + deep * args.deep_of_raw * build.raw)
    index_tiers = n * ((active + open_) * build.index + deep * args.deep_index)
    cpu_ms = build.import_cpu_ms + build.postgres_cpu_ms
    # A node takes SMTP at its capture rate only while its archiver keeps up; at this vault
    # size the archiver imports at the build's rate.
    node_rate = min(args.node_rate, build.msg_per_s)
    nodes = math.ceil(args.smtp_rate / node_rate)
    rows = [
        ("measured at", f"{build.messages:,} messages, {build.raw:,.0f} raw bytes each"),
        ("raw mail", f"{raw_total / GB:,.0f} GB"),
        ("catalog" + (" (PostgreSQL)" if build.postgresql else " (SQLite)"),
         f"{build.catalog * n / GB:,.0f} GB ({build.catalog:,.0f} B a message)"),
        ("index, all in Active", f"{build.index * n / GB:,.0f} GB ({build.index:,.0f} B)"),
        ("stored, all in Active", f"{build.stored_active * n / GB:,.0f} GB "
                                  f"({build.stored_active:,.0f} B)"),
        (f"stored, {active:.0%} Active / {open_:.0%} Open / {deep:.0%} Deep",
         f"{stored_tiers / GB:,.0f} GB"),
        ("index, the same shares", f"{index_tiers / GB:,.0f} GB"),
        ("CPU to ingest", f"{cpu_ms * n / 3.6e6:,.0f} CPU-hours ({build.import_cpu_ms:.2f} ms "
                          f"import" + (f" + {build.postgres_cpu_ms:.2f} ms PostgreSQL"
                                       if build.postgresql else "") + " a message)"),
        ("on 2-core machines", f"{cpu_ms * n / 3.6e6 / 2:,.0f} hours on one" + (
            f", {cpu_ms * n / 3.6e6 / 2 / 8:,.1f} on eight sharing the catalog"
            if build.postgresql else " (an embedded vault has one node)")),
        (f"serve nodes for {args.smtp_rate:,.0f} msg/s of SMTP",
         f"{nodes} (2 cores each, {node_rate:,.0f} msg/s a node: the lower of SMTP "
         f"capture's {args.node_rate:,.0f} and the import's {build.msg_per_s:,.0f} at this "
         f"size), {nodes + 1} with one spare"
         + ("" if build.postgresql or nodes == 1 else ": more than one needs the PostgreSQL "
            "profile")),
    ]
    if build.postgresql:
        cores = args.smtp_rate * build.postgres_cpu_ms / 1000
        rows.append((f"PostgreSQL CPU at {args.smtp_rate:,.0f} msg/s",
                     f"{cores:.1f} cores busy"))
    lines = [f"#### {build.name}", "", "| | for "
             f"{n:,} messages |", "|---|---|"]
    lines += [f"| {what} | {value} |" for what, value in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", action="append", required=True, help="NAME=LOG")
    parser.add_argument("--messages", type=int, default=100_000_000)
    parser.add_argument("--smtp-rate", type=float, default=1000.0,
                        help="messages a second at the busiest hour")
    parser.add_argument("--node-rate", type=float, default=2668.0,
                        help="msg/s one 2-core serve node sustains (bench/smtp_capture.py)")
    parser.add_argument("--shares", type=float, nargs=3, default=(0.1, 0.3, 0.6),
                        metavar=("ACTIVE", "OPEN", "DEEP"))
    parser.add_argument("--open-of-raw", type=float, default=0.152,
                        help="Open stored bytes over raw (bench/tiers_bench.py)")
    parser.add_argument("--deep-of-raw", type=float, default=0.094,
                        help="Deep stored bytes over raw (bench/tiers_bench.py)")
    parser.add_argument("--deep-index", type=float, default=122.0,
                        help="index bytes of a Deep message after reindex")
    args = parser.parse_args()
    if abs(sum(args.shares) - 1) > 1e-6:
        parser.error("--shares must add up to 1")
    print("\n\n".join(table(read_build(spec), args) for spec in args.build))


if __name__ == "__main__":
    main()
