"""Write a large Unicode PST for the import benchmark (tests/outlook/pst_writer.py).

    .venv/bin/python bench/pst_make.py /tmp/big.pst --messages 20000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.outlook.pst_writer import write_pst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--messages", type=int, default=20000)
    args = parser.parse_args()
    write_pst(args.path, args.messages)
    print(f"{args.path}: {args.messages} messages, {args.path.stat().st_size / 1048576:.0f} MiB")


if __name__ == "__main__":
    main()
