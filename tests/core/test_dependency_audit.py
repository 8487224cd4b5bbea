"""CI's dependency audit (.ci/audit_dependencies.py) fails on a known vulnerability and only
then: a report of packages it could not check is said, not failed (a fake pip-audit here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "audit_dependencies.py"


def _audit(tmp_path: Path, report: object) -> subprocess.CompletedProcess[str]:
    """Run the audit with a pip-audit beside its Python that prints ``report``."""
    (tmp_path / "python").symlink_to(sys.executable)
    fake = tmp_path / "pip-audit"
    fake.write_text(f"#!/bin/sh\ncat <<'END'\n{json.dumps(report)}\nEND\n")
    fake.chmod(0o755)
    return subprocess.run([str(tmp_path / "python"), str(SCRIPT)], capture_output=True,
                          text=True, check=False, timeout=60)


@pytest.mark.parametrize(("report", "code", "said"), [
    ({"dependencies": [{"name": "jinja2", "version": "2.0", "vulns": [
        {"id": "GHSA-test", "fix_versions": ["3.1.5"]}]}]}, 1, "jinja2 2.0 has GHSA-test"),
    ({"dependencies": [{"name": "jinja2", "version": "3.1.5", "vulns": []}]}, 0,
     "1 of 1 installed packages audited, 0 with a known vulnerability"),
    ({"dependencies": [{"name": "jinja2", "skip_reason": "Dependency not found on PyPI"}]},
     0, "1 packages could not be audited"),
    ("not json", 0, "no vulnerability check was made"),
])
def test_the_audit_fails_only_on_a_known_vulnerability(tmp_path: Path, report: object,
                                                       code: int, said: str) -> None:
    done = _audit(tmp_path, report)
    assert done.returncode == code, done.stdout + done.stderr
    assert said in done.stdout
