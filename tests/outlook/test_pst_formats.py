"""The PST formats the corpus has no file of, written by tests/outlook/pst_writer.py from
[MS-PST]: the 4 KiB-page format of Outlook 2013 and later (OSTs, and PSTs written in it), with
zlib-compressed blocks, and high (cyclic) encryption, in both page formats. Each is read as
readpst reads it, item by item; ``mailvault import`` counts what readpst counts; a damaged
compressed block is one recorded failure; a file of more than 100,000 items is read in memory
that does not grow with it."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from mailvault.outlook.ndb import (
    CRYPT_CYCLIC,
    CRYPT_PERMUTE,
    PERMUTE_ENCODE,
    PstFile,
    crypt_cyclic,
)
from mailvault.outlook.source import OutlookTally, pst_items
from mailvault.records import Incoming, Unreadable
from tests.outlook.pst_writer import Format, write_pst
from tests.outlook.readpst_reference import assert_reads_as_readpst, readpst_emails
from tests.outlook.test_large_pst import read_and_measure
from tests.support import invoke, run

FORMATS = {
    "4k": Format(four_k=True),
    "4k-compressible": Format(four_k=True, crypt=CRYPT_PERMUTE),
    "4k-high": Format(four_k=True, crypt=CRYPT_CYCLIC),
    "high": Format(crypt=CRYPT_CYCLIC),
}
# Enough for 2-level B-trees in 4 KiB pages (169 block entries a page), bodies in data trees
# and a contents table whose rows live in a subnode.
MESSAGES = 300
MANY = 100_100


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """A file of MESSAGES emails per format, written once for this module."""
    folder = tmp_path_factory.mktemp("formats")
    done: dict[str, Path] = {}

    def write(name: str) -> Path:
        if name not in done:
            done[name] = folder / f"{name}.pst"
            write_pst(done[name], MESSAGES, fmt=FORMATS[name])
        return done[name]

    return write


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_each_format_reads_as_readpst_reads_it(written: Callable[[str], Path], name: str,
                                               tmp_path: Path) -> None:
    ours = assert_reads_as_readpst(written(name), tmp_path, MESSAGES)
    assert sum(len(f.attachments) for f in ours) > MESSAGES // 10


def test_a_4k_file_holds_compressed_blocks(written: Callable[[str], Path]) -> None:
    # The test above must read inflated blocks, not only 4 KiB pages.
    with PstFile(written("4k")) as pst:
        places = [pst.block_place(node.bid_data) for node in (
            pst.node(((0x10000 + n) << 5) | 0x04) for n in range(MESSAGES)) if node]
    assert len(places) == MESSAGES
    assert sum(p.inflated > p.size for p in places) > MESSAGES // 2


def test_import_counts_what_readpst_counts(written: Callable[[str], Path],
                                           tmp_path: Path) -> None:
    # As an OST file (the 4 KiB format's usual name): recognised by its contents.
    path = tmp_path / "mailbox.ost"
    path.write_bytes(written("4k-high").read_bytes())
    emails = len(readpst_emails(path, tmp_path / "readpst"))
    vault = tmp_path / "vault"
    assert invoke("init", "--vault", vault).exit_code == 0
    result = run("import", path, "--vault", vault, "--json")
    assert result.returncode == 0, result.stderr.decode()
    summary = json.loads(result.stdout)
    assert summary["outlook_items"] == {"converted": {"email": emails}, "skipped": {},
                                        "unreadable": 0}
    assert (summary["archived"], summary["refused"]) == (emails, 0)


def test_a_damaged_compressed_block_is_one_recorded_failure(
        written: Callable[[str], Path], tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.pst"
    damaged.write_bytes(written("4k").read_bytes())
    with PstFile(damaged) as pst:
        # The first item of Inbox whose property context is stored compressed.
        for nid in (((0x10000 + n) << 5) | 0x04 for n in range(0, MESSAGES, 8)):
            node = pst.node(nid)
            assert node is not None
            place = pst.block_place(node.bid_data)
            if place.inflated > place.size:
                break
        else:
            pytest.fail("no item of Inbox is stored compressed")
    with open(damaged, "r+b") as handle:
        handle.seek(place.offset + 2)
        handle.write(b"\xff" * 8)
    tally = OutlookTally()
    items = list(pst_items(damaged, None, tally, lambda _size: None))
    [failure] = [i for i in items if isinstance(i, Unreadable)]
    assert f"item {nid} in folder Inbox" in failure.reason
    assert "cannot be read" in failure.reason
    assert tally.unreadable == 1
    assert sum(isinstance(i, Incoming) for i in items) == MESSAGES - 1


def _cyclic_by_the_spec(data: bytes, bid: int) -> bytes:
    """[MS-PST] 5.2's CryptCyclic, byte by byte, with mpbbR, mpbbS and mpbbI."""
    rotor_r = PERMUTE_ENCODE
    rotor_i = bytes(rotor_r.index(i) for i in range(256))
    rotor_s = bytes.fromhex(  # mpbbS, [MS-PST] 5.1
        "14530f56b3c87a9ceb65481716159f02cc547c83000d0c0ba262a876dbd9edc7c5a4dcac8574d6d0a79bae9a"
        "967166c36399b8dd73928e847da55ed15d93b1575150808952944f4e0a6bbc8d7f6e47464140440111cb033f"
        "f7f4e1a98f3c3af9fbf0193082092ec99da08649ee6f4d6dc42d813425871b88aafc06a11238fd4c42726413"
        "37246a757743ffe6b44b365ce4d8353d45b92cecb7312b290768a30e697b189e2139be281a5b78f523ca2ab0"
        "af3efe048ce7e5983295d3f64ae8a6eae9f3d52f7020f21f0567ad5510cecde3273bdabad7c226d4911dd21c"
        "2233f8faf15aefcf90b68bb5bdc0bf08971e6ce261e0c6c159abbb58de5fdf60797eb28a")
    key = bid & 0xFFFFFFFF
    w = (key ^ (key >> 16)) & 0xFFFF
    out = bytearray()
    for b in data:
        b = rotor_r[(b + w) & 0xFF]
        b = rotor_s[(b + (w >> 8)) & 0xFF]
        b = rotor_i[(b - (w >> 8)) & 0xFF]
        out.append((b - w) & 0xFF)
        w = (w + 1) & 0xFFFF
    return bytes(out)


