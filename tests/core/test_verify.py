"""``mailvault verify`` finds damage in the store and reports each problem: a flipped byte in
a message blob or in a shared attachment part, a truncated volume, a deleted volume."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailvault.store import catalog
from mailvault.store.blobs import volume_path
from mailvault.store.volumes import Location
from mailvault.vault import Vault
from tests.support import Attachment, build_message, invoke, run, write_eml_folder

SHARED = random.Random(11).randbytes(40 * 1024)


@dataclass(frozen=True)
class Stored:
    """Where one message's blob lies on disk."""

    id: int
    path: Path
    location: Location


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    """Five plain messages and two sharing an attachment (one part blob)."""
    path = tmp_path / "vault"
    invoke("init", "--vault", path)
    messages = [build_message(subject=f"Plain {n}", body=f"Number {n}.\n") for n in range(5)]
    messages += [build_message(subject=f"With the part {n}",
                               attachments=[Attachment("shared.bin", SHARED)]) for n in range(2)]
    write_eml_folder(tmp_path / "mail", messages)
    assert invoke("import", tmp_path / "mail", "--vault", path).exit_code == 0
    return path


def stored_messages(vault: Path) -> list[Stored]:
    with Vault.open(vault) as opened, opened.engine.connect() as conn:
        folders = catalog.volume_folders(opened.engine)
        return [Stored(row.id, volume_path(folders[row.location.volume], row.location.volume),
                       row.location) for row in catalog.iter_messages(conn)]


def stored_part(vault: Path) -> tuple[str, Path, Location]:
    with Vault.open(vault) as opened, opened.engine.connect() as conn:
        folders = catalog.volume_folders(opened.engine)
        parts = list(catalog.iter_parts(conn))
    assert len(parts) == 1
    digest, _tier, location, _size = parts[0]
    return digest, volume_path(folders[location.volume], location.volume), location


def flip_byte(path: Path, offset: int) -> None:
    path.chmod(0o644)  # a sealed volume is read-only; the damage comes from outside
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0x01]))


def verify(vault: Path) -> tuple[int, list[str]]:
    result = invoke("verify", "--vault", vault, "--json")
    data = result.json()
    assert data["ok"] == (result.exit_code == 0)
    return result.exit_code, data["problems"]


def test_an_intact_vault_verifies(vault: Path) -> None:
    assert verify(vault) == (0, [])


def test_a_flipped_byte_in_a_message_blob(vault: Path) -> None:
    victim = stored_messages(vault)[2]
    flip_byte(victim.path, victim.location.offset + victim.location.length // 2)
    status, problems = verify(vault)
    assert status == 1
    assert len(problems) == 1 and problems[0].startswith(f"message {victim.id} "), problems
    # Reading it is refused with one sentence; the others still read.
    refused = run("get", str(victim.id), "--raw", "--vault", vault)
    assert refused.returncode == 1 and refused.stdout == b""
    assert refused.stderr.decode().count("\n") == 1 and b"Traceback" not in refused.stderr
    assert invoke("get", str(victim.id + 1), "--raw", "--vault", vault).exit_code == 0


def test_a_flipped_byte_in_a_shared_part(vault: Path) -> None:
    digest, path, location = stored_part(vault)
    flip_byte(path, location.offset + location.length - 10)
    status, problems = verify(vault)
    assert status == 1
    assert any(p.startswith(f"part {digest[:16]}") for p in problems), problems
    sharing = [p for p in problems if p.startswith("message ")]
    assert len(sharing) == 2, "both messages that use the part are reported"


def test_a_truncated_volume(vault: Path) -> None:
    stored = stored_messages(vault)
    last = max(stored, key=lambda s: s.location.offset)
    last.path.chmod(0o644)
    with open(last.path, "r+b") as handle:
        handle.truncate(last.location.offset + 10)
    status, problems = verify(vault)
    assert status == 1
    assert any(p.startswith(f"message {last.id} ") for p in problems), problems


def test_a_deleted_volume(vault: Path) -> None:
    stored = stored_messages(vault)
    volumes = {s.path for s in stored}
    for path in volumes:
        path.unlink()
    status, problems = verify(vault)
    assert status == 1
    reported = {int(p.split()[1]) for p in problems if p.startswith("message ")}
    assert reported == {s.id for s in stored}, "every message is reported, not just the first"
    assert any(p.startswith("part ") for p in problems)
