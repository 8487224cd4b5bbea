"""Phrases over From/To/Cc/Bcc answered by one term (the word runs of ``search/index.py``)
find exactly what the phrase over the words' positions finds: on the corpus, for whole
addresses, local parts, domains, display names and words taken across two addresses; on
made-up values with the edge cases (long words, CJK, repeated words); and an index built
before the word runs keeps answering by positions until ``reindex``."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailvault.search import indexing
from mailvault.search import query as q
from mailvault.search.document import IndexDoc
from mailvault.search.index import MARKER_FILE, PHRASE_SCHEMA_VERSION, SCHEMA_VERSION, SearchIndex
from mailvault.store import catalog
from mailvault.vault import Vault
from tests.core.conftest import CorpusVault, vault_with_older_index
from tests.support import build_message, invoke, search_json

FIELDS = ("from", "to", "cc", "bcc")


def uses_runs(index: SearchIndex, node: q.Node) -> bool:
    """Whether the query compiles otherwise than by positions alone."""
    runs = repr(index.compile(node))
    index.word_runs, kept = False, index.word_runs
    try:
        return runs != repr(index.compile(node))
    finally:
        index.word_runs = kept


def both_ways(index: SearchIndex, node: q.Node) -> tuple[list[int], list[int]]:
    """(ids by the word runs, ids by the phrase), each sorted."""
    assert index.word_runs
    by_runs = sorted(index.ids(node))
    index.word_runs = False  # the same compiler, taking the phrase path
    try:
        by_phrase = sorted(index.ids(node))
    finally:
        index.word_runs = True
    return by_runs, by_phrase


def candidates(docs: list[IndexDoc], pick: random.Random) -> Iterator[q.Term]:
    """Queries people write over the participant fields, from the documents' own values."""
    for doc in docs:
        values = {"from": doc.from_, "to": doc.to, "cc": doc.cc, "bcc": doc.bcc}
        for name, found in values.items():
            for value in found[:3]:
                address = value.rpartition("<")[2].rstrip(">").strip()
                local, _, domain = address.partition("@")
                name_part = value.rpartition("<")[0].strip().strip('"')
                for text in (address, local, domain, name_part):
                    if text:
                        yield q.Term(name, text)
                        yield q.Term(None, text)
                if name_part:
                    yield q.Term(name, name_part, phrase=True)
                words = value.replace("@", " ").replace(".", " ").split()
                if len(words) > 2:
                    start = pick.randrange(len(words) - 1)
                    yield q.Term(name, ".".join(words[start:start + pick.randint(2, 6)]))
            if len(found) > 1:
                # The last word of one value and the first of the next: a phrase never
                # matches across two values, and neither may a run.
                yield q.Term(name, f"{found[0].split()[-1]} {found[1].split()[0]}")


def test_the_corpus_answers_the_same_by_runs_and_by_phrase(
        corpus_vault: CorpusVault) -> None:
    pick = random.Random(5)
    with Vault.open(corpus_vault.path) as vault:
        index = vault.index
        assert index.word_runs and index.schema_version == SCHEMA_VERSION
        with vault.engine.connect() as conn:
            rows = list(catalog.iter_messages(conn, after_id=0))
        docs = indexing._building(vault, pick.sample(rows, 300), None)()
        terms = list(dict.fromkeys(candidates(docs, pick)))
        assert len(terms) > 1000
        found = 0
        for term in terms:
            by_runs, by_phrase = both_ways(index, term)
            assert by_runs == by_phrase, term
            found += bool(by_runs)
        assert found > len(terms) * 0.8  # most of them find mail: the comparison means something
        # The benchmark's queries of this kind, and their negations and combinations.
        for text in ("from:phillip.allen", "from:phillip.allen@enron.com", "from:enron.com",
                     "participant:john.arnold@enron.com", "cc:enron.com subject:re",
                     "-from:enron.com subject:meeting", '"phillip allen"',
                     'from:"Joe Perches"', "to:(jeff.dasovich OR steven.kean)"):
            by_runs, by_phrase = both_ways(index, q.parse(text))
            assert by_runs == by_phrase and by_runs, text


def test_a_run_is_one_term_query_and_a_partial_word_keeps_its_own(tmp_path: Path) -> None:
    index = SearchIndex(tmp_path / "index")
    for text in ("from:phillip.allen", "from:phillip.allen@enron.com", "cc:enron.com",
                 'to:"Jeff Dasovich"', "bcc:a.b"):
        assert uses_runs(index, q.parse(text)), text
        assert "TermQuery" in repr(index.compile(q.parse(text)))
        assert "Phrase" not in repr(index.compile(q.parse(text)))
    # A word alone, a prefix, a phrase longer than any run kept, other fields: as before.
    for text in ("from:phil", "from:phil.all*", "from:a.b.c.d.e.f", "subject:a.b"):
        assert not uses_runs(index, q.parse(text)), text
    index.close()


