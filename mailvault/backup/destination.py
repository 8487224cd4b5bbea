"""Where a vault goes when it is moved (``migrate``) or restored (``init --from-backup``).

A new vault folder, and optionally an empty PostgreSQL database for its catalog and a bucket
with Object Lock for its sealed volumes; without them, a SQLite file and local volumes in the
folder. Both commands check the places before anything is made, and write them into the new
vault's ``mailvault.toml`` in place of whatever the old vault named: a moved or restored vault
never writes into the old vault's database or bucket unless it is named again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mailvault.errors import InputError
from mailvault.store import catalog_copy, database, file_modes
from mailvault.store.objects import (
    Bucket,
    Objects,
    environment_credentials,
    read_credentials_file,
)

# The settings that name the old vault's database, search tables and bucket (section ->
# keys): commented out in the new vault's settings, then written anew when given.
_CATALOG_KEYS = {"catalog": {"url", "password_file"}}
_SEARCH_KEYS = {"search": {"backend"}}
_BUCKET_KEYS = {"store": {"blobs", "s3_endpoint"}}
_CREDENTIALS_KEYS = {"store": {"s3_credentials_file"}}


@dataclass(frozen=True)
class Destination:
    """Where a vault goes: a new folder, a PostgreSQL catalog and/or a bucket."""

    folder: Path
    catalog_url: str = ""
    catalog_password_file: str = ""
    blobs: str = ""
    s3_endpoint: str = ""
    s3_credentials: Path | None = None


def check_bucket(to: Destination) -> None:
    """Refuse, in one sentence, a bucket that does not answer or has no Object Lock, and
    bucket options without a bucket."""
    if to.blobs:
        credentials = (read_credentials_file(to.s3_credentials) if to.s3_credentials
                       else environment_credentials())
        Objects(Bucket.parse(to.blobs, to.s3_endpoint), credentials).check()
    elif to.s3_endpoint or to.s3_credentials:
        raise InputError("--s3-endpoint and --s3-credentials go with --blobs s3://...")


def check_catalog(to: Destination, origin: str, resuming: bool = False) -> None:
    """Refuse, in one sentence, a catalog database that cannot be reached or holds tables
    other than an unfinished copy from ``origin``."""
    if not to.catalog_url:
        if to.catalog_password_file:
            raise InputError("--catalog-password-file goes with --catalog.")
        return
    engine = database.open_engine(Path("/nonexistent"), to.catalog_url,
                                  to.catalog_password_file)
    try:
        catalog_copy.check_target(engine, to.catalog_url, origin, resuming)
    finally:
        engine.dispose()


def write_places(config: Path, to: Destination, why: str,
                 keep_bucket: bool = False) -> list[str]:
    """Comment out, in ``config``, the settings naming the old vault's database (and its
    search backend, unless the catalog stays in PostgreSQL) and, unless ``keep_bucket``,
    its bucket (and credentials file, unless the bucket given comes without credentials),
    then write the destination's; returns the settings commented out, as "section.key"."""
    keys = dict(_CATALOG_KEYS)
    if not to.catalog_url:
        keys.update(_SEARCH_KEYS)
    if not keep_bucket:
        keys.update(_BUCKET_KEYS)
        if to.s3_credentials is not None or not to.blobs:
            keys["store"] = keys["store"] | _CREDENTIALS_KEYS["store"]
    changed = comment_out(config, keys, why) if config.exists() else []
    before = config.read_text(encoding="utf-8") if config.exists() else ""
    text = _add(before, "store", {"blobs": to.blobs, "s3_endpoint": to.s3_endpoint})
    password_file = (str(Path(to.catalog_password_file).expanduser().resolve())
                     if to.catalog_password_file else "")
    text = _add(text, "catalog", {"url": to.catalog_url, "password_file": password_file})
    if text != before:
        file_modes.write_replacing(config, text.encode())
    return changed


def comment_out(config: Path, keys: dict[str, set[str]], why: str) -> list[str]:
    """Comment out these settings (section -> keys) in ``config``, saying why; returns those
    found, as "section.key"."""
    section = ""
    lines = []
    changed = []
    for line in config.read_text(encoding="utf-8").splitlines(keepends=True):
        text = line.strip()
        if text.startswith("["):
            section = text.split("]")[0].strip("[ \t")
        key = text.split("=", 1)[0].strip() if "=" in text and not text.startswith("#") else ""
        if key in keys.get(section, set()):
            lines.append(f"# {why}. Was: {line}")
            changed.append(f"{section}.{key}")
        else:
            lines.append(line)
    if changed:
        file_modes.write_replacing(config, "".join(lines).encode())
    return changed


def _add(text: str, section: str, values: dict[str, str]) -> str:
    """``text`` with these settings (the non-empty ones) at the top of ``[section]``, which
    is made at the end when the settings have none."""
    lines = "".join(f"{name} = {json.dumps(value)}\n" for name, value in values.items() if value)
    if not lines:
        return text
    header = f"[{section}]\n"
    if text.startswith(header) or f"\n{header}" in text:
        at = 0 if text.startswith(header) else text.index(f"\n{header}") + 1
        return text[:at + len(header)] + lines + text[at + len(header):]
    return text + ("" if not text or text.endswith("\n") else "\n") + f"\n{header}{lines}"
