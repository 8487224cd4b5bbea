"""Faults for the gateway writer process, which the tests cannot monkeypatch: it is a process
of its own. A test that puts this folder on PYTHONPATH and sets MAILVAULT_TEST_WRITER_FAULT
(JSON) before `serve` starts gets, in every Python process `serve` starts, ``os.<call>``
(``write`` or ``fsync``) on a file under ``folder`` either failing once with EIO (``fail``),
or held until the file ``release`` exists, after creating the file ``entered`` (``hold``).
Only the writer writes there."""

import errno
import json
import os
import time

_SPEC = os.environ.get("MAILVAULT_TEST_WRITER_FAULT")

if _SPEC:
    _fault = json.loads(_SPEC)
    _real = getattr(os, _fault["call"])
    _done: list[bool] = []

    def _faulty(fd, *args):  # type: ignore[no-untyped-def]
        try:
            path = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            path = ""
        if not _done and path.startswith(_fault["folder"] + "/"):
            if _fault["kind"] == "fail":
                _done.append(True)
                raise OSError(errno.EIO, "injected I/O error")
            open(_fault["entered"], "w").close()
            while not os.path.exists(_fault["release"]):
                time.sleep(0.01)
        return _real(fd, *args)

    setattr(os, _fault["call"], _faulty)
