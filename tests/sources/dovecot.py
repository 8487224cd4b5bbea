"""A throwaway Dovecot (IMAP, IMAPS, POP3, POP3S) on 127.0.0.1 for tests and benchmarks.

Its own config, TLS certificate (made here, signed by a test CA, with IP and DNS names),
users in one passwd-file each (a new file is read on first use, so tests can add users
while it runs) and a master user ``admin`` for the ``user*admin`` and SASL PLAIN authzid forms.
"""

from __future__ import annotations

import datetime
import grp
import ipaddress
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NOBODY = 65534
# Run as a normal user (CI may), Dovecot needs that user for everything and no chroot.
UNPRIVILEGED = """\
default_login_user = {user}
default_internal_user = {user}
default_internal_group = {group}
service anvil {{
  chroot =
}}
"""
MASTER_USER = "admin"
MASTER_PASSWORD = "admin-secret"
DOMAIN = "example.org"

CONFIG = """\
instance_name = mailvault-test-{tag}
base_dir = {dir}/run
state_dir = {dir}/state
listen = 127.0.0.1
protocols = imap pop3
log_path = {dir}/dovecot.log
ssl = yes
ssl_cert = <{dir}/cert.pem
ssl_key = <{dir}/key.pem
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_master_user_separator = *
auth_cache_size = 0
auth_failure_delay = 0
mail_location = maildir:~/Maildir
first_valid_uid = 1
pop3_uidl_format = %08Xu%08Xv
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \\Trash
    auto = subscribe
  }}
  mailbox Junk {{
    special_use = \\Junk
    auto = subscribe
  }}
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {dir}/master-users
  master = yes
  result_success = continue
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {dir}/passwd/%u
}}
userdb {{
  driver = passwd-file
  args = {dir}/passwd/%u
}}
service imap-login {{
{chroot}  inet_listener imap {{
    port = {imap}
  }}
  inet_listener imaps {{
    port = {imaps}
    ssl = yes
  }}
}}
service pop3-login {{
{chroot}  inet_listener pop3 {{
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = {pop3s}
    ssl = yes
  }}
}}
{unprivileged}"""


def free_ports(count: int) -> list[int]:
    """Ports the kernel hands out now (held together so that they differ)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class Dovecot:
    """A running Dovecot and what a test needs to reach it."""

    dir: Path
    imap: int
    imaps: int
    pop3: int
    pop3s: int
    ca_file: Path
    process: subprocess.Popen[bytes] | None = None
    passwords: dict[str, str] = field(default_factory=dict)

    def add_user(self, address: str, password: str) -> Path:
        """A new account (Dovecot re-reads the passwd-file); returns its home folder."""
        local = address.split("@")[0]
        home = self.dir / "mail" / f"{local}-{len(self.passwords)}"
        home.mkdir(parents=True)
        # Dovecot refuses to run mail processes as root: as root, users are nobody.
        uid, gid = (NOBODY, NOBODY) if os.getuid() == 0 else (os.getuid(), os.getgid())
        os.chown(home, uid, gid)
        self.passwords[address] = password
        (self.dir / "passwd" / address).write_text(
            f"{address}:{{PLAIN}}{password}:{uid}:{gid}::{home}\n", encoding="utf-8")
        return home

    def stop(self) -> None:
        """SIGTERM to the master; wait for it to exit."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def log(self) -> str:
        path = self.dir / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""


def start(root: Path | None = None, extra: str = "",
          files: dict[str, str] | None = None) -> Dovecot:
    """Write a config in a short temp folder and start ``dovecot -F``; ready when it greets.

    ``extra`` is added to the config, with ``{dir}`` replaced by the folder (for instance an
    auth listener for Postfix's SASL, or an ``oauth2`` passdb); ``files`` are written into
    the folder first (the settings file such a passdb names)."""
    base = Path(tempfile.mkdtemp(prefix="dv", dir=str(root) if root else "/tmp"))
    base.chmod(0o755)  # the auth process (user dovecot) reads the passwd-files in it
    imap, imaps, pop3, pop3s = free_ports(4)
    ca_file = _certificates(base)
    (base / "mail").mkdir()
    (base / "passwd").mkdir()
    (base / "master-users").write_text(f"{MASTER_USER}:{{PLAIN}}{MASTER_PASSWORD}\n",
                                       encoding="utf-8")
    for name, text in (files or {}).items():
        (base / name).write_text(text, encoding="utf-8")
    config = base / "dovecot.conf"
    root = os.getuid() == 0
    unprivileged = "" if root else UNPRIVILEGED.format(
        user=pwd.getpwuid(os.getuid()).pw_name, group=grp.getgrgid(os.getgid()).gr_name)
    config.write_text(CONFIG.format(dir=base, tag=base.name, imap=imap, imaps=imaps,
                                    pop3=pop3, pop3s=pop3s, unprivileged=unprivileged,
                                    chroot="" if root else "  chroot =\n")
                      + extra.replace("{dir}", str(base)), encoding="utf-8")
    server = Dovecot(base, imap, imaps, pop3, pop3s, ca_file)
    server.process = subprocess.Popen(["dovecot", "-F", "-c", str(config)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    for port in (imap, pop3, imaps, pop3s):
        while not _greets(port):
            if server.process.poll() is not None or time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"dovecot did not start:\n{server.log()[-2000:]}")
            time.sleep(0.02)
    return server


def remove(server: Dovecot) -> None:
    server.stop()
    shutil.rmtree(server.dir, ignore_errors=True)


def _greets(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def certificates(folder: Path, address: str) -> Path:
    """A new test CA and a server certificate for ``address`` (see ``_certificates``)."""
    folder.mkdir(parents=True, exist_ok=True)
    return _certificates(folder, address)


def _certificates(folder: Path, address: str = "127.0.0.1") -> Path:
    """A test CA and a server certificate for ``address`` (127.0.0.1 unless told) and
    localhost, in ``folder`` (ca.pem, cert.pem, key.pem); returns the CA file."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mailvault test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                       False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(address))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    (folder / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    # mailvault's listeners refuse a key other users can read; the servers read it as root.
    (folder / "key.pem").chmod(0o600)
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    ca_file = folder / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return ca_file
