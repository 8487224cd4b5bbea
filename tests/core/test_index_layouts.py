"""Index folders of the layouts before the newest (schemas 4 and 5) are kept and answer every
query as they did, until `mailvault reindex` builds them again in the newest layout, which
gives the same answers in the same order; the order key sorts by date and then id; ranges of
whole days read the indexed day numbers and find what the dates say."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import tantivy

from mailvault.search import query as q
from mailvault.search.document import IndexDoc
from mailvault.search.index import (
    DAY_S,
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


@pytest.fixture(params=[4, 5])
def older(tmp_path: Path, corpus: Path, request: pytest.FixtureRequest) -> Path:
    """A vault whose index folder was built with a layout before the newest."""
    return vault_with_older_index(tmp_path / "vault", corpus, request.param, [
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


def test_an_index_of_a_layout_before_is_kept_until_reindex(older: Path) -> None:
    before_version = json.loads((older / "index" / MARKER_FILE).read_text())["schema"]
    with Vault.open(older) as vault:
        assert vault.index.schema_version == before_version < SCHEMA_VERSION
        assert vault.index.layout == LAYOUTS[before_version]
    marker = json.loads((older / "index" / MARKER_FILE).read_text())
    assert marker["schema"] == before_version  # healed in place, not rebuilt
    before = answers(older)
    assert [text for text in QUERIES if not before[text]] == [], before
    assert "reindex" in invoke("status", "--vault", older).text
    assert invoke("status", "--vault", older, "--json").json()["index"]["upgrade"]
    assert invoke("reindex", "--vault", older).exit_code == 0
    with Vault.open(older) as vault:
        assert vault.index.layout == LAYOUTS[SCHEMA_VERSION]
    assert json.loads((older / "index" / MARKER_FILE).read_text())["schema"] == SCHEMA_VERSION
    after = answers(older)
    # The whole archive: in layout 4, messages of the same date came in the index's order;
    # now by id, as every other query's.
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


def test_whole_days_are_read_from_the_day_numbers_and_find_what_the_dates_say(
        tmp_path: Path) -> None:
    day = 11_456 * DAY_S  # 2001-05-14
    dates = [None, 0, day - 86_400, day - 1, day, day + 1, day + DAY_S - 1, day + DAY_S,
             day + 40 * DAY_S, 7_258_118_399]
    docs = [IndexDoc(id=n, date=date, size=10, tier="active",
                     subject="common rare" if n == 5 else "common")
            for n, date in enumerate(dates, start=1)]
    index = SearchIndex(tmp_path / "index")
    assert index.layout.days
    index.put(docs, replace=False)
    index.commit(len(docs), 0)
    day_field = repr(tantivy.Query.term_query(index.schema, "day", 0)).split("field=")[1]
    day_field = "field=" + day_field.split(",")[0] + ","

    def reads_days(node: q.Node) -> bool:
        return day_field in repr(index.compile(node))

    may_14 = datetime(2001, 5, 14, tzinfo=UTC)
    ranges = [q.DateRange(may_14, None), q.DateRange(None, may_14),
              q.DateRange(may_14, may_14 + timedelta(days=1)),
              q.DateRange(datetime(1970, 1, 1, tzinfo=UTC), may_14 + timedelta(days=2)),
              q.DateRange(datetime(1999, 1, 1, tzinfo=UTC), datetime(2000, 1, 1, tzinfo=UTC))]
    for node in ranges:
        assert reads_days(node), node
        low = node.start.timestamp() if node.start else float("-inf")
        high = node.end.timestamp() if node.end else float("inf")
        expected = sorted(d.id for d in docs if d.date is not None and low <= d.date < high)
        assert sorted(index.ids(node)) == expected, node
    # A bound inside a day (not from the query language) reads the date column.
    noon = q.DateRange(may_14 + timedelta(hours=12), None)
    assert not reads_days(noon)
    assert sorted(index.ids(noon)) == sorted(d.id for d in docs if (d.date or 0) >= day + 43_200)
    for text in ("on:2001-05-14", "before:2001-05-14", "after:2001-05-14",
                 "subject:common after:2001-05-14", "-subject:rare after:2001-05-14"):
        assert reads_days(q.parse(text)), text
    # Beside a clause known to match few documents (under a quarter), the column: it is
    # read only for that clause's candidates.
    narrow = q.parse("subject:rare after:2001-05-14")
    assert not reads_days(narrow)
    assert sorted(index.ids(narrow)) == [5]
    assert sorted(index.ids(q.parse("subject:common after:2001-05-14"))) == [5, 6, 7, 8, 9, 10]
    index.close()
