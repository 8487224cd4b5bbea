"""IMAP backfill, end to end: `mailvault sync` against `mbsync` on the same Dovecot account.

A throwaway Dovecot (the test fixture's) gets one account filled by MULTIAPPEND with N
distinct realistic messages (bench/make_corpus.py varies real corpus mail), spread over a few
folders. Then, alternating, each round:
  - `mailvault init` + `source add imap` + `mailvault sync` into a fresh vault (fetch, hash,
    parse, extract, compress, encrypt, fsync, catalog, index);
  - `mbsync` (isync) pulling the same account into a fresh Maildir (fetch + write files).
  - the same with mbsync's `FSync no` (files written but not fsynced: not durable).
All run under /usr/bin/time -v over plain IMAP on 127.0.0.1; messages/s = N / wall time.

    .venv/bin/python bench/imap_backfill.py --count 20000 --rounds 3
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import imapclient  # noqa: E402
from make_corpus import CORPUS, seeds, vary  # noqa: E402

from tests.sources import dovecot  # noqa: E402

FOLDERS = ("INBOX", "Archive/2001", "Projects/Énergie", "Sent")
MAILVAULT = [sys.executable, "-m", "mailvault"]
_WALL = re.compile(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)")
_RSS = re.compile(r"Maximum resident set size \(kbytes\): (\d+)")


def fill(server: dovecot.Dovecot, address: str, password: str, count: int) -> int:
    """APPEND ``count`` distinct messages (CRLF) over FOLDERS; returns their bytes."""
    rng = random.Random(7)
    pool = seeds(CORPUS)
    client = imapclient.IMAPClient("127.0.0.1", server.imap, ssl=False)
    client.login(address, password)
    for folder in FOLDERS[1:]:
        client.create_folder(folder)
    total = 0
    chunk: list[bytes] = []
    for number in range(count):
        raw = vary(pool[number % len(pool)], number, rng).replace(b"\r\n", b"\n")
        chunk.append(raw.replace(b"\n", b"\r\n"))
        total += len(chunk[-1])
        if len(chunk) == 500 or number == count - 1:
            client.multiappend(FOLDERS[(number // 500) % len(FOLDERS)], chunk)
            chunk = []
    client.logout()
    return total


def timed(command: list[str], cwd: Path | None = None) -> tuple[float, int]:
    """Run under /usr/bin/time -v: (wall seconds, max RSS in MB)."""
    done = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True,
                          cwd=cwd, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{command[0]} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    wall = _WALL.search(done.stderr)
    rss = _RSS.search(done.stderr)
    assert wall and rss
    seconds = 0.0
    for part in wall.group(1).split(":"):
        seconds = seconds * 60 + float(part)
    return seconds, int(rss.group(1)) // 1024


def mailvault_round(server: dovecot.Dovecot, work: Path, address: str, password: str,
                    count: int) -> tuple[float, int]:
    vault = work / "vault"
    shutil.rmtree(vault, ignore_errors=True)
    subprocess.run([*MAILVAULT, "init", "--vault", str(vault)], check=True,
                   capture_output=True)
    secret = work / "password"
    secret.write_text(password)
    subprocess.run([*MAILVAULT, "source", "add", "imap", "bench", "--vault", str(vault),
                    "--host", "127.0.0.1", "--port", str(server.imap), "--tls", "none",
                    "--user", address, "--password-file", str(secret)],
                   check=True, capture_output=True)
    result = timed([*MAILVAULT, "sync", "bench", "--vault", str(vault)])
    archived = subprocess.run([*MAILVAULT, "count", "", "--vault", str(vault)], check=True,
                              capture_output=True, text=True).stdout.strip()
    shutil.rmtree(vault)
    if archived != str(count):
        raise SystemExit(f"mailvault archived {archived} messages, not {count}")
    return result


def mbsync_round(server: dovecot.Dovecot, work: Path, address: str, password: str,
                 count: int, fsync: bool) -> tuple[float, int]:
    maildir = work / "maildir"
    shutil.rmtree(maildir, ignore_errors=True)
    maildir.mkdir()
    config = work / "mbsyncrc"
    config.write_text(f"""FSync {"yes" if fsync else "no"}

IMAPAccount bench
Host 127.0.0.1
Port {server.imap}
User {address}
Pass {password}
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account bench

MaildirStore local
Path {maildir}/
Inbox {maildir}/INBOX
SubFolders Verbatim

Channel pull
Far :remote:
Near :local:
Patterns *
Create Near
Sync Pull
SyncState *
""")
    result = timed(["mbsync", "-q", "-c", str(config), "pull"])
    files = sum(1 for p in maildir.rglob("*") if p.is_file() and p.parent.name in ("cur", "new"))
    shutil.rmtree(maildir)
    if files != count:
        raise SystemExit(f"mbsync pulled {files} messages, not {count}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="imapbench"))
    server = dovecot.start()
    try:
        address, password = f"bench@{dovecot.DOMAIN}", "bench-password"
        server.add_user(address, password)
        size = fill(server, address, password, args.count)
        print(f"{args.count} messages, {size / 1048576:.1f} MB in {len(FOLDERS)} folders",
              flush=True)
        ours, theirs, unsynced = [], [], []
        for number in range(args.rounds):
            ours.append(mailvault_round(server, work, address, password, args.count))
            theirs.append(mbsync_round(server, work, address, password, args.count, True))
            unsynced.append(mbsync_round(server, work, address, password, args.count, False))
            print(f"round {number + 1}: mailvault sync {ours[-1][0]:.1f} s "
                  f"({ours[-1][1]} MB RSS), mbsync {theirs[-1][0]:.1f} s, "
                  f"mbsync FSync no {unsynced[-1][0]:.1f} s", flush=True)
        for name, runs in (("mailvault sync", ours), ("mbsync (default, FSync yes)", theirs),
                           ("mbsync (FSync no)", unsynced)):
            seconds = statistics.median(r[0] for r in runs)
            print(f"{name}: median {seconds:.1f} s = {args.count / seconds:.0f} msg/s, "
                  f"max RSS {max(r[1] for r in runs)} MB")
    finally:
        dovecot.remove(server)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
