"""Fixtures of the review tests: the Enron mailbox (shared with the compliance tests, copied
per test) with reviewers, and a small vault of built mail between known domains."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailvault.accounts import users
from mailvault.accounts.principal import Principal
from mailvault.accounts.roles import Role
from mailvault.vault import Vault
from tests.compliance.conftest import copy_vault, enron_template
from tests.support import build_message
from tests.usecases.conftest import archive, file_arrival

__all__ = ["enron_template"]

OFFICER = Principal("cli:officer", frozenset({Role.ADMIN, Role.AUDITOR}))
RITA = Principal("rita", frozenset({Role.REVIEWER}))
SAM = Principal("sam", frozenset({Role.REVIEWER}))
PASSWORD = "correct horse battery staple"
ALLEN = "phillip.allen@enron.com"


def add_reviewers(vault: Vault) -> None:
    vault.settings.accounts.min_password_length = 8
    for name in ("rita", "sam"):
        users.add_user(vault, name, ["reviewer"], [], PASSWORD, "test")
    users.add_user(vault, "bob", ["user"], ["bob@corp.example"], PASSWORD, "test")


@pytest.fixture
def enron(enron_template: Path, tmp_path: Path) -> Iterator[Vault]:
    """A private copy of the Enron vault, with reviewers rita and sam."""
    vault = Vault.open(copy_vault(enron_template, tmp_path / "enron"))
    try:
        add_reviewers(vault)
        yield vault
    finally:
        vault.close()


def at(day: int) -> datetime:
    return datetime(2024, 3, day, 12, 0, tzinfo=UTC)


# name -> (sender, recipients, subject, body, extra headers, day of March 2024)
SMALL: dict[str, tuple[str, tuple[str, ...], str, str, list[tuple[str, str]], int]] = {
    "out": ("bob@corp.example", ("client@other.example",), "the offer",
            "We guarantee the returns, off the books.\n", [], 4),
    "in": ("client@other.example", ("bob@corp.example",), "question",
           "Can you guarantee it?\n", [], 5),
    "internal": ("bob@corp.example", ("carol@sales.corp.example",), "lunch",
                 "Lunch at noon?\n", [], 6),
    "list": ("news@lists.example", ("bob@corp.example",), "digest",
             "We guarantee fresh news.\n", [("List-Id", "<news.lists.example>")], 6),
    "auto": ("bob@corp.example", ("client@other.example",), "out of office",
             "I guarantee a reply later.\n", [("Auto-Submitted", "auto-replied")], 7),
    "bulk": ("promo@shop.example", ("bob@corp.example",), "sale",
             "Guaranteed deals.\n", [("Precedence", "bulk")], 7),
    "noreply": ("noreply@alerts.example", ("bob@corp.example",), "alert",
                "guarantee notice\n", [], 8),
    "other": ("heidi@corp.example", ("ivan@corp.example",), "board",
              "We guarantee nothing.\n", [], 8),
}


@pytest.fixture
def small(tmp_path: Path) -> Iterator[tuple[Vault, dict[str, int]]]:
    """Built mail of bob@corp.example (internal, inbound, outbound, automated) and one
    message he is no party to; reviewers rita and sam."""
    vault = Vault.create(tmp_path / "vault")
    try:
        add_reviewers(vault)
        raws = [(build_message(subject=subject, sender=sender, to=to, body=body,
                               headers=headers, date=at(day)), file_arrival(name))
                for name, (sender, to, subject, body, headers, day) in SMALL.items()]
        ids = archive(vault, raws)
        yield vault, dict(zip(SMALL, ids, strict=True))
    finally:
        vault.close()
