"""``mailvault import`` of PST and MSG files, end to end: archived, searchable, foldered,
re-import adds nothing, bad files fail in one sentence, a damaged item fails alone."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mailvault.outlook.ndb import PstFile
from mailvault.outlook.source import OutlookTally, pst_items
from tests.support import copy_vault, count, invoke, run, search_json

OUTLOOK = "aspose-net_Outlook_Outlook.pst"
NOTE_ITEM = 2097636  # "check sent date of this message", in Inbox


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    path = tmp_path / "vault"
    assert invoke("init", "--vault", path).exit_code == 0
    return path


@dataclass(frozen=True)
class Imported:
    """A vault the real ``mailvault import --json`` filled once for this module, and what
    the import said (tests only read it; one that changes it works on a copy)."""

    vault: Path
    summary: dict[str, Any]


def _import_once(folder: Path, source: Path) -> Imported:
    vault = folder / "vault"
    assert invoke("init", "--vault", vault).exit_code == 0
    result = run("import", source, "--vault", vault, "--json")
    assert result.returncode == 0, result.stderr.decode()
    return Imported(vault, json.loads(result.stdout))


@pytest.fixture(scope="module")
def outlook_pst(pst_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Imported:
    return _import_once(tmp_path_factory.mktemp("pst"), pst_dir / OUTLOOK)


@pytest.fixture(scope="module")
def msg_folder(msg_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Imported:
    return _import_once(tmp_path_factory.mktemp("msg"), msg_dir)


def failures(vault: Path) -> list[dict[str, str]]:
    found: list[dict[str, str]] = json.loads(
        invoke("status", "--vault", vault, "--json").stdout)["failures"]
    return found


def test_a_pst_is_archived_by_folder_and_reimport_adds_nothing(outlook_pst: Imported,
                                                                pst_dir: Path,
                                                                tmp_path: Path) -> None:
    summary, vault = outlook_pst.summary, outlook_pst.vault
    # 14 emails (the Inbox and Sent Items copies differ: only received mail has transport
    # headers), 1 contact, 1 appointment.
    assert (summary["archived"], summary["duplicates"]) == (16, 0)
    assert summary["refused"] == 0
    assert summary["outlook_items"] == {
        "converted": {"appointment": 1, "contact": 1, "email": 14},
        "skipped": {"IPM.Microsoft.ScheduleData.FreeBusy": 1}, "unreadable": 0}
    assert count(vault, "folder:Inbox") == 8
    assert count(vault, 'folder:"Sent Items"') == 6
    assert count(vault, "has:attachment") >= 4
    assert count(vault, 'subject:"this message contains embedded MSG"') == 2
    vault = copy_vault(vault, tmp_path / "again")
    again = run("import", pst_dir / OUTLOOK, "--vault", vault, "--json")
    assert again.returncode == 0, again.stderr.decode()
    repeat = json.loads(again.stdout)
    assert repeat["archived"] == 0
    assert repeat["duplicates"] == 16


def test_the_summary_says_which_kinds_were_converted_and_skipped(vault: Path,
                                                                 pst_dir: Path) -> None:
    result = run("import", pst_dir / "java-libpst_dist-list.pst", "--vault", vault)
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout.decode()
    assert "Outlook items converted: 1 appointment, 1 contact, 1 distribution list" in out
    assert "Outlook items skipped (no standard form): 1 IPM.Microsoft.ScheduleData.FreeBusy" \
        in out


def test_attached_messages_are_searchable_parts(outlook_pst: Imported) -> None:
    vault = outlook_pst.vault
    [row, *_] = search_json(vault, 'subject:"this message contains embedded MSG"')
    raw = invoke("get", str(row["id"]), "--raw", "--vault", vault).stdout
    assert raw.count(b"Content-Type: message/rfc822") == 2
    assert b"Subject: message 1" in raw and b"Subject: message 2" in raw


def test_a_truncated_pst_fails_in_one_sentence(vault: Path, pst_dir: Path,
                                               tmp_path: Path) -> None:
    cut = tmp_path / "cut.pst"
    cut.write_bytes((pst_dir / OUTLOOK).read_bytes()[:300])
    result = run("import", cut, "--vault", vault)
    _one_sentence(result, "cut.pst", "truncated")


def test_a_pst_cut_after_its_header_fails_in_one_sentence(vault: Path, pst_dir: Path,
                                                          tmp_path: Path) -> None:
    cut = tmp_path / "half.pst"
    cut.write_bytes((pst_dir / OUTLOOK).read_bytes()[:100_000])
    result = run("import", cut, "--vault", vault)
    _one_sentence(result, "half.pst", "truncated")


def test_a_random_file_named_pst_fails_in_one_sentence(vault: Path, tmp_path: Path) -> None:
    fake = tmp_path / "random.pst"
    fake.write_bytes(os.urandom(50_000))
    result = run("import", fake, "--vault", vault)
    _one_sentence(result, "random.pst", "not a PST or OST file")


def _one_sentence(result: object, *fragments: str) -> None:
    stderr = result.stderr.decode()  # type: ignore[attr-defined]
    assert result.returncode == 1, stderr  # type: ignore[attr-defined]
    assert stderr.startswith("mailvault: ") and stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in stderr, stderr


def test_a_damaged_item_is_a_failure_and_the_rest_is_archived(vault: Path, pst_dir: Path,
                                                              tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.pst"
    shutil.copy(pst_dir / OUTLOOK, damaged)
    damaged.chmod(0o644)
    with PstFile(damaged) as pst:
        node = pst.node(NOTE_ITEM)
        assert node is not None
        place = pst.block_place(node.bid_data)
    with open(damaged, "r+b") as handle:
        handle.seek(place.offset)
        handle.write(b"\x00" * place.size)
    result = run("import", damaged, "--vault", vault, "--json")
    assert result.returncode == 1  # something was refused
    summary = json.loads(result.stdout)
    assert summary["refused"] == 1
    assert summary["archived"] + summary["duplicates"] == 15
    [failure] = failures(vault)
    assert f"item {NOTE_ITEM} in folder Inbox" in failure["reason"]
    assert count(vault, 'subject:"check sent date of this message"') == 1  # the Sent copy


def test_a_folder_of_msg_files_is_archived_by_kind(msg_folder: Imported) -> None:
    summary, vault = msg_folder.summary, msg_folder.vault
    assert summary["outlook_items"]["converted"] == {
        "appointment": 13, "contact": 2, "email": 28, "note": 1}
    assert summary["archived"] + summary["duplicates"] == 44
    assert count(vault, "folder:hiraoka") == summary["archived"]


def test_cjk_and_cp932_text_is_searchable(msg_folder: Imported) -> None:
    vault = msg_folder.vault
    # nonUnicodeCP932.msg: 8-bit subject and body in code page 932.
    [row] = search_json(vault, 'subject:"日本語 Non Unicode タイトル"')
    assert row["subject"] == "日本語 Non Unicode タイトル"
    assert count(vault, "ワークフロー通知") >= 1  # attached messages' subjects
    assert count(vault, "你好") >= 1  # Hello +CJK.msg: HTML recovered from RTF, GB2312 font


def test_nested_messages_keep_their_attachments(vault: Path, msg_dir: Path) -> None:
    assert run("import", msg_dir / "msgInMsgInMsg.msg", "--vault", vault).returncode == 0
    [row] = search_json(vault, "")
    raw = invoke("get", str(row["id"]), "--raw", "--vault", vault).stdout
    assert raw.count(b"Content-Type: message/rfc822") == 2
    assert b'filename="green.png"' in raw and b'filename="blue.png"' in raw


def test_stopping_early_ends_the_reading_process(pst_dir: Path) -> None:
    tally = OutlookTally()
    before = set(multiprocessing.active_children())
    items = pst_items(pst_dir / OUTLOOK, None, tally, lambda size: None)
    next(items)
    readers = set(multiprocessing.active_children()) - before
    items.close()
    assert readers and not any(p.is_alive() for p in readers)
    assert sum(tally.archived.values()) >= 1
