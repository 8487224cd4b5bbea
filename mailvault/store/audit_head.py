"""The audit log's head, kept outside the catalog: ``VAULT/audit-head.json``.

The file names the newest entry known to have been committed (its sequence number and hash)
and carries an HMAC made with the chain key, so it cannot be forged without the keyring.
Deleting the last entries of the log from the catalog leaves the log ending before the entry
this file names, which ``audit verify`` reports. The file is a lower bound: it moves forward
when a vault is opened and closed (never past an entry that is not committed), so a crash
only leaves it behind, never ahead. A head written down elsewhere (``mailvault audit head``)
is checked the same way by ``audit verify --head SEQ:HASH``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from mailvault.errors import InputError, IntegrityError
from mailvault.store import file_modes

HEAD_FILE = "audit-head.json"
_HEAD_TEXT = re.compile(r"^\s*(\d+)\s*[:\s]\s*([0-9a-fA-F]{64})\s*$")


@dataclass(frozen=True)
class Head:
    """An entry of the audit log by its sequence number and hash; seq 0: no entry yet."""

    seq: int
    hash: str


def parse_head(text: str) -> Head:
    """``SEQ:HASH`` (or ``SEQ HASH``, as ``mailvault audit head`` prints it) as a Head."""
    match = _HEAD_TEXT.match(text)
    if match is None:
        raise InputError(f"a head is SEQ:HASH as 'mailvault audit head' prints it, not {text!r}.")
    return Head(int(match.group(1)), match.group(2).lower())


def read_head_file(path: Path, key: bytes) -> Head:
    """The head the file names; IntegrityError when it is missing or was not written by the
    key's holder."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        head = Head(int(record["seq"]), str(record["hash"]))
        mac = str(record["mac"])
    except FileNotFoundError:
        raise IntegrityError(f"the audit head file {path} is missing: it was deleted.") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IntegrityError(f"the audit head file {path} cannot be read ({exc}).") from exc
    if not hmac.compare_digest(mac, _mac(key, head)):
        raise IntegrityError(f"the audit head file {path} was altered: its seal does not match.")
    return head


def write_head_file(path: Path, key: bytes, head: Head) -> None:
    """Replace the file atomically (written, fsynced, renamed) with one naming ``head``;
    owner-only like everything in the vault (the temporary name is the process's own: a
    running serve and a command may both move the head)."""
    record = {"seq": head.seq, "hash": head.hash, "mac": _mac(key, head)}
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = file_modes.open_new(temporary, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, json.dumps(record).encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)


def remove_temporaries(folder: Path) -> None:
    """Delete temporary head files that a killed writer left behind. Called with the folder's
    lock held, so no living writer owns one of them."""
    for temporary in folder.glob(f".{HEAD_FILE}.*.tmp"):
        temporary.unlink(missing_ok=True)


def _mac(key: bytes, head: Head) -> str:
    return hmac.new(key, f"audit-head\0{head.seq}\0{head.hash}".encode(),
                    hashlib.sha256).hexdigest()
