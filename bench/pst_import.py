"""PST import, end to end: `mailvault import` against `readpst` converting the same file.

The corpus PSTs are a few MB (start-up dominates), so by default a PST of N messages is written
first by tests/outlook/pst_writer.py (realistic sizes, 1 in 5 with an attachment). Each round, under
/usr/bin/time -v:
  - `mailvault init` + `mailvault import FILE` into a fresh vault (read the PST, rebuild each
    item as MIME, hash, parse, extract, compress, encrypt, fsync, catalog, index);
  - `readpst -q -o DIR FILE` writing one mbox per folder (Debian's pst-utils): conversion only;
  - the reader alone: every item read and rebuilt as MIME in one process, nothing stored;
  - `mailvault import` of readpst's mbox output: the same messages without the PST reader,
    i.e. what storing and indexing costs by itself.
Messages/s = items / wall time; peak memory = maximum RSS (for an import, of the largest
process: the main one or a worker). Each round also gives issue 14's ratio, the direct import's
time over readpst's plus the import of its mbox (the target: at most 0.8), and the load
average (1 minute) before and after it, on stderr.

    .venv/bin/python bench/pst_import.py --messages 10000 --rounds 3
    .venv/bin/python bench/pst_import.py --rounds 5 ../shared/corpus/pst/*.pst
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.outlook.pst_writer import write_pst  # noqa: E402

MAILVAULT = [sys.executable, "-m", "mailvault"]
_WALL = re.compile(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)")
_RSS = re.compile(r"Maximum resident set size \(kbytes\): (\d+)")
READER_ONLY = """
import sys
from pathlib import Path
from mailvault.outlook.source import OutlookTally, pst_items
tally = OutlookTally()
for path in sys.argv[1:]:
    for _ in pst_items(Path(path), None, tally, lambda size: None):
        pass  # reading is what is timed: the items themselves are dropped
print(sum(tally.archived.values()) + sum(tally.skipped.values()))
"""


def timed(command: list[str]) -> tuple[float, int, str]:
    """(wall seconds, max RSS in KiB, stdout) of a command run under /usr/bin/time -v."""
    done = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True,
                          check=True)
    wall = _WALL.search(done.stderr)
    rss = _RSS.search(done.stderr)
    assert wall and rss, done.stderr
    seconds = 0.0
    for part in wall.group(1).split(":"):
        seconds = seconds * 60 + float(part)
    return seconds, int(rss.group(1)), done.stdout


def import_into_new_vault(paths: list[Path], work: Path) -> tuple[float, int, int]:
    vault = work / "vault"
    subprocess.run([*MAILVAULT, "init", "--vault", str(vault)], check=True, capture_output=True)
    wall, rss, out = timed([*MAILVAULT, "import", *map(str, paths), "--vault", str(vault),
                            "--json"])
    summary = json.loads(out)
    shutil.rmtree(vault)
    return wall, rss, summary["archived"] + summary["duplicates"]


DIRECT = "mailvault import (PST)"
READPST = "readpst to mbox"
MBOX = "mailvault import (readpst's mbox)"


def ratio(results: dict[str, tuple[float, int]]) -> float:
    """Issue 14's figure: the direct import's time over readpst's plus its mbox's import."""
    return results[DIRECT][0] / (results[READPST][0] + results[MBOX][0])


def load() -> str:
    """The 1-minute load average."""
    return Path("/proc/loadavg").read_text().split()[0]


def one_round(files: list[Path], work: Path) -> dict[str, tuple[float, int]]:
    results: dict[str, tuple[float, int]] = {}
    wall, rss, items = import_into_new_vault(files, work)
    results[DIRECT] = (wall, rss)
    mbox = work / "readpst"
    mbox.mkdir()
    total, peak = 0.0, 0
    for path in files:  # readpst takes one file per run
        wall, rss, _ = timed(["readpst", "-q", "-o", str(mbox), str(path)])
        total += wall
        peak = max(peak, rss)
    results[READPST] = (total, peak)
    wall, rss, out = timed([sys.executable, "-c", READER_ONLY, *map(str, files)])
    assert int(out) >= items  # it also counts the items without a standard form
    results["mailvault PST reader alone"] = (wall, rss)
    wall, rss, _ = import_into_new_vault([mbox], work)
    results[MBOX] = (wall, rss)
    shutil.rmtree(mbox)
    results["items"] = (float(items), 0)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--messages", type=int, default=10000,
                        help="size of the generated PST when no file is given")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        files = args.files
        if not files:
            files = [Path(scratch) / "bench.pst"]
            write_pst(files[0], args.messages)
        size = sum(f.stat().st_size for f in files)
        rounds = []
        for n in range(args.rounds):
            before = load()
            with tempfile.TemporaryDirectory() as work:
                rounds.append(one_round(files, Path(work)))
            print(f"round {n + 1} (load {before} -> {load()}): "
                  + ", ".join(f"{k} {v[0]:.2f}" for k, v in rounds[-1].items())
                  + f", ratio {ratio(rounds[-1]):.2f}", file=sys.stderr)
    items = int(rounds[0]["items"][0])
    print(f"{len(files)} file(s), {size / 1048576:.0f} MiB, {items} messages, "
          f"median of {args.rounds} rounds\n")
    print("| what | wall s | messages/s | peak RSS MiB |")
    print("|---|---|---|---|")
    for name in rounds[0]:
        if name == "items":
            continue
        wall = statistics.median(r[name][0] for r in rounds)
        rss = statistics.median(r[name][1] for r in rounds)
        print(f"| {name} | {wall:.2f} | {items / wall:.0f} | {rss / 1024:.0f} |")
    ratios = [ratio(r) for r in rounds]
    print(f"\ndirect / (readpst + mbox import): median {statistics.median(ratios):.2f} "
          f"(rounds: {' / '.join(f'{r:.2f}' for r in ratios)})")


if __name__ == "__main__":
    main()
