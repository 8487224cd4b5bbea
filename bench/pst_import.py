"""PST import, end to end: `mailvault import` against `readpst` converting the same files.

Each round, alternating, under /usr/bin/time -v:
  - `mailvault init` + `mailvault import FILES` into a fresh vault (read the PST, rebuild
    every item as MIME, hash, parse, extract, compress, encrypt, fsync, catalog, index);
  - `readpst -q -o DIR FILES` writing one mbox per folder (Debian's pst-utils);
  - the reader alone: the same files read and every item rebuilt as MIME in one process,
    nothing stored (what the import adds on top of it is the vault's own work).
Items/s = Outlook items the file holds / wall time; peak memory = maximum RSS (for the
import, of the largest process: the main one or a worker).

    .venv/bin/python bench/pst_import.py --rounds 5 [FILE.pst ...]
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
CORPUS = ROOT.parent / "shared" / "corpus" / "pst"
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
        pass
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


def one_round(files: list[Path], work: Path) -> dict[str, tuple[float, int]]:
    vault = work / "vault"
    subprocess.run([*MAILVAULT, "init", "--vault", str(vault)], check=True, capture_output=True)
    wall, rss, out = timed([*MAILVAULT, "import", *map(str, files), "--vault", str(vault),
                            "--json"])
    summary = json.loads(out)
    items = summary["archived"] + summary["duplicates"]
    results = {"mailvault import": (wall, rss), "items": (float(items), 0)}
    mbox = work / "readpst"
    mbox.mkdir()
    total = 0.0
    peak = 0
    for path in files:  # readpst takes one file per run
        wall, rss, _ = timed(["readpst", "-q", "-o", str(mbox), str(path)])
        total += wall
        peak = max(peak, rss)
    results["readpst to mbox"] = (total, peak)
    wall, rss, out = timed([sys.executable, "-c", READER_ONLY, *map(str, files)])
    results["mailvault reader only"] = (wall, rss)
    results["reader items"] = (float(out.strip()), 0)
    shutil.rmtree(vault)
    shutil.rmtree(mbox)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    files = args.files or sorted(CORPUS.glob("*.pst"))
    size = sum(f.stat().st_size for f in files)
    rounds = []
    for n in range(args.rounds):
        with tempfile.TemporaryDirectory() as work:
            rounds.append(one_round(files, Path(work)))
        print(f"round {n + 1}: " + ", ".join(f"{k} {v[0]:.2f}" for k, v in rounds[-1].items()),
              file=sys.stderr)
    items = int(rounds[0]["reader items"][0])
    archived = int(rounds[0]["items"][0])
    print(f"{len(files)} files, {size / 1048576:.1f} MiB, {items} items "
          f"({archived} archived as messages), median of {args.rounds} rounds\n")
    print("| what | wall s | items/s | peak RSS MiB |")
    print("|---|---|---|---|")
    for name in ("mailvault import", "readpst to mbox", "mailvault reader only"):
        wall = statistics.median(r[name][0] for r in rounds)
        rss = statistics.median(r[name][1] for r in rounds)
        print(f"| {name} | {wall:.2f} | {items / wall:.0f} | {rss / 1024:.0f} |")


if __name__ == "__main__":
    main()