@pytest.mark.parametrize("size", [0, 1, 255, 256, 700, 767, 768, 1000, 8176, 65535])
def test_high_encryption_is_the_spec_cipher(size: int) -> None:
    rng = random.Random(size)
    for bid in (4, 0xFFFC, 0x1234568, 0xFFFFFFFC, rng.getrandbits(40) & ~3):
        data = rng.randbytes(size)
        assert crypt_cyclic(data, bid) == _cyclic_by_the_spec(data, bid)
        assert crypt_cyclic(crypt_cyclic(data, bid), bid) == data


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 4 KiB-page file of 1,000 short emails and one of MANY (~110 MB)."""
    folder = tmp_path_factory.mktemp("many")
    small, large = folder / "small.ost", folder / "large.ost"
    write_pst(small, 1000, fmt=FORMATS["4k-compressible"], lean=True)
    write_pst(large, MANY, fmt=FORMATS["4k-compressible"], lean=True)
    return small, large


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("side", ["importer", "reader"])
def test_memory_stays_flat_over_100000_items(many: tuple[Path, Path], side: str) -> None:
    small, large = many
    small_count, small_peak = read_and_measure(small, side)
    large_count, large_peak = read_and_measure(large, side)
    assert (small_count, large_count) == (1000, MANY)
    assert large_peak < small_peak + 16 * 1024, (small_peak, large_peak)
