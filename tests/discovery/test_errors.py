"""A message whose stored bytes fail their check is exported as an error, never left out
silently; the rest of the export is whole and verifies."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.discovery.conftest import export, manifest, summary
from tests.support import build_message, catalog_sql, run, write_eml_folder


def _flip_byte_of(vault: Path, message_id: int) -> None:
    [(volume, offset, length)] = catalog_sql(
        vault, 'SELECT volume_id, "offset", length FROM messages WHERE id = ?', message_id)
    [(folder,)] = catalog_sql(vault, "SELECT folder FROM volumes WHERE id = ?", volume)
    path = Path(folder) / f"{volume:08d}.vol"
    os.chmod(path, 0o600)
    with open(path, "r+b") as handle:
        handle.seek(offset + length - 20)
        value = handle.read(1)[0]
        handle.seek(offset + length - 20)
        handle.write(bytes([value ^ 0x40]))


# Four commands in their own processes: on a loaded machine that takes minutes.
@pytest.mark.timeout(900)
def test_a_damaged_message_is_listed_as_an_error(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    assert run("init", "--vault", vault).returncode == 0
    messages = [build_message(subject=f"message {n}", body=f"body {n}\n" * 50)
                for n in range(3)]
    write_eml_folder(tmp_path / "mail", messages)
    assert run("import", tmp_path / "mail", "--vault", vault).returncode == 0
    _flip_byte_of(vault, 2)
    folder = tmp_path / "out"
    result = export(vault, folder, "")
    assert result["counts"] == {**result["counts"], "messages": 3, "exported": 2,
                                "errors": 1}
    errors = summary(folder)["errors"]
    assert [e["id"] for e in errors] == [2] and "altered" in errors[0]["reason"]
    assert sorted(r["id"] for r in manifest(folder)) == [1, 3]
    assert run("verify", "--export", folder).returncode == 0
