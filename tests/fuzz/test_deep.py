"""The deep fuzz run (slow mark): every fuzz property again with fifty times the examples
(``MAILVAULT_FUZZ=deep``), in a pytest of its own so the profile applies to all of them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUZZ_TESTS = ["tests/fuzz", "tests/capture/test_fuzz_session.py",
              "tests/capture/test_fuzz_milter.py", "tests/sources/test_fuzz_pop3.py",
              "tests/outlook/test_fuzz_outlook.py", "tests/web/test_fuzz_pages.py"]


@pytest.mark.slow
@pytest.mark.timeout(4 * 3600)
def test_every_property_holds_with_fifty_times_the_examples() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--timeout", "3600",
         "--deselect", "tests/fuzz/test_deep.py", *FUZZ_TESTS],
        cwd=ROOT, env={**os.environ, "MAILVAULT_FUZZ": "deep"}, check=False,
        capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-4000:]
