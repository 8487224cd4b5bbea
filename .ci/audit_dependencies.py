"""pip-audit over the installed environment: fails (exit 1) when an installed package has a
known vulnerability; says plainly, without failing, how many packages could not be checked
(no vulnerability service within reach, as on a machine that reaches only a package mirror).

Run by .ci/run after the install: .venv/bin/python .ci/audit_dependencies.py
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PIP_AUDIT = Path(sys.executable).with_name("pip-audit")


def main() -> int:
    try:
        done = subprocess.run(
            [str(PIP_AUDIT), "--skip-editable", "--format", "json", "--progress-spinner", "off"],
            capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"pip-audit: not run ({exc}): no vulnerability check was made.")
        return 0
    try:
        report = json.loads(done.stdout)
        if not isinstance(report, dict):
            raise ValueError("not a report")
    except ValueError:
        # pip-audit stopped before reporting: the service could not be reached at all.
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"pip-audit: no report ({reason}): no vulnerability check was made.")
        return 0
    packages = report.get("dependencies", [])
    vulnerable = [p for p in packages if p.get("vulns")]
    skipped = [p for p in packages if "skip_reason" in p]
    for package in vulnerable:
        for vuln in package["vulns"]:
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fixed version yet"
            print(f"pip-audit: {package['name']} {package['version']} has {vuln['id']} "
                  f"(fixed in: {fixed})")
    audited = len(packages) - len(skipped)
    print(f"pip-audit: {audited} of {len(packages)} installed packages audited, "
          f"{len(vulnerable)} with a known vulnerability.")
    if skipped:
        print(f"pip-audit: {len(skipped)} packages could not be audited (the vulnerability "
              f"service did not know them or could not be reached), e.g. "
              f"{skipped[0]['skip_reason']}")
    return 1 if vulnerable else 0


if __name__ == "__main__":
    sys.exit(main())
