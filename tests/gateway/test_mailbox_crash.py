"""SIGKILL during delivery: every message whose delivery returned (the SMTP endpoint's 250)
is in the mailbox exactly once and readable, and nothing torn is served."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mailvault.gateway.mailboxes import GatewayMailboxes

# Twelve threads deliver as fast as they can; each prints a message's number once its
# delivery has returned, as the SMTP endpoint then says 250.
DELIVERER = """
import sys, threading
from pathlib import Path
from mailvault.gateway.mailboxes import GatewayMailboxes
boxes = GatewayMailboxes(Path(sys.argv[1]))
lock = threading.Lock()
def deliver(first):
    for n in range(int(sys.argv[3]) + first, 10**9, 12):
        boxes.deliver(sys.argv[2], b"Subject: n%d\\r\\n\\r\\n" % n + b"x" * 5000)
        with lock:
            sys.stdout.write(f"{n}\\n")
            sys.stdout.flush()
for first in range(12):
    threading.Thread(target=deliver, args=(first,)).start()
"""


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sigkill_during_delivery_loses_and_doubles_nothing_acknowledged(
        tmp_path: Path) -> None:
    boxes = GatewayMailboxes(tmp_path / "gateway", "gw.example.org")
    info, password = boxes.create(None)
    acknowledged: set[int] = set()
    for crash in range(2):  # two crashes, each leaving its own segment behind
        with subprocess.Popen([sys.executable, "-c", DELIVERER, str(boxes.folder), info.id,
                               str(crash * 10**8)], stdout=subprocess.PIPE, text=True) as child:
            assert child.stdout is not None
            target = len(acknowledged) + 200
            while len(acknowledged) < target:
                line = child.stdout.readline()
                assert line, "the deliverer stopped"
                acknowledged.add(int(line))
            os.kill(child.pid, signal.SIGKILL)
            # Whatever it printed before dying was acknowledged too.
            acknowledged |= {int(line) for line in child.stdout.read().split()}
    opened = boxes.unlock(info.id, password)
    listed = opened.messages()
    found = [int(re.match(rb"Subject: n(\d+)", opened.read(m.id)).group(1))  # type: ignore[union-attr]
             for m in listed]
    assert len(found) == len(set(found)), "a message was stored twice"
    assert acknowledged <= set(found)
    opened.delete([m.id for m in listed])
    assert opened.messages() == []
    assert boxes.get(info.id).count == 0
