"""A policy run over the Enron mailbox of Phillip Allen: the messages in scope and the
lexicon hits are exactly what an independent reading of the mbox files says (the standard
library's parser and a regular expression, not mailvault's parser or index), and the
random sample has the stated size and is drawn again identically from the same seed.

Tolerance of the sample: each supervised person's pool of each period gives exactly
round(percent x pool / 100) messages (halves up), so the total is within half a message
per pool of percent x (messages in scope)."""

from __future__ import annotations

import email
import email.policy
import email.utils
import functools
import re
from collections import Counter
from pathlib import Path

from mailvault.review.sampling import sample_size
from mailvault.usecases import finding, reviewing
from mailvault.usecases.reviewing import PolicyDraft
from mailvault.vault import Vault
from tests.compliance.conftest import ENRON
from tests.core.corpus_reading import Expected, mbox_messages
from tests.review.conftest import ALLEN, OFFICER, RITA

TERMS = {"body:california": ("california",), 'body:"natural gas"': ("natural", "gas"),
         "body:guarantee": ("guarantee",)}


@functools.cache
def corpus_mail(corpus: Path) -> dict[str, bytes]:
    """Every distinct message of the mailbox, by SHA-256."""
    found: dict[str, Expected] = {}
    for box in sorted((corpus / ENRON).glob("*.mbox")):
        for message in mbox_messages(box):
            found.setdefault(message.sha256, message)
    return {sha: m.raw for sha, m in found.items()}


def party(raw: bytes, address: str) -> bool:
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    values = [str(v) for h in ("from", "sender", "to", "cc", "bcc", "reply-to")
              for v in msg.get_all(h, [])]
    return address in {a.lower() for _, a in email.utils.getaddresses(values)}


def body_words(raw: bytes) -> list[str]:
    """The words of the text parts (not the headers), decoded by the standard library."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    texts = []
    for part in msg.walk():
        if part.get_content_maintype() == "text" and not part.is_attachment():
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                texts.append(payload.decode(part.get_content_charset() or "latin-1",
                                            "replace"))
    return re.findall(r"[^\W_]+", "\n".join(texts).lower())


def hits(words: list[str], phrase: tuple[str, ...]) -> bool:
    return any(tuple(words[i:i + len(phrase)]) == phrase for i in range(len(words)))


def run_policy(vault: Vault, name: str, **draft: object) -> None:
    base: dict[str, object] = {"supervised": (ALLEN,), "reviewers": ("rita",),
                               "period": "weekly"}
    reviewing.add_policy(vault, OFFICER, PolicyDraft(name=name, **{**base, **draft}))
    reviewing.run(vault, OFFICER, name)


def queued(vault: Vault, name: str) -> dict[str, tuple[set[str], bool]]:
    """The policy's items: message SHA-256 -> (terms, sampled)."""
    items = reviewing.queue(vault, RITA, include_decided=True, policy=name, limit=100_000)
    rows = {r.id: r.sha256 for r in finding.search(vault, OFFICER, "", limit=100_000).rows}
    return {rows[i.message_id]: (set(i.terms), i.sampled) for i in items}


def test_lexicon_hits_are_exactly_the_corpus_facts(enron: Vault, corpus: Path) -> None:
    mail = corpus_mail(corpus)
    in_scope = {sha for sha, raw in mail.items() if party(raw, ALLEN)}
    expected = {term: {sha for sha in in_scope if hits(body_words(mail[sha]), words)}
                for term, words in TERMS.items()}
    assert all(expected.values()) and len(in_scope) < len(mail)
    run_policy(enron, "allen", lexicon=tuple(TERMS))
    items = queued(enron, "allen")
    for term in TERMS:
        assert {sha for sha, (terms, _) in items.items() if term in terms} == expected[term], \
            term
    assert set(items) == set().union(*expected.values())
    report = reviewing.report(enron, OFFICER, "allen")
    assert sum(p.in_scope for p in report.periods) == len(in_scope)
    for term in TERMS:
        assert sum(p.term_hits[term] for p in report.periods) == len(expected[term])


def test_the_sample_has_its_size_and_the_same_seed_draws_it_again(enron: Vault) -> None:
    run_policy(enron, "first", sample_percent=10, seed=1234)
    run_policy(enron, "again", sample_percent=10, seed=1234)
    run_policy(enron, "other", sample_percent=10, seed=99)
    first, again, other = (queued(enron, n) for n in ("first", "again", "other"))
    assert first == again and set(first) != set(other)
    assert all(sampled and not terms for terms, sampled in first.values())
    report = reviewing.report(enron, OFFICER, "first")
    in_scope = sum(p.in_scope for p in report.periods)
    # One supervised person: a pool per period.
    assert len(first) == sum(sample_size(p.in_scope, 10) for p in report.periods)
    assert abs(len(first) - in_scope / 10) <= len(report.periods) / 2
    assert sum(p.sampled for p in report.periods) == len(first)
    assert 0.08 * in_scope < len(first) < 0.12 * in_scope


def test_running_twice_adds_nothing(enron: Vault) -> None:
    run_policy(enron, "twice", lexicon=("body:california",), sample_percent=5, seed=7)
    before = queued(enron, "twice")
    (again,) = reviewing.run(enron, OFFICER, "twice")
    assert again.added == 0 and again.sampled == 0 and queued(enron, "twice") == before
    periods = Counter(p.period for p in reviewing.report(enron, OFFICER, "twice").periods)
    assert set(periods.values()) == {1}
