"""The command line prints what the use cases return, as it printed before they existed:
the JSON of each read command is the use case's record, field for field, and the command
acts as the local operator (administrator and auditor) under its actor name."""

from __future__ import annotations

from mailvault.accounts.principal import Principal
from mailvault.accounts.roles import Role
from mailvault.store import audit, catalog
from mailvault.usecases import auditing, holds, monitoring, retention
from mailvault.vault import Vault
from tests.support import invoke

ACTOR = {"MAILVAULT_ACTOR": "cli:faces"}
OPERATOR = Principal("cli:faces", frozenset({Role.ADMIN, Role.AUDITOR}))


def test_read_commands_print_the_use_cases_records(vault: Vault,
                                                   mail: dict[str, int]) -> None:
    holds.place_hold(vault, OPERATOR, "matter", reason="subpoena", owner="legal",
                     custodian="bob@example.org")
    where = ("--vault", vault.path, "--json")
    message = str(mail["to_bob"])
    pairs = [
        (("status", *where), monitoring.status(vault, OPERATOR).to_json()),
        (("stats", *where), monitoring.stats(vault, OPERATOR).to_json()),
        (("failure", "list", *where), []),
        (("hold", "list", *where), [h.to_json() for h in holds.list_holds(vault, OPERATOR)]),
        (("retention", "show", message, *where),
         retention.message_retention(vault, OPERATOR, message).to_json()),
        (("audit", "verify", *where), auditing.verify_chain(vault, OPERATOR).to_json()),
    ]
    for args, record in pairs:
        printed = invoke(*args, env=ACTOR)
        assert printed.exit_code == 0, args
        assert printed.json() == record, args
    assert invoke("retention", "show", message, *where).json()["holds"] == ["matter"]


def test_a_command_acts_as_the_local_operator(vault: Vault) -> None:
    assert invoke("audit", "log", "--vault", vault.path, env=ACTOR).exit_code == 0
    with vault.engine.connect() as conn:
        newest = list(audit.entries(conn))[-1]
    assert (newest.actor, newest.action) == ("cli:faces", "audit read")


def test_failures_are_listed_and_retried_from_the_command_line(
        vault: Vault, mail: dict[str, int]) -> None:
    with vault.engine.begin() as conn:
        row = catalog.resolve(conn, str(mail["to_dave"]))
        catalog.record_index_failures(conn, {row.id: (row.sha256, "a Rust panic")})
    vault.index.close()  # the command below holds the index writer, as a command alone would
    [listed] = invoke("failure", "list", "--vault", vault.path, "--json").json()
    assert (listed["kind"], listed["item"], listed["retryable"]) == ("index", row.sha256, True)
    retried = invoke("failure", "retry", str(listed["id"]), "--vault", vault.path)
    assert retried.exit_code == 0
    assert retried.text == (f"failure {listed['id']} (index): message {row.id} is searchable "
                            "now.\n")
    assert invoke("failure", "list", "--vault", vault.path).text == "no failures recorded\n"
