"""Folder scope without a server: SPECIAL-USE by attribute, or by name when the server
announces none."""

from __future__ import annotations

from mailvault.sources.definitions import build
from mailvault.sources.imap import Folder
from mailvault.sources.scope import wanted, with_special_use

SPEC = build({"name": "s", "kind": "imap", "host": "h", "user": "u"})


def test_junk_and_trash_known_by_name_only_when_nothing_is_marked() -> None:
    plain = [Folder("INBOX", ()), Folder("Spam", ()), Folder("INBOX.Deleted Items", (), "."),
             Folder("Projects/Trash", ()), Folder("Sent", ())]
    reasons = {f.name: wanted(f, SPEC) for f in with_special_use(plain)}
    assert reasons["Spam"].startswith("SPECIAL-USE \\Junk")
    assert reasons["INBOX.Deleted Items"].startswith("SPECIAL-USE \\Trash")
    assert reasons["Projects/Trash"] == reasons["INBOX"] == reasons["Sent"] == ""

    marked = [Folder("Spam", ()), Folder("Rubbish", ("\\Junk",))]
    reasons = {f.name: wanted(f, SPEC) for f in with_special_use(marked)}
    assert reasons == {"Spam": "", "Rubbish": "SPECIAL-USE \\Junk (add --include-special junk)"}