def test_made_up_values_answer_the_same_by_runs_and_by_phrase(tmp_path: Path) -> None:
    long = "x" * 60  # the analyzer leaves out a word this long: a gap in the phrase
    values = [
        ["Phillip K Allen <phillip.allen@enron.com>", "pallen70@hotmail.com"],
        ["Allen Phillip <allen.phillip@example.org>"],
        ['"Phillip Allen" <pa@example.org>'],
        [f"before {long} after <b.a@example.org>", "x" * 59 + " kept"],
        ["山田 太郎 <taro@example.jp>", "ÄBC Déf <abc@example.de>"],
        ["echo echo echo <echo@echo.example>"],
        ["phillip", "allen"],
    ]
    docs = [IndexDoc(id=n + 1, date=None, size=10, tier="active", from_=v, to=v, cc=v,
                     bcc=v) for n, v in enumerate(values)]
    index = SearchIndex(tmp_path / "index")
    index.put(docs, replace=False)
    index.commit(len(docs), 0)
    texts = ["phillip.allen", "Phillip Allen", "allen phillip", "phillip.allen@enron.com",
             "k allen phillip", "enron.com", "before after", f"before {long} after",
             "after b", "x" * 59 + " kept", "山田", "山田太郎", "太郎 taro", "äbc déf",
             "ÄBC-DÉF", "echo echo", "echo echo echo echo", "echo.echo@echo", "allen pallen70"]
    for text in texts:
        for name in FIELDS:
            by_runs, by_phrase = both_ways(index, q.Term(name, text))
            assert by_runs == by_phrase, (name, text)
    assert both_ways(index, q.Term("from", "phillip allen"))[0] == [1, 2, 3]
    assert both_ways(index, q.Term("from", "before after"))[0] == []
    index.close()



def test_runs_kept_between_documents_are_the_runs_of_their_value(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A cache of three values, emptied again and again by the values below: every copy
    # of a value gets that value's runs, kept or worked out afresh.
    monkeypatch.setattr("mailvault.search.index.RUN_CACHE_VALUES", 3)
    values = [f"Person {n} Sender <person{n}.sender@example{n % 3}.org>" for n in range(7)]
    docs = [IndexDoc(id=copy * 100 + n + 1, date=None, size=10, tier="active",
                     from_=[values[n]], to=[values[(n + 1) % 7]])
            for copy in range(3) for n in range(7)]
    index = SearchIndex(tmp_path / "index")
    index.put(docs, replace=False)
    index.commit(len(docs), 0)
    for n in range(7):
        for name, sender in (("from", n), ("to", (n - 1) % 7)):
            by_runs, by_phrase = both_ways(index, q.Term(name, f"person{n}.sender"))
            assert by_runs == by_phrase == [copy * 100 + sender + 1 for copy in range(3)]
    index.close()

@pytest.fixture
def older(tmp_path: Path, corpus: Path) -> Path:
    """A vault whose index folder was built with the schema before the word runs."""
    return vault_with_older_index(tmp_path / "vault", corpus, PHRASE_SCHEMA_VERSION, [
        build_message(sender='"Phillip Allen" <pa@example.org>', subject="display name"),
        build_message(sender="phillip_allen@example.org", subject="underscore")])


QUERIES = ["from:phillip.allen", "to:k..allen@enron.com", "from:phillip", "from:phil",
           "from:enron.com", '"phillip allen"', "participant:john.arnold@enron.com",
           "from:phil*", "to:allen"]


def test_an_index_built_before_the_runs_answers_by_phrase_until_reindex(older: Path) -> None:
    with Vault.open(older) as vault:
        assert not vault.index.word_runs
        assert vault.index.schema_version == PHRASE_SCHEMA_VERSION
        assert "Phrase" in repr(vault.index.compile(q.parse("from:phillip.allen")))
        assert not uses_runs(vault.index, q.parse("from:phillip.allen"))
    marker = json.loads((older / "index" / MARKER_FILE).read_text())
    assert marker["schema"] == PHRASE_SCHEMA_VERSION  # healed in place, not rebuilt
    before = {text: [r["sha256"] for r in search_json(older, text)] for text in QUERIES}
    # from:phil is the word "phil" only (no sender has it): empty before and after.
    assert [text for text, found in before.items() if not found] == ["from:phil"], before
    # The display name and the underscore (the inbox is mail to him): the phrase's words,
    # wherever they stand.
    assert len(before["from:phillip.allen"]) == 2
    status = invoke("status", "--vault", older)
    assert "slower until 'mailvault reindex'" in status.text
    assert invoke("reindex", "--vault", older).exit_code == 0
    with Vault.open(older) as vault:
        assert vault.index.word_runs and vault.index.schema_version == SCHEMA_VERSION
        assert uses_runs(vault.index, q.parse("from:phillip.allen"))
    assert json.loads((older / "index" / MARKER_FILE).read_text())["schema"] == SCHEMA_VERSION
    assert {text: [r["sha256"] for r in search_json(older, text)] for text in QUERIES} == before
    assert "reindex" not in invoke("status", "--vault", older).text
