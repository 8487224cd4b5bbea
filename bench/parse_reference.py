"""Reference for the import benchmark: the standard library's compat32 parser alone.

    python bench/parse_reference.py FILE.mbox

Splits the mbox with mailvault's reader and parses every message with
``email.message_from_bytes(policy=compat32)`` in two processes, storing nothing: the floor
an import that parses every message cannot go below. Time it beside `mailvault import`
(e.g. `/usr/bin/time -v`, or hyperfine) and quote the ratio.
"""

from __future__ import annotations

import email
import sys
from email.policy import compat32
from multiprocessing import Pool

from mailvault.ingest.files import split_mbox


def parse(raw: bytes) -> int:
    email.message_from_bytes(raw, policy=compat32)
    return 1


def main() -> None:
    with open(sys.argv[1], "rb") as handle, Pool(2) as pool:
        count = sum(pool.imap_unordered(parse, (raw for _, _, raw in split_mbox(handle)),
                                        chunksize=64))
    print(count)


if __name__ == "__main__":
    main()
