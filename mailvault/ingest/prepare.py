"""What the pipeline's worker processes do to one new message, and what they hand back.

Parsing, attachment text, the single-instance split, compression, the catalog's fields and
the index document: everything but ids and locations. This module imports no database and
no index library, so the workers stay small.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailvault.message import KnownMessage, ParsedMessage, parse, parse_known
from mailvault.records import MessageFields
from mailvault.search.document import FULL_TEXT_TIERS, IndexDoc, message_document
from mailvault.search.extract import Limits, extractor
from mailvault.store import layout
from mailvault.store.blobs import compress


@dataclass(frozen=True)
class Prepared:
    """A worker's result for one new message: catalog fields, index document (without id
    and arrivals), and compressed blobs. Everything but ids and locations is done here."""

    fields: MessageFields
    doc: IndexDoc
    skeleton: bytes
    skeleton_size: int
    parts: list[tuple[bytes, bytes, int]]  # (sha256, compressed, size)


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker needs to know, sent with each chunk of work (small and picklable)."""

    part_min_bytes: int
    compression_level: int
    limits: Limits
    tier: str
    max_text_chars: int
    dictionary: bytes | None = None


def prepare(raw: bytes, config: WorkerConfig, known: KnownMessage | None = None) -> Prepared:
    """Parse, extract, split and compress one message (runs in a worker process); a message
    whose structure its source told (``known``) is not parsed again."""
    if known is not None:
        parsed = parse_known(raw, known, extractor(config.limits), config.max_text_chars)
    else:
        parsed = parse(raw, extractor(config.limits), config.max_text_chars)
    cut = layout.split(raw, config.part_min_bytes)
    # Parts are attachments (mostly base64): a dictionary of mail headers does not help them.
    parts = [(p.sha256, compress(p.data, config.compression_level), len(p.data))
             for p in cut.parts]
    full_text = config.tier in FULL_TEXT_TIERS
    return Prepared(catalog_fields(parsed), message_document(parsed, len(raw), config.tier,
                                                             full_text),
                    compress(cut.skeleton, config.compression_level, config.dictionary),
                    len(cut.skeleton), parts)


def catalog_fields(parsed: ParsedMessage) -> MessageFields:
    """The catalog's columns for a message, from what the parser found."""
    return MessageFields(
        date=parsed.date,
        subject=parsed.subject,
        from_addr=", ".join(str(a) for a in parsed.addrs("from")),
        to_addrs=", ".join(str(a) for a in parsed.addrs("to")),
        cc_addrs=", ".join(str(a) for a in parsed.addrs("cc")),
        message_id=parsed.message_id,
        defects=parsed.defects,
        addresses=[(role, a.address, a.name) for role, addrs in parsed.addresses.items()
                   for a in addrs],
        attachments=[(a.filename, a.content_type, a.size) for a in parsed.attachments],
    )


def prepare_chunk(raws: list[tuple[bytes, KnownMessage | None]],
                  config: WorkerConfig) -> list[Prepared]:
    """prepare() for each of a chunk of messages (one round trip to a worker)."""
    return [prepare(raw, config, known) for raw, known in raws]
