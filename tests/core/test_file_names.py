"""File names that are not valid UTF-8: Linux paths are bytes, and an import keeps them exactly.

A file ``latin\\xe9.eml`` used to stop the whole import with a traceback (the catalog could
not store the name) and cost every other file of its batch. Now the provenance holds the
exact name (it round-trips to the bytes path), the catalog columns and every printed line
show it escaped (``latin\\xe9.eml``), and nothing else in the batch notices.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from mailvault.store import catalog
from mailvault.vault import Vault
from tests.support import build_message, invoke, run, search_json, write_maildir, write_mbox


def _write(folder: bytes, name: bytes, data: bytes) -> bytes:
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)
    with open(path, "wb") as handle:
        handle.write(data)
    return path


def _tree(tmp_path: Path) -> dict[str, bytes]:
    """A folder of files and a Maildir tree, some of their names Latin-1 bytes; returns the
    bytes path of each message by subject."""
    base = os.fsencode(tmp_path)
    mail = os.path.join(base, b"mail")
    paths = {
        "latin name": _write(mail, b"latin\xe9.eml", build_message(subject="latin name")),
        "plain name": _write(mail, b"plain.eml", build_message(subject="plain name")),
        "latin folder": _write(os.path.join(mail, b"caf\xe9"), b"one.eml",
                               build_message(subject="latin folder")),
    }
    _write(mail, b"empty\xe9.eml", b"")  # refused (empty), recorded as a failure
    _write(mail, b"notes\xe9.txt", b"\x00\x01 not mail at all")  # skipped
    write_mbox(Path(os.fsdecode(os.path.join(mail, b"box\xe9.mbox"))),
               [build_message(subject="latin mbox")])
    paths["latin mbox"] = os.path.join(mail, b"box\xe9.mbox")
    maildir = os.path.join(base, b"maildir")
    write_maildir(Path(os.fsdecode(maildir)), [build_message(subject="maildir root")])
    sub = os.path.join(maildir, b".Dossier\xe9")
    [written] = write_maildir(Path(os.fsdecode(sub)), [build_message(subject="latin maildir")])
    paths["latin maildir"] = os.fsencode(written)
    return paths


def test_names_that_are_not_utf8_are_archived_and_kept_exactly(tmp_path: Path) -> None:
    paths = _tree(tmp_path)
    vault = tmp_path / "vault"
    assert run("init", "--vault", vault).returncode == 0
    result = run("import", tmp_path / "mail", tmp_path / "maildir", "--vault", vault)
    out, err = result.stdout.decode(), result.stderr.decode()
    assert "Traceback" not in out + err
    assert result.returncode == 1, out + err  # the empty file is refused
    # The summary prints every name escaped.
    assert "archived 6," in out and "refused 1" in out
    assert "empty\\xe9.eml" in out
    assert "notes\\xe9.txt: not a mail file" in out
    with Vault.open(vault) as opened, opened.engine.connect() as conn:
        for subject in ("latin name", "plain name", "latin folder", "latin mbox",
                        "latin maildir"):
            [row] = search_json(vault, f'subject:"{subject}"')
            [arrival] = catalog.provenances(conn, row["id"])
            if arrival.kind == "eml":
                assert os.fsencode(arrival.source) == paths[subject]
                assert os.fsencode(arrival.item or "") == paths[subject]
            elif arrival.kind == "mbox":
                assert os.fsencode(arrival.source) == paths[subject]
                assert os.fsencode(arrival.folder or "") == b"mail/box\xe9"
            else:
                assert os.fsencode(arrival.folder or "") == b"maildir/Dossier\xe9"
                unique = os.path.basename(paths[subject]).split(b":2,")[0]
                assert os.fsencode(arrival.item or "") == b"Dossier\xe9/" + unique
        failures = catalog.failures(conn)
    # Catalog columns hold the escaped form (valid UTF-8 for SQLite and for people).
    assert [f["source"].endswith("empty\\xe9.eml") for f in failures] == [True]
    assert search_json(vault, 'subject:"latin folder"')[0]["folder"] == "mail/caf\\xe9"
    assert len(search_json(vault, 'folder:"Dossier\\xe9"')) == 1
    # A second import of the same tree adds nothing: the exact names give the same keys.
    again = run("import", tmp_path / "mail", tmp_path / "maildir", "--vault", vault, "--json")
    summary = json.loads(again.stdout)
    assert summary["archived"] == 0 and summary["duplicates"] == 6
    assert summary["refusals"][0]["item"].endswith("empty\\xe9.eml")


def test_show_status_and_json_print_such_names(tmp_path: Path) -> None:
    _tree(tmp_path)
    vault = tmp_path / "vault"
    assert run("init", "--vault", vault).returncode == 0
    run("import", tmp_path / "mail", "--vault", vault)
    [row] = search_json(vault, 'subject:"latin name"')
    shown = run("show", str(row["id"]), "--vault", vault)
    assert shown.returncode == 0, shown.stderr.decode()
    assert "latin\\xe9.eml" in shown.stdout.decode()
    as_json = run("show", str(row["id"]), "--vault", vault, "--json")
    assert as_json.returncode == 0, as_json.stderr.decode()
    # JSON keeps the exact name: parsed, it encodes back to the bytes.
    [arrival] = json.loads(as_json.stdout)["provenance"]
    assert os.fsencode(arrival["source"]).endswith(b"/mail/latin\xe9.eml")
    status = invoke("status", "--vault", vault)
    assert status.exit_code == 0 and "empty\\xe9.eml" in status.text
