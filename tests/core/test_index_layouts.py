"""Index folders of the layout before the newest (schema 4) are kept and answer every query
as they did, until `mailvault reindex` builds them again in the newest layout, which gives
the same answers in the same order; the order key sorts by date and then id."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailvault.search import query as q
from mailvault.search.document import IndexDoc
from mailvault.search.index import (
    LAYOUTS,
    MARKER_FILE,
    ORDER_ID_BITS,
    SCHEMA_VERSION,
    SearchIndex,
    order_key,
)
from mailvault.vault import Vault
from tests.core.conftest import vault_with_older_index
from tests.support import Attachment, build_message, invoke, search_json

BEFORE = 4


@pytest.fixture
def older(tmp_path: Path, corpus: Path) -> Path:
    """A vault whose index folder was built with the layout before the newest."""
    return vault_with_older_index(tmp_path / "vault", corpus, BEFORE, [
        build_message(sender='"Phillip Allen" <pa@example.org>', subject="display name"),
        build_message(sender="phillip_allen@example.org", subject="same date"),
        build_message(subject="natural gas forecast", date=datetime(2001, 5, 14, tzinfo=UTC),
                      attachments=[Attachment("west.pdf", bytes(range(256)) * 100,
                                              "application/pdf")])])


QUERIES = ["", "from:phillip.allen", "subject:gas", '"natural gas"', "west*", "has:attachment",
           "larger:20K", "from:enron.com after:2001-06-01", "-from:enron.com subject:re",
           "(budget OR forecast)", "on:2001-05-14", "to:allen", "filename:pdf",
           'subject:"display name" OR subject:"same date"']


def answers(vault: Path) -> dict[str, list[str]]:
    """Every query's results, newest first, as the command line gives them."""
    return {text: [row["sha256"] for row in search_json(vault, text)] for text in QUERIES}


def test_an_index_of_the_layout_before_is_kept_until_reindex(older: Path) -> None:
    with Vault.open(older) as vault:
        assert vault.index.schema_version == BEFORE
        assert vault.index.layout == LAYOUTS[BEFORE]
    marker = json.loads((older / "index" / MARKER_FILE).read_text())
    assert marker["schema"] == BEFORE  # healed in place, not rebuilt
    before = answers(older)
    assert [text for text in QUERIES if not before[text]] == [], before
    assert "reindex" in invoke("status", "--vault", older).text
    assert invoke("status", "--vault", older, "--json").json()["index"]["upgrade"]
    assert invoke("reindex", "--vault", older).exit_code == 0
    with Vault.open(older) as vault:
        assert vault.index.layout == LAYOUTS[SCHEMA_VERSION]
    assert json.loads((older / "index" / MARKER_FILE).read_text())["schema"] == SCHEMA_VERSION
    after = answers(older)
    # The whole archive: in the layout before, messages of the same date came in the
    # index's order; now by id, as every other query's.
    assert sorted(after.pop("")) == sorted(before.pop(""))
    assert after == before
    assert "reindex" not in invoke("status", "--vault", older).text


def test_the_order_key_sorts_by_date_then_id(tmp_path: Path) -> None:
    dates = [None, 0, 1, 86_400, 86_400, 7_258_118_400, 2**34]
    docs = [IndexDoc(id=n, date=date, size=10, tier="active")
            for n, date in enumerate(dates * 2, start=1)]
    keys = {doc.id: order_key(doc) for doc in docs}
    assert sorted(keys, key=keys.__getitem__) == [
        d.id for d in sorted(docs, key=lambda d: (min(d.date or 0, 2**33 - 1), d.id))]
    assert len(set(keys.values())) == len(docs)
    index = SearchIndex(tmp_path / "index")
    # An id the key has no room for is refused (a recorded failure), not sorted wrongly.
    refused = IndexDoc(id=2**ORDER_ID_BITS, date=1, size=10, tier="active")
    assert list(index.put([*docs, refused], replace=False)) == [refused.id]
    index.commit(len(docs), 0)
    newest = sorted(docs, key=lambda d: (d.date or 0, d.id), reverse=True)
    assert index.search(q.MatchAll(), 100)[1] == [d.id for d in newest]
    assert index.search(q.MatchAll(), 100, order="oldest")[1] == [d.id for d in newest][::-1]
    assert index.search(q.MatchAll(), 3, offset=4)[1] == [d.id for d in newest][4:7]
    index.close()
