"""Where a Tantivy index's bytes go: per file kind, and per field.

    python bench/index_bytes.py --vault /path/to/vault      # after `mailvault import`

First the vault's index folder as it is: segments, and bytes per file kind (postings
``.idx``, positions ``.pos``, term dictionaries ``.term``, stored documents ``.store``,
fast fields ``.fast``, field norms ``.fieldnorm``, deletions ``.del``, the rest). Then the
vault's documents, built again by the product's own indexing code, are written into new
one-segment indexes in a temporary folder: once with every field, and once without each
field in turn, so that each field's marginal bytes show (its postings, positions, terms,
fast column and norms together). These rebuilt indexes have field norms on every text
field (the binding's default), whatever the vault's folder has.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import tantivy

from mailvault.search import indexing
from mailvault.search.document import IndexDoc
from mailvault.search.index import ANALYZER, SearchIndex, text_analyzer
from mailvault.store import catalog
from mailvault.vault import Vault

KINDS = ("idx", "pos", "term", "store", "fast", "fieldnorm", "del")


def by_kind(folder: Path) -> Counter[str]:
    """Bytes per file kind (a segment file's extension; 'other' for the rest)."""
    kinds: Counter[str] = Counter()
    for entry in folder.iterdir():
        if entry.is_file():
            suffix = entry.suffix.lstrip(".")
            kinds[suffix if suffix in KINDS else "other"] += entry.stat().st_size
    return kinds


def fields_of(folder: Path) -> list[dict[str, Any]]:
    """The schema's fields as the folder's meta.json has them."""
    fields: list[dict[str, Any]] = json.loads((folder / "meta.json").read_text())["schema"]
    return fields


def schema_without(fields: Sequence[dict[str, Any]], left_out: str) -> tantivy.Schema:
    """The schema of ``fields`` without the field ``left_out``."""
    builder = tantivy.SchemaBuilder()
    for field in fields:
        name, options = field["name"], field["options"]
        if name == left_out:
            continue
        if field["type"] == "text":
            indexing_options = options["indexing"]
            builder.add_text_field(name, stored=options["stored"], fast=bool(options["fast"]),
                                   tokenizer_name=indexing_options["tokenizer"],
                                   index_option=indexing_options["record"])
        elif field["type"] == "i64":
            builder.add_integer_field(name, stored=options["stored"],
                                      indexed=options["indexed"], fast=options["fast"])
        elif field["type"] == "u64":
            builder.add_unsigned_field(name, stored=options["stored"],
                                       indexed=options["indexed"], fast=options["fast"])
        else:
            raise SystemExit(f"field {name}: type {field['type']} not handled")
    return builder.build()


def build(folder: Path, schema: tantivy.Schema, kept: set[str],
          documents: Sequence[dict[str, list[Any]]]) -> int:
    """Write the documents (only their ``kept`` fields) as one segment; the folder's bytes."""
    folder.mkdir()
    index = tantivy.Index(schema, path=str(folder))
    index.register_tokenizer(ANALYZER, text_analyzer())
    writer = index.writer(512 * 1024 * 1024, 1)
    for values in documents:
        writer.add_document(tantivy.Document.from_dict(
            {name: value for name, value in values.items() if name in kept}, schema))
    writer.commit()
    writer.wait_merging_threads()
    return sum(entry.stat().st_size for entry in folder.iterdir() if entry.is_file())


def vault_documents(path: Path) -> list[IndexDoc]:
    """Every message's document, built as healing builds it."""
    with Vault.open(path) as vault:
        with vault.engine.connect() as conn:
            rows = list(catalog.iter_messages(conn, after_id=0))
        docs = indexing._building(vault, rows, None)()
        return docs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vault", type=Path, required=True)
    args = parser.parse_args()
    folder = args.vault / "index"
    segments = {p.stem for p in folder.iterdir() if p.suffix == ".idx"}
    kinds = by_kind(folder)
    print(f"index folder: {sum(kinds.values()):,} bytes in {len(segments)} segments")
    for kind, size in kinds.most_common():
        print(f"  {kind:10} {size:>12,}")
    docs = vault_documents(args.vault)
    with tempfile.TemporaryDirectory(prefix="mailvault-bytes-") as temporary:
        root = Path(temporary)
        index = SearchIndex(root / "whole")
        documents = [index._document(doc).to_dict() for doc in docs]
        index.close()
        fields = fields_of(root / "whole")
        names = [f["name"] for f in fields]
        whole = build(root / "one", schema_without(fields, ""), set(names), documents)
        print(f"{len(docs)} documents as one segment: {whole:,} bytes")
        for kind, size in by_kind(root / "one").most_common():
            print(f"  {kind:10} {size:>12,}")
        print("marginal bytes per field (the index without it):")
        marginal = {name: whole - build(root / f"without-{name}", schema_without(fields, name),
                                        set(names) - {name}, documents)
                    for name in names}
        for name, size in sorted(marginal.items(), key=lambda item: -item[1]):
            print(f"  {name:12} {size:>12,}")


if __name__ == "__main__":
    main()
