"""The PST and MSG readers on damaged real files (corpus files with bytes flipped, runs
overwritten, or cut short): reading gives messages and recorded failures (Unreadable), or
one InputError for a file that is no PST at all; never another exception, never a hang (a
time budget per file). The PST is read in this process, the way the reading process does
(plan the folders, then read chunks of items), so a crash shows here rather than as a dead
worker."""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from mailvault.errors import InputError
from mailvault.outlook.ndb import CRYPT_CYCLIC
from mailvault.outlook.source import OutlookTally, _FolderItems, _plan, _read_chunk, msg_items
from mailvault.records import Incoming, Unreadable
from tests.conftest import CORPUS
from tests.fuzz.profile import fuzz
from tests.outlook.pst_writer import Format, write_pst


@cache
def originals(kind: str) -> list[bytes]:
    """The small corpus files of a kind (the 2-3 MB PSTs would slow every example), and for
    PSTs small written ones in the formats the corpus lacks: 4 KiB pages with compressed
    blocks, high encryption."""
    found = sorted((CORPUS / kind).rglob(f"*.{kind}"))
    files = [p.read_bytes() for p in found if p.stat().st_size <= 300 * 1024]
    if kind == "pst":
        with tempfile.TemporaryDirectory() as folder:
            for fmt in (Format(four_k=True, crypt=CRYPT_CYCLIC), Format(four_k=True)):
                path = Path(folder) / "written.pst"
                write_pst(path, 24, fmt=fmt, lean=True)
                files.append(path.read_bytes())
    return files


@st.composite
def damaged(draw: st.DrawFn, kind: str) -> bytes:
    files = originals(kind)
    assert files, f"no {kind} files in the corpus"
    data = bytearray(draw(st.sampled_from(files)))
    for _ in range(draw(st.integers(1, 8))):
        # Damage lands in the first 64 KiB more often: headers, the B-trees' roots.
        limit = min(len(data), draw(st.sampled_from([len(data), 65536, 4096])))
        at = draw(st.integers(0, max(0, limit - 1)))
        action = draw(st.sampled_from(["flip", "flip", "overwrite", "truncate"]))
        if action == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "overwrite":
            value = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80]))
            length = draw(st.integers(1, 64))
            data[at:at + length] = bytes([value]) * len(data[at:at + length])
        else:
            del data[max(at, 1):]
    return bytes(data)


def _written(data: bytes, suffix: str) -> Path:
    handle = tempfile.NamedTemporaryFile(suffix=suffix, delete=False)  # noqa: SIM115
    with handle:
        handle.write(data)
    return Path(handle.name)


@fuzz(40, budget_s=20.0)
@given(data=damaged("pst"))
def test_a_damaged_pst_gives_messages_and_recorded_failures(data: bytes) -> None:
    path = _written(data, ".pst")
    try:
        try:
            plan = _plan(path, None)
        except InputError as exc:
            assert str(exc).endswith(".")
            return
        for entry in plan:
            if isinstance(entry, Unreadable):
                assert entry.reason
                continue
            assert isinstance(entry, _FolderItems)
            chunk = _read_chunk(path, entry.name, entry.label, entry.nids[:64])
            for item in chunk.items:
                assert isinstance(item, Incoming | Unreadable)
    finally:
        path.unlink()


@fuzz(60, budget_s=10.0)
@given(data=damaged("msg"))
def test_a_damaged_msg_gives_a_message_or_a_recorded_failure(data: bytes) -> None:
    path = _written(data, ".msg")
    try:
        items = list(msg_items(path, "fuzz", OutlookTally()))
        assert len(items) <= 1
        assert all(isinstance(item, Incoming | Unreadable) for item in items)
    finally:
        path.unlink()
