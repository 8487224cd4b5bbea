"""Prefix queries (``west*``, ``subject:gas*``, ``msgid:abc*``) are kept built between
searches (``SearchIndex._prefix_query``): asked again, on another field, or after the kept
ones were dropped, each answers exactly what a newly built one answers."""

from __future__ import annotations

import pytest

from mailvault.search import index as index_module
from mailvault.search.query import parse
from mailvault.vault import Vault
from tests.core.conftest import CorpusVault

# The same words on several fields, and a keyword field, asked in an order that refills the
# kept queries (three at most here) while earlier ones are asked again.
QUERIES = ["west*", "subject:re*", "body:re*", "from:re*", "re*", "subject:re*", "msgid:a*",
           "to:j*", "body:re*", "west*", "filename:p*", "attachment:in*", "msgid:a*", "from:re*"]


def test_kept_prefix_queries_answer_as_new_ones(corpus_vault: CorpusVault,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_module, "PREFIX_QUERIES_KEPT", 3)
    with Vault.open(corpus_vault.path) as kept:
        answers = []
        for text in QUERIES:
            with Vault.open(corpus_vault.path) as fresh:  # nothing kept yet
                expected = fresh.index.search(parse(text), limit=10_000)
            answers.append(expected[0])
            assert kept.index.search(parse(text), limit=10_000) == expected, text
        assert len(kept.index._prefixes) <= 3
    # The queries are not all alike: a mix-up of fields or words would show.
    assert len(set(answers)) >= 5 and min(answers) > 0
