"""A throwaway Postfix instance for tests (its own config and queue, loopback only).

See ../shared/reference/postfix-test.md for the settings that were checked on these machines.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support import unavailable

MASTER_CF = """\
{port} inet n - n - - smtpd
pickup    unix  n       -       n       1       1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Postfix:
    """A running private Postfix: ``port`` takes SMTP; ``queue()`` lists what it holds."""

    folder: Path
    port: int

    @property
    def etc(self) -> Path:
        return self.folder / "etc"

    def command(self, *args: str) -> str:
        return subprocess.run(["postfix", "-c", str(self.etc), *args], check=True,
                              capture_output=True, text=True, timeout=60).stdout

    def queued(self) -> int:
        """Messages in the queue (deferred or active)."""
        out = subprocess.run(["postqueue", "-c", str(self.etc), "-j"], check=True,
                             capture_output=True, text=True, timeout=60).stdout
        return len([line for line in out.splitlines() if line.strip()])

    def flush(self) -> None:
        """Try every deferred message again now."""
        subprocess.run(["postqueue", "-c", str(self.etc), "-f"], check=True, timeout=60)

    def log(self) -> str:
        path = self.folder / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        subprocess.run(["postfix", "-c", str(self.etc), "stop"], capture_output=True,
                       timeout=60)


def start_postfix(folder: Path, settings: dict[str, str], services: str = "") -> Postfix:
    """Configure and start a Postfix in ``folder`` with these main.cf settings on top, and
    ``services`` (master.cf lines) besides the smtpd on ``port``."""
    if shutil.which("postfix") is None:
        unavailable("postfix is not installed")
    port = free_port()
    etc, spool, data = folder / "etc", folder / "spool", folder / "data"
    for path in (etc, spool, data):
        path.mkdir(parents=True)
    shutil.chown(data, "postfix")
    main = {
        "compatibility_level": "3.6", "queue_directory": str(spool),
        "data_directory": str(data), "command_directory": "/usr/sbin",
        "daemon_directory": "/usr/lib/postfix/sbin", "meta_directory": "/etc/postfix",
        "shlib_directory": "/usr/lib/postfix", "mail_owner": "postfix",
        "setgid_group": "postdrop", "myhostname": "mta.test", "mydomain": "mta.test",
        "inet_interfaces": "127.0.0.1", "inet_protocols": "ipv4",
        "mynetworks": "127.0.0.0/8", "smtpd_relay_restrictions":
        "permit_mynetworks, reject_unauth_destination", "smtpd_peername_lookup": "no",
        "smtp_dns_support_level": "disabled", "alias_maps": "", "alias_database": "",
        "maillog_file_prefixes": str(folder), "maillog_file": str(folder / "maillog"),
        "mydestination": "example.org", "local_recipient_maps": "",
        "local_transport": "discard:x", "queue_run_delay": "1s",
        "minimal_backoff_time": "1s", "maximal_backoff_time": "2s",
        "smtp_connect_timeout": "5s", "milter_connect_timeout": "5s",
    }
    main.update(settings)
    (etc / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in main.items()))
    (etc / "master.cf").write_text(MASTER_CF.format(port=f"127.0.0.1:{port}") + services)
    subprocess.run(["postfix", "-c", str(etc), "check"], check=True, timeout=60)
    subprocess.run(["postfix", "-c", str(etc), "start"], check=True, capture_output=True,
                   timeout=60)
    postfix = Postfix(folder, port)
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                if sock.recv(256).startswith(b"220"):
                    break
        except OSError:
            pass  # not listening yet: poll again until the deadline
        if time.monotonic() > deadline:
            postfix.stop()
            raise TimeoutError(f"postfix did not start: {postfix.log()[-2000:]}")
        time.sleep(0.1)
    return postfix
