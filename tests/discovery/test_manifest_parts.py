"""The manifest files of a running export (``<name>.part``): appended batch by batch, cut back
to a checkpoint's ends on resume, even when a killed run had named them already."""

from __future__ import annotations

from pathlib import Path

from mailvault.discovery import manifest


def _document(control: str, number: int) -> dict[str, object]:
    return {"control": control, "type": "message", "id": number, "sha256": "ab" * 32,
            "size": 10, "subject": f"line one\nþ {number}", "children": [],
            "attachments": [], "path": f"natives/x/{control}.eml"}


def _named(root: Path) -> dict[str, bytes]:
    return {name: (root / name).read_bytes() for name in manifest.NAMES}


def test_a_resume_cuts_the_manifests_back_to_the_checkpoint(tmp_path: Path) -> None:
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    whole.mkdir()
    resumed.mkdir()
    batches = [[_document(f"MV{n:08d}", n) for n in range(first, first + 3)]
               for first in (1, 4)]
    parts = manifest.Parts(whole, None)
    for batch in batches:
        parts.add(manifest.rows(batch))
    expected = parts.finish()

    parts = manifest.Parts(resumed, None)
    parts.add(manifest.rows(batches[0]))
    checkpoint = parts.ends()
    parts.add(manifest.rows(batches[1]))  # written after the checkpoint, then killed
    parts.finish()  # ... even after the files were named
    parts = manifest.Parts(resumed, checkpoint)
    parts.add(manifest.rows(batches[1]))
    assert parts.finish() == expected
    assert _named(resumed) == _named(whole)
    assert not list(resumed.glob("*" + manifest.PART))
