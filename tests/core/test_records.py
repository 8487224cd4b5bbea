"""The records that cross module lines keep what they hold through their stored forms."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mailvault.records import Provenance

FULL = Provenance(
    kind="smtp", source="capture", folder="INBOX", account="alice", item="17",
    uidvalidity=3, uid=0, internal_date=datetime(2001, 5, 14, 9, 30, tzinfo=UTC),
    flags=("\\Seen",), envelope_from="a@example.org", envelope_to=("b@example.org", "c@x"),
    client_address="192.0.2.1", client_name="mx.example.org", helo="mx", tls="TLSv1.3",
    auth_user="relay", received_at=datetime(2001, 5, 14, 9, 31, tzinfo=UTC),
    extra=(("journal", "yes"),))
SPARSE = Provenance(kind="mbox", source="/data/a\udcff.mbox", item="1234", folder="")


def set_fields(provenance: Provenance) -> dict[str, Any]:
    """to_json() without the fields at their defaults: what the stored form must be."""
    return {name: value for name, value in provenance.to_json().items()
            if name in ("kind", "source") or value not in (None, [], {})}


def test_the_stored_form_keeps_exactly_the_fields_that_are_set() -> None:
    for provenance in (FULL, SPARSE, Provenance(kind="pst", source="x.pst")):
        stored = provenance.to_stored_json()
        assert stored == set_fields(provenance)
        assert list(stored) == list(set_fields(provenance))  # the same order of keys
        assert Provenance.from_json(stored) == provenance
    # A uid of 0 and an empty folder are values, not defaults.
    assert FULL.to_stored_json()["uid"] == 0
    assert SPARSE.to_stored_json()["folder"] == ""
    assert "flags" not in SPARSE.to_stored_json()
