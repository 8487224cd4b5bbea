"""Compliance settings in the audit log: a ``settings`` entry whenever they change.

When a vault opens, the values of the compliance settings in force (``mailvault.toml``, the
defaults, and environment overrides, which may only make them stricter) are compared with the
newest ``settings`` entry, one index lookup. When they differ, an entry records a digest of
them all, every value, and each change as [old, new]. So turning four-eyes off or shortening
the default retention in ``mailvault.toml`` is in the log from the first command run after
the edit, with who ran it. None of the compliance settings is a secret (no password, key or
path to a key file is among them), so values are recorded as they are.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
from typing import Any

from sqlalchemy import Engine

from mailvault.config import Settings, compliance_settings
from mailvault.store import audit

ACTION = "settings"


def settings_digest(values: dict[str, Any]) -> str:
    """SHA-256 of the compliance settings as canonical JSON."""
    return hashlib.sha256(json.dumps(values, sort_keys=True, separators=(",", ":"))
                          .encode()).hexdigest()


def record_changes(engine: Engine, settings: Settings) -> bool:
    """Write a ``settings`` entry if the compliance settings differ from the last one
    recorded; returns whether one was written."""
    values = compliance_settings(settings)
    digest = settings_digest(values)
    with engine.connect() as conn:
        previous = audit.last(conn, ACTION)
    if previous is not None and previous.detail.get("digest") == digest:
        return False
    before: dict[str, Any] = previous.detail.get("settings", {}) if previous else {}
    changed = {name: [before.get(name), value] for name, value in values.items()
               if name not in before or before[name] != value}
    with engine.begin() as conn:
        audit.record(conn, "mailvault", ACTION, {
            "digest": digest, "settings": values, "changed": changed,
            "noticed_by": _os_user(),
            "environment": sorted(name for name in os.environ
                                  if name.startswith("MAILVAULT_")
                                  and _names_setting(name, values))})
    return True


def _names_setting(env_name: str, values: dict[str, Any]) -> bool:
    return any(env_name == "MAILVAULT_" + name.replace(".", "_").upper() for name in values)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid{os.getuid()}"
