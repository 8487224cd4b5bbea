"""Fixtures of the Outlook tests: the PST and MSG files of the shared corpus."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

# Emails and the attachments on them, as Debian's readpst 0.6.76 counts them (corpus README).
EMAIL_FILES = {
    "aspose-net_Outlook_Outlook.pst": (14, 30),
    "aspose-net_Outlook_Chunks_Test_part1.pst": (31, 33),
    "pst-extractor_alpha-beta-gamma-delta.pst": (1, 1),
}


@pytest.fixture(scope="session")
def pst_dir(corpus: Path) -> Path:
    if shutil.which("readpst") is None:
        pytest.fail("readpst (Debian's pst-utils) is needed as the reference")
    return corpus / "pst"


@pytest.fixture(scope="session")
def msg_dir(corpus: Path) -> Path:
    return corpus / "msg" / "hiraoka"
