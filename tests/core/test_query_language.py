"""Every operator of the query language, on a small vault whose every fact the test states.

Six messages built with tests/support.py, imported through the command line: three in a
Maildir folder ``inbox``, three as .eml files in a folder ``archive``; once in a vault
searched by Tantivy, once in one searched by PostgreSQL (the same answers from both).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailvault.errors import QueryError
from tests.postgres import SEARCH_BACKENDS, search_init_options
from tests.support import (
    DOCX_TYPE,
    Attachment,
    build_message,
    docx_with_text,
    invoke,
    pdf_with_text,
    run,
    search_json,
    write_eml_folder,
    write_maildir,
)

MESSAGES = {
    "report": build_message(
        subject="Quarterly report draft", sender="Alice Adams <alice@example.org>",
        to=["Bob Brown <bob@example.org>"], cc=["Carol Clark <carol@example.net>"],
        date=datetime(2021, 3, 4, 9, 0, tzinfo=UTC), body="The budget numbers are attached.\n",
        attachments=[Attachment("report.pdf", pdf_with_text("zanzibar"), "application/pdf")]),
    "reply": build_message(
        subject="Re: Quarterly report draft", sender="bob@example.org",
        to=["alice@example.org"], date=datetime(2021, 3, 5, 8, 0, tzinfo=UTC),
        body="The forecast looks fine to me.\n"),
    "lunch": build_message(
        subject="Lunch plans", sender="Carol Clark <carol@example.net>",
        to=["dave@example.net"], bcc=["erin@example.com"],
        date=datetime(2021, 2, 1, 12, 0, tzinfo=UTC), body="Pizza or sushi?\n"),
    "photos": build_message(
        subject="Holiday photos", sender="dave@example.net", to=["alice@example.org"],
        date=datetime(2020, 12, 24, 18, 0, tzinfo=UTC), body="See the notes.\n",
        attachments=[Attachment("notes.docx", docx_with_text("quokka"), DOCX_TYPE)]),
    "big": build_message(
        subject="Big file", sender="erin@example.com", to=["bob@example.org"],
        date=datetime(2021, 3, 4, 23, 0, tzinfo=UTC), body="A large binary follows.\n",
        attachments=[Attachment("data.bin", bytes(range(256)) * 1200)]),
    "prefix": build_message(
        subject="Prefixes", sender="frank@example.com", to=["bob@example.org"],
        date=datetime(2021, 1, 15, 7, 0, tzinfo=UTC),
        body="internationalization is long\n", message_id="<unique-123@example.org>"),
}
SUBJECTS = {MESSAGES_KEY: key for key, MESSAGES_KEY in (
    ("report", "Quarterly report draft"), ("reply", "Re: Quarterly report draft"),
    ("lunch", "Lunch plans"), ("photos", "Holiday photos"), ("big", "Big file"),
    ("prefix", "Prefixes"))}
ALL = set(MESSAGES)
INBOX = {"report", "reply", "lunch"}


@pytest.fixture(scope="module", params=SEARCH_BACKENDS)
def small_vault(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                ) -> Path:
    """The six messages in a vault of each search backend: every test runs on both."""
    root = tmp_path_factory.mktemp("mail")
    write_maildir(root / "mail" / "inbox", [MESSAGES[k] for k in ("report", "reply", "lunch")])
    write_eml_folder(root / "mail" / "archive",
                     [MESSAGES[k] for k in ("photos", "big", "prefix")])
    vault = root / "vault"
    options = search_init_options(request, request.param, root)
    assert invoke("init", "--vault", vault, *options).exit_code == 0
    imported = invoke("import", root / "mail", "--vault", vault, "--json")
    assert imported.exit_code == 0, imported.text
    assert imported.json()["archived"] == len(MESSAGES)
    return vault


OPERATORS = [
    ("from:alice", {"report"}),
    ('from:"Alice Adams"', {"report"}),
    ("to:alice", {"reply", "photos"}),
    ("cc:carol", {"report"}),
    ("bcc:erin", {"lunch"}),
    ("participant:carol", {"report", "lunch"}),
    ("participant:erin@example.com", {"lunch", "big"}),
    ("party:Erin@Example.com", {"lunch", "big"}),
    ('party:"bob@example.org" -from:bob', {"report", "big", "prefix"}),
    ("party:alice@example.org OR party:frank@example.com",
     {"report", "reply", "photos", "prefix"}),
    ("subject:quarterly", {"report", "reply"}),
    ('subject:"report draft"', {"report", "reply"}),
    ('subject:"draft report"', set()),
    ("body:forecast", {"reply"}),
    ("body:quarterly", set()),
    ("attachment:zanzibar", {"report"}),
    ("attachment:quokka", {"photos"}),
    ("zanzibar", {"report"}),
    ("filename:report.pdf", {"report"}),
    ("filename:notes", {"photos"}),
    ("has:attachment", {"report", "photos", "big"}),
    ("-has:attachment", {"reply", "lunch", "prefix"}),
    ("after:2021-03-04", {"report", "reply", "big"}),
    ("before:2021-03-04", {"lunch", "photos", "prefix"}),
    ("on:2021-03-04", {"report", "big"}),
    ("after:2021-01-01 before:2021-03-01", {"lunch", "prefix"}),
    ("larger:100K", {"big"}),
    ("smaller:100K", ALL - {"big"}),
    ("folder:inbox", INBOX),
    ("in:archive", ALL - INBOX),
    ("source:maildir", INBOX),
    ("msgid:unique-123@example.org", {"prefix"}),
    ("msgid:<unique-123@example.org>", {"prefix"}),
    ('"report draft"', {"report", "reply"}),
    ("lunch OR holiday", {"lunch", "photos"}),
    ("quarterly -re", {"report"}),
    ("(lunch OR holiday) from:dave", {"photos"}),
    ("subject:(lunch OR photos)", {"lunch", "photos"}),
    ("from:alice OR from:carol", {"report", "lunch"}),
    ("intern*", {"prefix"}),
    ("sush*", {"lunch"}),
    ("", ALL),
]


@pytest.mark.parametrize(("query", "expected"), OPERATORS, ids=[q or "empty" for q, _ in OPERATORS])
def test_operator(small_vault: Path, query: str, expected: set[str]) -> None:
    rows = search_json(small_vault, query)
    assert {SUBJECTS[r["subject"]] for r in rows} == expected


def test_newest_first_and_limit(small_vault: Path) -> None:
    rows = search_json(small_vault, "", limit=3)
    assert [SUBJECTS[r["subject"]] for r in rows] == ["reply", "big", "report"]


def test_count_prints_one_number(small_vault: Path) -> None:
    result = invoke("count", "has:attachment", "--vault", small_vault)
    assert result.exit_code == 0
    assert result.text == "3\n"


BAD_QUERIES = [
    "subject:(lunch",
    "after:yesterday",
    "has:wings",
    "OR lunch",
    "lunch OR",
    "larger:huge",
    "nosuch:thing",
    "party:erin",
    ")",
]


@pytest.mark.parametrize("query", BAD_QUERIES)
def test_parse_error_is_one_sentence(small_vault: Path, query: str) -> None:
    with pytest.raises(QueryError) as caught:
        invoke("search", query, "--vault", small_vault)
    message = str(caught.value)
    assert "\n" not in message and message.endswith("."), message


def test_parse_error_on_the_command_line(small_vault: Path) -> None:
    result = run("search", "subject:(lunch", "--vault", small_vault)
    assert result.returncode == 1
    assert result.stdout == b""
    assert result.stderr.decode() == "mailvault: a parenthesis is not closed.\n"


def test_a_query_may_start_with_a_negation(small_vault: Path) -> None:
    """``mailvault count -has:attachment`` is a query, not an unknown option."""
    result = run("count", "-has:attachment", "--vault", small_vault)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"3\n"
