"""Checking an export without the vault: ``mailvault verify --export DIR`` (or a zip).

1. ``signature.json``'s signature of ``summary.json``'s SHA-256 must verify with the public
   key in ``export-key.pem`` (and, when the checker gives the key they were handed, the two
   must be the same key);
2. every file ``summary.json`` lists must be there with its SHA-256 and size (missing,
   altered), and no other file may be (extra);
3. every row of ``manifest.csv`` that names a file must agree with that file's SHA-256.

Memory: the summary's file list (one path and hash per file) is held while checking.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from mailvault.discovery import signing
from mailvault.discovery.export import KEY_FILE, SIGNATURE, SUMMARY, UNLISTED
from mailvault.discovery.manifest import MANIFEST_CSV
from mailvault.errors import InputError

_CHUNK = 1 << 20


@dataclass
class ExportCheck:
    """What checking an export found; ``ok`` only when nothing is wrong."""

    path: str
    signature: str = "missing"  # valid | invalid | missing | other key
    key_fingerprint: str = ""
    files_checked: int = 0
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    altered: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (self.signature == "valid" and not self.missing and not self.extra
                and not self.altered and not self.problems)

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "ok": self.ok, "signature": self.signature,
                "key_fingerprint": self.key_fingerprint, "files_checked": self.files_checked,
                "missing": self.missing, "extra": self.extra, "altered": self.altered,
                "problems": self.problems}


class _Folder:
    def __init__(self, root: Path) -> None:
        self.root = root

    def names(self) -> Iterator[str]:
        for path in sorted(self.root.rglob("*")):
            if path.is_file() or path.is_symlink():
                yield path.relative_to(self.root).as_posix()

    def exists(self, name: str) -> bool:
        return (self.root / name).is_file()

    @contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        with open(self.root / name, "rb") as handle:
            yield handle


class _Zip:
    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.archive = archive
        entries = [i.filename for i in archive.infolist() if not i.is_dir()]
        tops = {name.split("/", 1)[0] for name in entries}
        self.prefix = f"{tops.pop()}/" if len(tops) == 1 else ""
        self.entries = {name.removeprefix(self.prefix) for name in entries}

    def names(self) -> Iterator[str]:
        yield from sorted(self.entries)

    def exists(self, name: str) -> bool:
        return name in self.entries

    @contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        with self.archive.open(self.prefix + name) as handle:
            yield handle


def verify(path: Path, expected_key: bytes | None = None) -> ExportCheck:
    """Check an export folder or zip (see the module's description)."""
    if path.is_dir():
        return _check(_Folder(path), str(path), expected_key)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return _check(_Zip(archive), str(path), expected_key)
    raise InputError(f"{path} is neither an export folder nor a zip of one.")


def _check(files: _Folder | _Zip, name: str, expected_key: bytes | None) -> ExportCheck:
    check = ExportCheck(path=name)
    if not files.exists(SUMMARY):
        check.missing.append(SUMMARY)
        check.problems.append(f"{SUMMARY} is missing: this is not a complete export.")
        return check
    summary_sha256, summary = _read_summary(files, check)
    _check_signature(files, check, summary_sha256, expected_key)
    if summary is None:
        return check
    listed: dict[str, dict[str, Any]] = summary.get("files", {})
    computed: dict[str, str] = {}
    for path, expected in listed.items():
        if not files.exists(path):
            check.missing.append(path)
            continue
        digest, size = _hash(files, path)
        computed[path] = digest
        check.files_checked += 1
        if digest != expected.get("sha256") or size != expected.get("size"):
            check.altered.append(path)
    check.extra = [n for n in files.names() if n not in listed and n not in UNLISTED]
    if MANIFEST_CSV in computed and MANIFEST_CSV not in check.altered:
        _check_manifest(files, computed, check)
    return check


def _read_summary(files: _Folder | _Zip, check: ExportCheck
                  ) -> tuple[str, dict[str, Any] | None]:
    digest = hashlib.sha256()
    buffer = io.BytesIO()
    with files.open(SUMMARY) as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            buffer.write(chunk)
    try:
        summary = json.loads(buffer.getvalue())
    except ValueError:
        check.altered.append(SUMMARY)
        check.problems.append(f"{SUMMARY} is not JSON.")
        return digest.hexdigest(), None
    return digest.hexdigest(), summary


def _check_signature(files: _Folder | _Zip, check: ExportCheck, summary_sha256: str,
                     expected_key: bytes | None) -> None:
    for needed in (SIGNATURE, KEY_FILE):
        if not files.exists(needed):
            check.missing.append(needed)
    if not files.exists(SIGNATURE) or not files.exists(KEY_FILE):
        check.problems.append("the export is not signed (its signature or key is missing).")
        return
    with files.open(KEY_FILE) as handle:
        pem = handle.read()
    with files.open(SIGNATURE) as handle:
        try:
            signed = json.loads(handle.read())
        except ValueError:
            signed = {}
    try:
        check.key_fingerprint = signing.fingerprint(pem)
    except ValueError:
        check.signature = "invalid"
        check.problems.append(f"{KEY_FILE} is not an Ed25519 public key.")
        return
    good = signing.valid(pem, summary_sha256, str(signed.get("signature", "")))
    check.signature = "valid" if good else "invalid"
    if not good:
        check.problems.append(f"the signature does not match {SUMMARY}: the summary was "
                              "altered or signed by another key.")
    if expected_key is not None and signing.fingerprint(expected_key) != check.key_fingerprint:
        check.signature = "other key"
        check.problems.append("the export was signed with another key than the one given.")


def _hash(files: _Folder | _Zip, path: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with files.open(path) as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _check_manifest(files: _Folder | _Zip, computed: dict[str, str],
                    check: ExportCheck) -> None:
    with files.open(MANIFEST_CSV) as handle:
        text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        for row in csv.DictReader(text):
            path = row.get("path", "")
            if path.endswith(".mbox") or path not in computed:
                if path and not path.endswith(".mbox"):
                    check.problems.append(f"manifest row {row.get('control')} names "
                                          f"{path}, which the summary does not list.")
                continue
            if computed[path] != row.get("sha256"):
                check.problems.append(f"manifest row {row.get('control')} does not match "
                                      f"{path}.")
