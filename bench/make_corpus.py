"""Generate a realistic mbox of N distinct messages from the real corpus.

Each generated message is a real message (Enron mbox folders, the EML sets, the Maildirs)
with a new Message-ID, a Date spread over 1999-2003, and one distinct word added to its
Subject, so that every message has its own hash and dedup does not flatter the figures.

    python bench/make_corpus.py --count 100000 --out /tmp/gen-100k.mbox
"""

from __future__ import annotations

import argparse
import random
import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from mailvault.ingest.files import split_mbox

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
_MSGID = re.compile(rb"^Message-ID:[^\n]*\n", re.I | re.M)
_DATE = re.compile(rb"^Date:[^\n]*\n", re.I | re.M)
_SUBJECT = re.compile(rb"^Subject:([^\n]*)\n", re.I | re.M)
_FROM_LINE = re.compile(rb"^From ", re.M)


def seeds(corpus: Path) -> list[bytes]:
    """Real messages to vary: every Enron message plus the loose EML files."""
    out: list[bytes] = []
    for mbox in sorted((corpus / "mbox" / "enron-allen-p").glob("*.mbox")):
        with open(mbox, "rb") as handle:
            out.extend(raw for _, _, raw in split_mbox(handle))
    for eml in sorted((corpus / "eml").rglob("*.eml")):
        data = eml.read_bytes()
        if b"\n\n" in data[:20000] or b"\r\n\r\n" in data[:20000]:
            out.append(data.replace(b"\r\n", b"\n"))
    return out


def vary(raw: bytes, number: int, rng: random.Random) -> bytes:
    """One distinct, realistic message from a seed."""
    head, _sep, body = raw.partition(b"\n\n")
    head = _MSGID.sub(b"", head + b"\n")
    head = _DATE.sub(b"", head)
    when = datetime(1999, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(5 * 365 * 86400))
    token = f"gen{number:07d}".encode()
    if _SUBJECT.search(head):
        head = _SUBJECT.sub(lambda m: b"Subject:" + m.group(1) + b" " + token + b"\n", head,
                            count=1)
    else:
        head += b"Subject: " + token + b"\n"
    head += (f"Message-ID: <{number}.{rng.getrandbits(48):x}@bench.mailvault>\n"
             f"Date: {format_datetime(when)}\n").encode()
    return head.rstrip(b"\n") + b"\n\n" + body


def write_mbox(out: Path, count: int, seed: int = 1, start: int = 0) -> int:
    """Write ``count`` messages, numbered from ``start`` (so that chunks written one after
    the other are distinct), to an mboxrd file; returns its size in bytes."""
    rng = random.Random(seed)
    pool = seeds(CORPUS)
    with open(out, "wb") as handle:
        for number in range(start, start + count):
            message = vary(pool[number % len(pool)], number, rng)
            message = _FROM_LINE.sub(b">From ", message)
            handle.write(b"From bench@mailvault Thu Jan  1 00:00:00 2004\n")
            handle.write(message.rstrip(b"\n") + b"\n\n")
    return out.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    size = write_mbox(args.out, args.count)
    print(f"wrote {args.count} messages, {size / 1048576:.1f} MB, to {args.out}")


if __name__ == "__main__":
    main()
