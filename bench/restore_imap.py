"""Restore into a mailbox: `restoring.restore_mail` APPENDing archived mail into Dovecot.

The tests' throwaway Dovecot gets one account filled with N distinct Enron messages (the
corpus, CRLF) in two folders, synced into a new vault. Then, each round, into a fresh
account over IMAPS on 127.0.0.1: a restore of everything (MULTIAPPEND batches), then the
same restore again (which lists what each folder holds and appends nothing).
messages/s = messages / wall time of the use case call.

    .venv/bin/python bench/restore_imap.py --count 2000 --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from mailvault.accounts.principal import local_operator  # noqa: E402
from mailvault.sources import registry  # noqa: E402
from mailvault.sources.definitions import build  # noqa: E402
from mailvault.sources.restoring import FolderMode, Target  # noqa: E402
from mailvault.usecases import restoring  # noqa: E402
from mailvault.vault import Vault  # noqa: E402
from tests.sources import dovecot  # noqa: E402
from tests.sources.mailboxes import corpus_messages, new_mailbox  # noqa: E402
from tests.sources.support import run_sync  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    messages = []
    for raw in corpus_messages(CORPUS):
        messages.append(raw)
        if len(messages) == args.count:
            break
    server = dovecot.start()
    try:
        source = new_mailbox(server)
        half = len(messages) // 2
        source.fill({"INBOX": messages[:half], "Archive": messages[half:]})
        vault = Vault.create(Path(tempfile.mkdtemp()) / "vault")
        spec = build({"name": "bench", "kind": "imap", "host": "127.0.0.1",
                      "port": server.imap, "tls": "starttls", "user": source.address,
                      "ca_file": str(server.ca_file)})
        registry.add(vault, spec, source.password, "bench")
        archived = run_sync(vault, spec).totals()["archived"]
        size = sum(len(m) for m in messages)
        print(f"{archived} messages archived ({size / 1e6:.1f} MB as given to Dovecot)")
        who = local_operator("bench")
        first, again = [], []
        for _round in range(args.rounds):
            box = new_mailbox(server)
            target = Target.parse(f"127.0.0.1:{server.imaps}", "implicit", box.address,
                                  str(server.ca_file))
            for times in (first, again):
                started = time.monotonic()
                report = restoring.restore_mail(vault, who, "", target, box.password,
                                                FolderMode())
                times.append(time.monotonic() - started)
                print(f"  {report.totals()} in {times[-1]:.2f} s")
        for label, times in (("restore", first), ("restore again (nothing to do)", again)):
            median = statistics.median(times)
            print(f"{label}: median {median:.2f} s, {archived / median:.0f} msg/s "
                  f"(rounds {' / '.join(f'{t:.2f}' for t in times)} s)")
        vault.close()
    finally:
        dovecot.remove(server)


if __name__ == "__main__":
    main()
