"""Search, count, open and download through the use cases: each principal sees exactly what
its roles allow, a user only their own mail (envelope recipients included), and every look,
allowed or refused, is audited. On both search backends (Tantivy, PostgreSQL)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from mailvault.accounts.principal import Principal, local_operator
from mailvault.accounts.roles import Role
from mailvault.compliance import holds
from mailvault.errors import NotFoundError, PermissionDenied, QueryError
from mailvault.mime_leaves import leaves
from mailvault.store import audit, catalog
from mailvault.usecases import finding
from mailvault.vault import Vault
from tests.postgres import SEARCH_BACKENDS, search_catalog

AUDITOR = local_operator("auditor")


@pytest.fixture(params=SEARCH_BACKENDS)
def vault(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Vault]:
    """A new vault searched by each backend in turn (the use cases' fixture, twice)."""
    if request.param == "tantivy":
        created = Vault.create(tmp_path / "vault")
    else:
        url, password_file = search_catalog(request, tmp_path)
        created = Vault.create(tmp_path / "vault", catalog_url=url,
                               catalog_password_file=str(password_file),
                               search_backend="postgresql")
    try:
        yield created
    finally:
        created.close()


def user(*addresses: str) -> Principal:
    return Principal(name=addresses[0].split("@")[0], roles=frozenset({Role.USER}),
                     addresses=addresses)


def found(vault: Vault, who: Principal, query: str = "") -> set[int]:
    return {row.id for row in finding.search(vault, who, query, limit=100).rows}


def actions(vault: Vault) -> list[tuple[str, str]]:
    with vault.engine.connect() as conn:
        return [(e.actor, e.action) for e in audit.entries(conn)]


def test_an_auditor_finds_everything(vault: Vault, mail: dict[str, int]) -> None:
    assert found(vault, AUDITOR) == set(mail.values())
    assert finding.count(vault, AUDITOR, "") == 4


def test_a_user_finds_only_mail_they_are_party_to(vault: Vault, mail: dict[str, int]) -> None:
    dave = user("Dave@Example.org")
    assert found(vault, dave) == {mail["to_dave"], mail["with_file"]}
    assert finding.search(vault, dave, "").total == 2
    assert finding.count(vault, dave, "subject:contract OR subject:lunch") == 1
    assert found(vault, user("bob@example.org"), "lunch") == {mail["to_bob"]}
    assert found(vault, user("nobody@example.org")) == set()


def test_envelope_recipients_count_as_parties(vault: Vault, mail: dict[str, int]) -> None:
    # erin is only in the journal envelope (a Bcc): it is her mail too.
    assert found(vault, user("erin@example.org")) == {mail["to_dave"]}
    # grace is only in the envelope of the second arrival of a message archived before.
    assert found(vault, user("grace@example.org")) == {mail["twice"]}


def test_a_later_arrival_adds_its_envelope_to_the_parties(vault: Vault,
                                                          mail: dict[str, int]) -> None:
    with vault.engine.connect() as conn:
        assert catalog.party_message_ids(conn, ["grace@example.org"]) == {mail["twice"]}
        # Each envelope address once, however many arrivals name it.
        rows = conn.execute(text(
            "SELECT role, address, count(*) FROM addresses WHERE message_id = :id "
            "AND role LIKE 'envelope%' GROUP BY role, address"), {"id": mail["twice"]}).all()
    assert sorted(rows) == [("envelope-from", "heidi@example.org", 1),
                            ("envelope-to", "grace@example.org", 1),
                            ("envelope-to", "ivan@example.org", 1)]
    hold = holds.place(vault, "matter", custodian="grace@example.org", query=None,
                       date_from=None, date_to=None, reason="subpoena", owner="legal",
                       actor="admin")
    assert holds.held_by(vault, hold) == {mail["twice"]}


def test_a_user_opens_their_own_message(vault: Vault, mail: dict[str, int]) -> None:
    opened = finding.open_message(vault, user("bob@example.org"), str(mail["to_bob"]))
    assert opened.row.subject == "lunch plans"
    assert hashlib.sha256(opened.raw).hexdigest() == opened.row.sha256
    assert ("bob", "view") in actions(vault)


def test_another_persons_message_is_not_found_and_the_attempt_audited(
        vault: Vault, mail: dict[str, int]) -> None:
    bob = user("bob@example.org")
    other = str(mail["to_dave"])
    with pytest.raises(NotFoundError) as guessed:
        finding.open_message(vault, bob, other)
    with pytest.raises(NotFoundError) as missing:
        finding.open_message(vault, bob, "999999")
    # The same words whether the message exists or not: a guess learns nothing.
    assert str(guessed.value).replace(other, "N") == str(missing.value).replace("999999", "N")
    with pytest.raises(NotFoundError):
        finding.raw_message(vault, bob, other, to="web")
    with pytest.raises(NotFoundError):
        finding.attachment(vault, bob, str(mail["with_file"]), 1, to="web")
    with vault.engine.connect() as conn:
        denied = [e.detail for e in audit.entries(conn) if e.action == "denied"]
    assert [d["action"] for d in denied] == ["view", "view", "download",
                                              "download-attachment"]
    assert denied[0]["ref"] == other


def test_raw_and_attachment_downloads(vault: Vault, mail: dict[str, int]) -> None:
    frank = user("frank@example.org")
    row, data = finding.raw_message(vault, frank, str(mail["with_file"]), to="web")
    assert hashlib.sha256(data).hexdigest() == row.sha256
    numbers = [leaf.number for leaf in leaves(data) if leaf.filename == "contract.txt"]
    _, part = finding.attachment(vault, frank, str(mail["with_file"]), numbers[0], to="web")
    assert part.data == b"signed on the dotted line\n"
    with pytest.raises(NotFoundError, match="has no part 99"):
        finding.attachment(vault, AUDITOR, str(mail["with_file"]), 99, to="web")
    downloads = [a for a in actions(vault) if a[1].startswith("download")]
    assert downloads == [("frank", "download"), ("frank", "download-attachment")]


def test_roles_without_mail_access_are_refused(vault: Vault, mail: dict[str, int]) -> None:
    admin = Principal(name="root", roles=frozenset({Role.ADMIN}))
    with pytest.raises(PermissionDenied):
        finding.search(vault, admin, "")
    with pytest.raises(PermissionDenied):
        finding.open_message(vault, admin, str(mail["to_bob"]))


def test_a_reviewer_without_a_queue_finds_nothing(vault: Vault, mail: dict[str, int]) -> None:
    """A reviewer reaches the messages of their review queues only (tests/review/): with
    none, every search is empty and every message "not found"."""
    reviewer = Principal(name="rev", roles=frozenset({Role.REVIEWER}))
    assert finding.search(vault, reviewer, "").total == 0
    assert finding.count(vault, reviewer, "lunch") == 0
    with pytest.raises(NotFoundError, match="review queues"):
        finding.open_message(vault, reviewer, str(mail["to_bob"]))


def test_only_those_who_manage_holds_search_by_hold(vault: Vault,
                                                    mail: dict[str, int]) -> None:
    holds.place(vault, "matter", custodian="bob@example.org", query=None, date_from=None,
                date_to=None, reason="subpoena", owner="legal", actor="admin")
    assert found(vault, AUDITOR, "hold:matter") == {mail["to_bob"]}
    with pytest.raises(QueryError, match="legal holds"):
        finding.search(vault, user("bob@example.org"), "hold:matter")
    with pytest.raises(QueryError, match="legal holds"):
        finding.count(vault, user("bob@example.org"), "lunch OR -hold:matter")


def test_every_search_and_count_is_audited_with_the_principal(
        vault: Vault, mail: dict[str, int]) -> None:
    finding.search(vault, user("bob@example.org"), "lunch")
    finding.count(vault, AUDITOR, "from:alice")
    with vault.engine.connect() as conn:
        looked = [(e.actor, e.action, e.detail["query"]) for e in audit.entries(conn)
                  if e.action in ("search", "count")]
    assert looked == [("bob", "search", "lunch"), ("cli:auditor", "count", "from:alice")]
