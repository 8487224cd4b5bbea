"""Symbolic links inside an imported tree are never followed: each is refused once, named in
one sentence and recorded as a failure. The path a person names may itself be a link.

Following them archived files from outside the tree (``new/etc -> /etc/passwd``) and made up
folders from loops (``.Loop -> .``, ``.Sub/.Up -> ..``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from mailvault.store import catalog
from mailvault.vault import Vault
from tests.support import build_message, count, run, search_json, write_maildir


def _tree(tmp_path: Path) -> tuple[Path, Path, list[Path]]:
    """An EML folder and a Maildir, each with links out of the tree and loops; returns
    (folder, maildir, the links)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.eml").write_bytes(build_message(subject="outside secret"))
    (outside / "more").mkdir()
    (outside / "more" / "other.eml").write_bytes(build_message(subject="outside other"))
    mail = tmp_path / "mail"
    mail.mkdir()
    (mail / "kept.eml").write_bytes(build_message(subject="kept eml"))
    links = [mail / "secret.eml", mail / "more", mail / "self"]
    links[0].symlink_to(outside / "secret.eml")
    links[1].symlink_to(outside / "more")
    links[2].symlink_to(".")
    maildir = tmp_path / "md"
    write_maildir(maildir, [build_message(subject="kept maildir")])
    write_maildir(maildir / ".Sub", [build_message(subject="kept sub")])
    more_links = [maildir / "new" / "etc", maildir / ".Loop", maildir / ".Sub" / ".Up",
                  maildir / "loose.eml"]
    more_links[0].symlink_to(outside / "secret.eml")
    more_links[1].symlink_to(".")
    more_links[2].symlink_to("..")
    more_links[3].symlink_to(outside / "secret.eml")
    return mail, maildir, links + more_links


def test_links_inside_an_imported_tree_are_refused_once(tmp_path: Path) -> None:
    mail, maildir, links = _tree(tmp_path)
    vault = tmp_path / "vault"
    assert run("init", "--vault", vault).returncode == 0
    # The path a person names may be a link: it is where they say the mail is.
    (tmp_path / "md-link").symlink_to(maildir)
    result = run("import", mail, tmp_path / "md-link", "--vault", vault, "--json")
    assert result.returncode == 1, result.stderr.decode()
    summary = json.loads(result.stdout)
    assert summary["archived"] == 3
    assert count(vault, "subject:kept") == 3
    assert count(vault, "subject:outside") == 0
    folders = {row["folder"] for row in search_json(vault, "")}
    assert folders == {"mail", "md", "md/Sub"}
    # Each link is refused once, in one sentence that names it.
    reasons = [r["reason"] for r in summary["refusals"]]
    assert len(reasons) == len(links), reasons
    for link in links:
        [reason] = [r for r in reasons if r.startswith(f"{link} is a symbolic link")]
        assert reason.endswith("links inside an imported folder are not followed.")
    with Vault.open(vault) as opened, opened.engine.connect() as conn:
        assert len(catalog.failures(conn)) == len(links)
    # Importing again refuses them again; the earlier failures are settled, not doubled.
    again = run("import", mail, tmp_path / "md-link", "--vault", vault, "--json")
    assert json.loads(again.stdout)["duplicates"] == 3
    with Vault.open(vault) as opened, opened.engine.connect() as conn:
        assert len(catalog.failures(conn)) == len(links)


def test_no_file_outside_the_tree_is_read_for_its_size(tmp_path: Path) -> None:
    """The progress total counts the tree only (a loop would never end, a link out would
    count someone else's files)."""
    from mailvault.ingest.files import FileOptions, Reader

    mail, maildir, _ = _tree(tmp_path)
    (tmp_path / "outside" / "huge.bin").write_bytes(b"x" * 5_000_000)
    (mail / "huge").symlink_to(tmp_path / "outside" / "huge.bin")
    reader = Reader([mail, maildir], FileOptions())
    assert reader.scan.bytes_total < 100_000
    assert os.path.islink(mail / "huge")
