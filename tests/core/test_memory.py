"""Streaming: importing a ~200 MB mbox keeps every process of the import under a few hundred
MB of resident memory (promise 8). Slow: run with ``pytest -m slow``."""

from __future__ import annotations

import json
import random
import re
import subprocess
from email.utils import make_msgid
from pathlib import Path

import pytest

from tests.core.corpus_reading import mbox_messages
from tests.support import MAILVAULT, invoke

SMALL_BYTES = 50 * 1024 * 1024
LARGE_BYTES = 200 * 1024 * 1024
PEAK_LIMIT_KB = 400 * 1024
# Four times the mail may cost a little more (bigger catalog pages cached), not four times.
GROWTH_LIMIT_KB = 64 * 1024
_MESSAGE_ID = re.compile(rb"^Message-ID:[^\n]*\n", re.I | re.M)


def generate_mbox(path: Path, corpus: Path, target_bytes: int) -> int:
    """Real Enron messages, each made distinct (new Message-ID) and carrying a binary
    attachment of 6-14 KB (hex), written as an mbox until it reaches ``target_bytes``; returns the
    number of messages. Written as it goes: the test itself holds one message at a time."""
    sources = [m.raw for box in sorted((corpus / "mbox" / "enron-allen-p").glob("*.mbox"))
               for m in mbox_messages(box)]
    rng = random.Random(2021)
    written = count = 0
    with open(path, "wb") as out:
        while written < target_bytes:
            raw = sources[count % len(sources)]
            header_end = raw.find(b"\n\n")
            headers = _MESSAGE_ID.sub(b"", raw[:header_end + 1])
            body = raw[header_end + 2:].replace(b"\nFrom ", b"\n>From ")
            boundary = f"mv-{count}".encode()
            attachment = rng.randbytes(rng.randint(6 * 1024, 14 * 1024)).hex().encode()
            message = (
                b"From generated Mon Jan  1 00:00:00 2001\n" + headers
                + f"Message-ID: {make_msgid(str(count), 'generated.example')}\n".encode()
                + b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"" + boundary
                + b"\"\n\n--" + boundary + b"\nContent-Type: text/plain\n\n" + body
                + b"\n--" + boundary + b"\nContent-Type: application/octet-stream\n"
                + f"Content-Disposition: attachment; filename=\"data{count}.hex\"\n\n".encode()
                + attachment + b"\n--" + boundary + b"--\n\n")
            out.write(message)
            written += len(message)
            count += 1
    return count


def peak_rss_of_import(tmp_path: Path, corpus: Path, size: int) -> int:
    """Import a generated mbox of about ``size`` bytes into a new vault; the largest
    resident set (KB) of the import or any of its workers, as GNU time reports it."""
    mbox = tmp_path / f"{size}.mbox"
    messages = generate_mbox(mbox, corpus, size)
    vault = tmp_path / f"vault-{size}"
    invoke("init", "--vault", vault)
    measured = subprocess.run(["/usr/bin/time", "-v", *MAILVAULT, "import", str(mbox),
                               "--vault", str(vault), "--json"],
                              capture_output=True, timeout=850, check=False)
    report = measured.stderr.decode()
    assert measured.returncode == 0, report[-2000:]
    assert json.loads(measured.stdout)["archived"] == messages
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", report)
    assert match is not None, report[-2000:]
    peak_kb = int(match[1])
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", report)
    print(f"{messages} messages, {mbox.stat().st_size / 1048576:.0f} MB: "
          f"peak RSS {peak_kb / 1024:.0f} MB, wall {wall[1] if wall else '?'}")
    mbox.unlink()
    return peak_kb


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_importing_a_200_mb_mbox_keeps_memory_flat(tmp_path: Path, corpus: Path) -> None:
    small = peak_rss_of_import(tmp_path, corpus, SMALL_BYTES)
    large = peak_rss_of_import(tmp_path, corpus, LARGE_BYTES)
    assert large < PEAK_LIMIT_KB, f"peak RSS {large / 1024:.0f} MB"
    assert large - small < GROWTH_LIMIT_KB, \
        f"50 MB: {small / 1024:.0f} MB, 200 MB: {large / 1024:.0f} MB: memory grows with input"
